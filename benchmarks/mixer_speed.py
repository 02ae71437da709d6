"""Training step speed of each mixer, against this machine's measured matmul throughput.

Results go to runs/benchmarks/ (git-ignored); `--write-results` rewrites the committed
file under benchmarks/results/ instead.

Usage (from the repository root; run once per backend):
    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/mixer_speed.py
    KERAS_BACKEND=jax .venv/bin/python benchmarks/mixer_speed.py
    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/mixer_speed.py --norm native

For T in {16, 32}, D in {64, 256}, batch 4096: a `UniMixerEncoder` (2 blocks, FFN multiplier 2,
SwiGLU for all mixers so that parameter counts are near-equal) + mean pooling + a logit, trained
with `train_on_batch` on one fixed batch. With `--norm post` (the default) every model is the same
post-norm encoder and only the mixing layer differs, so step times compare mixers; `none` is that
encoder with no mixing at all (the floor: each mixer's own cost is its step minus `none`'s).
`--norm native` gives each architecture its own residual scheme (SiameseNorm for UniMixer and
UniMixing-Lite, post-norm for the rest). `--layouts token_major,batch_major` times the encoder in
both activation layouts in the same interleaved run, and adds a table of each mixer in the layout
`layout="auto"` picks for it (default: `auto` only).

Timing is interleaved: all models of one (T, D, XLA) cell are built and warmed, then each takes
one step per round, so drift in machine speed hits every mixer alike. Reported: median step time
(forward+backward+Adam), examples/s, parameters, ratio to RankMixer's step, and achieved GFLOP/s
= 3 x analytic forward FLOPs / step time, as a fraction of the dense float32 matmul GFLOP/s
measured in the same run. TensorFlow is timed with and without XLA (`jit_compile`); JAX always
compiles. Writes benchmarks/results/mixer_speed_<backend>[_native].md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from results_files import add_write_results, results_path  # noqa: E402 (benchmarks/ is on sys.path)

from keras_unimixer.experiments.scaling import flops_per_example  # noqa: E402
from keras_unimixer.layers import UniMixerEncoder  # noqa: E402
from keras_unimixer.layers.encoder import prefers_token_major  # noqa: E402
from keras_unimixer.layers.mixing import make_mixing, mixer_names  # noqa: E402
from keras_unimixer.utils.allocator import allocator_setting, restart_reusing_freed_memory  # noqa: E402

MIXERS = ("none",) + mixer_names()  # "none": the encoder without mixing (the floor)


@keras.saving.register_keras_serializable(package="benchmarks")
class NoMixing(keras.layers.Layer):
    """The identity in place of a mixing layer: the encoder's cost without any mixing."""

    token_major_backends = ("jax", "tensorflow")

    def call(self, inputs):
        return inputs

    def call_token_major(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


def matmul_gflops(size: int = 2048, repeats: int = 10, dtype: str = "float32") -> float:
    """Dense matmul throughput of this backend on this machine, in `dtype`."""
    a = keras.random.normal((size, size), seed=1, dtype=dtype)
    b = keras.random.normal((size, size), seed=2, dtype=dtype)
    if keras.backend.backend() == "jax":
        import jax

        product = jax.jit(lambda x, y: x @ y)
        block = lambda: product(a, b).block_until_ready()  # noqa: E731
    else:
        import tensorflow as tf

        product = tf.function(lambda x, y: tf.matmul(x, y))
        block = lambda: product(a, b).numpy()  # noqa: E731
    block()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        block()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def add_allocator_argument(parser) -> None:
    parser.add_argument(
        "--allocator",
        default="reuse",
        choices=("reuse", "system"),
        help="reuse: restart with glibc settings that reuse freed memory, as the command line"
        " does (keras_unimixer.utils.allocator); system: the process's own settings",
    )


def apply_allocator(args) -> None:
    """Restart with the allocator that reuses freed memory, unless `--allocator system`."""
    if args.allocator == "reuse":
        restart_reusing_freed_memory()


def encoder_norm(mixer: str, norm: str) -> str:
    if norm == "native":
        return "siamese" if mixer.startswith("unimixer") else "post"
    return norm


def encoder_model(
    mixer: str, num_tokens: int, token_dim: int, num_layers: int, norm: str, layout: str = "auto"
):
    inputs = keras.Input((num_tokens, token_dim))
    mixing = NoMixing() if mixer == "none" else make_mixing(mixer, num_tokens, token_dim)
    encoder = UniMixerEncoder(
        num_layers=num_layers,
        mixing=mixing,
        ffn_multiplier=2,
        ffn_activation="swiglu",
        norm=encoder_norm(mixer, norm),
        layout=layout,
    )
    pooled = keras.layers.GlobalAveragePooling1D()(encoder(inputs))
    return keras.Model(inputs, keras.layers.Dense(1)(pooled))


def interleaved_step_seconds(models: dict, inputs, targets, steps: int) -> dict:
    """Median step time per model, one step of each model per round after two warm-up steps."""
    for model in models.values():
        model.train_on_batch(inputs, targets)  # compile
        model.train_on_batch(inputs, targets)
    times = {name: [] for name in models}
    for _ in range(steps):
        for name, model in models.items():
            start = time.perf_counter()
            model.train_on_batch(inputs, targets)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def time_cell(args, mixers, num_tokens, token_dim, jit, rng):
    shape = (args.batch_size, num_tokens, token_dim)
    # On the device once: numpy batches would be copied host-to-device every step, which on a
    # GPU costs more than the step (1 GB per step at T32 D1024, batch 8192).
    inputs = keras.ops.convert_to_tensor(rng.standard_normal(shape).astype("float32"))
    targets = keras.ops.convert_to_tensor(rng.integers(0, 2, (args.batch_size, 1)), "float32")
    keras.utils.clear_session()
    models = {}
    for layout in args.layouts.split(","):
        for mixer in mixers:
            if mixer == "rankmixer" and token_dim % num_tokens:
                continue
            model = encoder_model(mixer, num_tokens, token_dim, args.num_layers, args.norm, layout)
            model.compile(optimizer="adam", loss="mse", jit_compile=jit)
            models[(mixer, layout)] = model
    seconds = interleaved_step_seconds(models, inputs, targets, args.steps)
    rows = []
    for (mixer, layout), model in models.items():
        flops = 3 * flops_per_example(model) * args.batch_size
        rows.append(
            {
                "T": num_tokens,
                "D": token_dim,
                "mixer": mixer,
                "layout": layout,
                "norm": encoder_norm(mixer, args.norm),
                "jit": "xla" if jit else "off",
                "params": model.count_params(),
                "step_ms": 1e3 * seconds[(mixer, layout)],
                "examples_per_s": args.batch_size / seconds[(mixer, layout)],
                "flops": flops,
                "gflops": flops / seconds[(mixer, layout)] / 1e9,
            }
        )
    for row in rows:  # against RankMixer in the same layout
        reference = next(
            (r for r in rows if r["mixer"] == "rankmixer" and r["layout"] == row["layout"]), None
        )
        row["vs_rankmixer"] = row["step_ms"] / reference["step_ms"] if reference else None
        row["extra_flops"] = row["flops"] - reference["flops"] if reference else None
        row["rankmixer_ms"] = reference["step_ms"] if reference else None
    return rows


def flop_floor(extra_flops, rankmixer_ms, roofline_gflops):
    """The FLOP floor: the time a mixer's FLOPs beyond RankMixer's take at the measured matmul
    roofline, as a fraction of RankMixer's step (the least excess an exact implementation has);
    `None` where the mixer has no extra FLOPs."""
    if not extra_flops or extra_flops <= 0:
        return None
    return 1e3 * extra_flops / (roofline_gflops * 1e9) / rankmixer_ms


def add_flop_floor(row, roofline_gflops):
    row["flop_floor"] = flop_floor(row["extra_flops"], row["rankmixer_ms"], roofline_gflops)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--tokens", default="16,32")
    parser.add_argument("--dims", default="64,256")
    parser.add_argument("--mixers", default=",".join(MIXERS))
    parser.add_argument("--norm", default="post", choices=("post", "pre", "siamese", "native"))
    parser.add_argument(
        "--layouts", default="auto", help="UniMixerEncoder layouts to time, comma-separated"
    )
    parser.add_argument(
        "--jit-off-dims", default="64", help="D values also timed without XLA (TensorFlow)"
    )
    parser.add_argument(
        "--dtype-policy",
        default="float32",
        choices=("float32", "mixed_bfloat16"),
        help="Keras dtype policy of the models (mixed_bfloat16 on GPUs)",
    )
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="the accelerator's peak TFLOP/s in the policy's dtype, for an MFU column",
    )
    parser.add_argument("--output", default=None, help="results file (default: results/...)")
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument(
        "--json",
        default=None,
        help="also write one record per cell (mixer, tokens, dim, batch, dtype, step ms, MFU,"
        " device) to this path",
    )
    add_allocator_argument(parser)
    add_write_results(parser)
    args = parser.parse_args()
    apply_allocator(args)
    keras.config.set_dtype_policy(args.dtype_policy)
    compute_dtype = "bfloat16" if args.dtype_policy == "mixed_bfloat16" else "float32"
    mixers = args.mixers.split(",")
    unknown = sorted(set(mixers) - set(MIXERS))
    if unknown:
        parser.error(f"--mixers: unknown {unknown}; valid: {list(MIXERS)}")
    backend = keras.backend.backend()
    roofline = matmul_gflops(args.matmul_size, dtype=compute_dtype)
    print(f"matmul roofline ({compute_dtype}): {roofline:.1f} GFLOP/s")
    rng = np.random.default_rng(0)
    jit_off_dims = [int(d) for d in args.jit_off_dims.split(",") if d]
    rows = []
    for num_tokens in [int(t) for t in args.tokens.split(",")]:
        for token_dim in [int(d) for d in args.dims.split(",")]:
            jit_modes = [True] + ([False] if backend != "jax" and token_dim in jit_off_dims else [])
            for jit in jit_modes:
                for row in time_cell(args, mixers, num_tokens, token_dim, jit, rng):
                    rows.append(row)
                    print(
                        f"T={num_tokens:2d} D={token_dim:3d} {row['mixer']:14s} "
                        f"{row['layout']:11s} {row['norm']:8s} "
                        f"{row['jit']:3s} {row['step_ms']:8.1f} ms  {row['gflops']:6.1f} GFLOP/s"
                        f"  params {row['params']}",
                        flush=True,
                    )
    # Measured again at the end; the larger value is the roofline (robust to a busy moment).
    roofline = max(roofline, matmul_gflops(args.matmul_size, dtype=compute_dtype))
    for row in rows:
        row["fraction_of_matmul"] = row["gflops"] / roofline
        add_flop_floor(row, roofline)
        row["mfu"] = None if not args.peak_tflops else row["gflops"] / (1e3 * args.peak_tflops)
    write(rows, roofline, args, backend)
    if args.json:
        write_json(rows, args, roofline)


