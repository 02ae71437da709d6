"""Where a training step's time goes: the step with one part taken out at a time.

Results go to runs/benchmarks/ (git-ignored); `--write-results` rewrites the committed
file under benchmarks/results/ instead.

Usage (from the repository root):
    KERAS_BACKEND=jax .venv/bin/python benchmarks/step_profile.py
    KERAS_BACKEND=jax python benchmarks/step_profile.py --dtype-policy mixed_bfloat16 \\
        --batch-size 8192 --dims 1024 --json gpu_profile.json   (benchmarks/gpu/run.sh)

For each mixer and (T, D): `benchmarks/mixer_speed.py`'s encoder (2 post-norm blocks, SwiGLU x2,
token-major), and variants of it, timed interleaved in one process (median step):
- `full`: the model as it is;
- `no norms`: every RMSNormalization replaced by the identity;
- `no mixing`: the mixing layer replaced by the identity;
- `sgd`: plain SGD instead of Adam (what the optimizer's update costs beyond SGD's);
- `forward`: the forward pass alone (`predict_on_batch`), the rest being backward + update.
Each part's share is (full - variant) / full. Parts overlap (XLA fuses across them), so the
shares need not add up; they say what removing a part would save, which is what a fix needs.
`--json` writes one record per (mixer, T, D, variant) with the step ms and the device.
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from mixer_speed import (  # noqa: E402
    add_allocator_argument,
    apply_allocator,
    device_name,
    encoder_model,
)
from results_files import add_write_results, results_path  # noqa: E402

from keras_unimixer.utils.allocator import allocator_setting  # noqa: E402

VARIANTS = ("full", "no norms", "no mixing", "sgd", "forward")


def _identity_norm(self, inputs):
    return inputs


def variant_model(variant: str, mixer: str, num_tokens: int, token_dim: int, num_layers: int):
    """The compiled encoder of `variant` (`no norms` takes effect where the caller traces it)."""
    model = encoder_model(
        "none" if variant == "no mixing" else mixer,
        num_tokens,
        token_dim,
        num_layers,
        "post",
        "token_major",
    )
    model.compile(optimizer="sgd" if variant == "sgd" else "adam", loss="mse")
    return model


def step_function(model, variant, inputs, targets):
    if variant == "forward":
        return lambda: model.predict_on_batch(inputs)
    return lambda: model.train_on_batch(inputs, targets)


def profile_cell(args, mixer, num_tokens, token_dim, rng) -> list[dict]:
    shape = (args.batch_size, num_tokens, token_dim)
    inputs = keras.ops.convert_to_tensor(rng.standard_normal(shape).astype("float32"))
    targets = keras.ops.convert_to_tensor(rng.integers(0, 2, (args.batch_size, 1)), "float32")
    keras.utils.clear_session()
    steps, original_call = {}, keras.layers.RMSNormalization.call
    for variant in VARIANTS:
        model = variant_model(variant, mixer, num_tokens, token_dim, args.num_layers)
        step = step_function(model, variant, inputs, targets)
        keras.layers.RMSNormalization.call = (
            _identity_norm if variant == "no norms" else original_call
        )
        try:  # traced (and compiled) here, under this variant's norm
            step()
            step()
        finally:
            keras.layers.RMSNormalization.call = original_call
        steps[variant] = step
    times = {variant: [] for variant in VARIANTS}
    for _ in range(args.steps):
        for variant, step in steps.items():
            start = time.perf_counter()
            step()
            times[variant].append(time.perf_counter() - start)
    full = statistics.median(times["full"])
    rows = []
    for variant in VARIANTS:
        seconds = statistics.median(times[variant])
        rows.append(
            {
                "mixer": mixer,
                "tokens": num_tokens,
                "dim": token_dim,
                "batch": args.batch_size,
                "dtype": args.dtype_policy,
                "variant": variant,
                "step_ms": 1e3 * seconds,
                "share_removed": (full - seconds) / full if variant != "full" else None,
                "device": device_name(),
            }
        )
    return rows


def write(rows, args):
    backend = keras.backend.backend()
    lines = [
        f"# Where a training step's time goes ({backend}, {args.dtype_policy})",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
        f"device: {rows[0]['device'] if rows else '-'}",
        f"- Date: {datetime.date.today()}; keras {keras.__version__}; allocator: "
        f"{allocator_setting()}",
        f"- Command: `KERAS_BACKEND={backend} python benchmarks/step_profile.py "
        + " ".join(sys.argv[1:])
        + "`",
        f"- Batch {args.batch_size}, {args.num_layers} post-norm blocks, SwiGLU x2, token-major; "
        f"median of {args.steps} interleaved steps after 2 warm-up steps. `share`: (full - "
        "variant) / full, the time that taking the part out saves.",
        "",
        "| mixer | T | D | variant | step ms | share |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        share = "" if r["share_removed"] is None else f"{r['share_removed']:.1%}"
        lines.append(
            f"| {r['mixer']} | {r['tokens']} | {r['dim']} | {r['variant']} | "
            f"{r['step_ms']:.1f} | {share} |"
        )
    path = results_path(f"step_profile_{backend}.md")
    path.write_text("\n".join(lines) + "\n")
    print(path.read_text())
    if args.json:
        json_path = results_path(args.json) if not os.path.isabs(args.json) else args.json
        with open(json_path, "w") as handle:
            json.dump(rows, handle, indent=1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mixers", default="rankmixer,unimixer_lite")
    parser.add_argument("--tokens", default="16")
    parser.add_argument("--dims", default="256")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--dtype-policy", default="float32", choices=("float32", "mixed_bfloat16"))
    parser.add_argument("--json", default=None, help="also write the records as JSON here")
    add_allocator_argument(parser)
    add_write_results(parser)
    args = parser.parse_args()
    apply_allocator(args)
    keras.config.set_dtype_policy(args.dtype_policy)
    rng = np.random.default_rng(0)
    rows = []
    for mixer in args.mixers.split(","):
        for num_tokens in [int(t) for t in args.tokens.split(",")]:
            for token_dim in [int(d) for d in args.dims.split(",")]:
                for row in profile_cell(args, mixer, num_tokens, token_dim, rng):
                    rows.append(row)
                    print(
                        f"{mixer} T={num_tokens} D={token_dim} {row['variant']:10s} "
                        f"{row['step_ms']:8.1f} ms",
                        flush=True,
                    )
    write(rows, args)


if __name__ == "__main__":
    main()