def device_name() -> str:
    """The device the backend computes on, e.g. "gpu: NVIDIA H100 80GB HBM3" (JAX)."""
    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        return f"{device.platform}: {getattr(device, 'device_kind', device)}"
    return platform.processor() or platform.machine()


def write_json(rows, args, roofline):
    records = [
        {
            "mixer": r["mixer"],
            "tokens": r["T"],
            "dim": r["D"],
            "batch": args.batch_size,
            "dtype": args.dtype_policy,
            "layout": r["layout"],
            "step_ms": r["step_ms"],
            "mfu": r["mfu"],
            "fraction_of_matmul_roofline": r["fraction_of_matmul"],
            "matmul_roofline_gflops": roofline,
            "vs_rankmixer": r["vs_rankmixer"],
            "device": device_name(),
        }
        for r in rows
    ]
    Path(args.json).write_text(json.dumps(records, indent=1) + "\n")


def auto_layout(mixer: str, num_tokens: int, token_dim: int) -> str:
    """The layout `UniMixerEncoder(layout="auto")` picks for `mixer` under this backend."""
    mixing = NoMixing() if mixer == "none" else make_mixing(mixer, num_tokens, token_dim)
    return "token_major" if prefers_token_major(mixing) else "batch_major"


def auto_layout_lines(rows, roofline) -> list[str]:
    """Each mixer in the layout `layout="auto"` gives it, against RankMixer in its own."""
    picked = [
        r
        for r in rows
        if r["mixer"] != "none" and r["layout"] == auto_layout(r["mixer"], r["T"], r["D"])
    ]
    if not any(r["mixer"] == "rankmixer" for r in picked):
        return []
    lines = [
        "",
        'With `layout="auto"` (the default: each mixer in the layout the encoder picks for it on'
        " this backend), against RankMixer in its own; FLOP floor as above:",
        "",
        "| T | D | XLA | mixer | layout | step ms | RankMixer layout | RankMixer ms | vs RankMixer "
        "| FLOP floor | excess / floor |",
        "|---:|---:|---|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in picked:
        reference = next(
            (
                q
                for q in picked
                if q["mixer"] == "rankmixer"
                and (q["T"], q["D"], q["jit"]) == (r["T"], r["D"], r["jit"])
            ),
            None,
        )
        if reference is None or r is reference:
            continue
        ratio = r["step_ms"] / reference["step_ms"]
        floor = flop_floor(r["flops"] - reference["flops"], reference["step_ms"], roofline)
        floor_cells = "| |" if floor is None else f"| {floor:.1%} | {(ratio - 1) / floor:.2f} |"
        lines.append(
            f"| {r['T']} | {r['D']} | {r['jit']} | {r['mixer']} | {r['layout']} | "
            f"{r['step_ms']:.1f} | {reference['layout']} | {reference['step_ms']:.1f} | "
            f"{ratio:.3f} " + floor_cells
        )
    return lines


def write(rows, roofline, args, backend):
    suffix = "" if args.norm == "post" else f"_{args.norm}"
    lines = [
        f"# Mixer training-step speed, {backend} backend, norm: {args.norm}",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        f"- Date: {datetime.date.today()}; keras {keras.__version__}; allocator:"
        f" {allocator_setting()} (`keras_unimixer.utils.allocator`)",
        f"- Command: `KERAS_BACKEND={backend} python benchmarks/mixer_speed.py "
        + " ".join(sys.argv[1:])
        + "`",
        f"- Batch {args.batch_size}, {args.num_layers} blocks, FFN SwiGLU x2, median of "
        f"{args.steps} interleaved steps after 2 warm-up steps; `none` = no mixing layer",
        f"- Dtype policy: {args.dtype_policy}; measured dense matmul roofline "
        f"({args.matmul_size}^3 in the compute dtype, same run, max of start and end): "
        f"{roofline:.1f} GFLOP/s"
        + (f"; MFU against a peak of {args.peak_tflops:g} TFLOP/s" if args.peak_tflops else ""),
        "",
        "- `vs RankMixer`: step time over RankMixer's in the same layout; `FLOP floor`: the time"
        " the mixer's FLOPs beyond RankMixer's take at the matmul roofline above, as a fraction of"
        " RankMixer's step; `excess / floor`: (vs RankMixer - 1) / FLOP floor (issue 18's target:"
        " <= 1.5 for UniMixing-Lite)",
        "",
        "| T | D | mixer | layout | norm | XLA | params | step ms | vs RankMixer | FLOP floor "
        "| excess / floor | examples/s | GFLOP/s | of matmul | MFU |",
        "|---:|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = "" if r["vs_rankmixer"] is None else f"{r['vs_rankmixer']:.3f}"
        floor = "" if not r["flop_floor"] else f"{r['flop_floor']:.1%}"
        excess = "" if not r["flop_floor"] else f"{(r['vs_rankmixer'] - 1) / r['flop_floor']:.2f}"
        lines.append(
            f"| {r['T']} | {r['D']} | {r['mixer']} | {r['layout']} | {r['norm']} | {r['jit']} | "
            f"{r['params']} | {r['step_ms']:.1f} | {ratio} | {floor} | {excess} | "
            f"{r['examples_per_s']:.0f} | {r['gflops']:.1f} | {r['fraction_of_matmul']:.0%} | "
            + ("-" if r.get("mfu") is None else f"{r['mfu']:.1%}")
            + " |"
        )
    lines += auto_layout_lines(rows, roofline)
    path = Path(args.output) if args.output else results_path(f"mixer_speed_{backend}{suffix}.md")
    path.write_text("\n".join(lines) + "\n")
    print(path.read_text())


if __name__ == "__main__":
    main()
