"""Training step speed of each mixer, against this machine's measured matmul throughput.

Usage (from the repository root; run once per backend):
    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/mixer_speed.py
    KERAS_BACKEND=jax .venv/bin/python benchmarks/mixer_speed.py

For each mixer, T in {16, 32}, D in {64, 256}, batch 4096: a `UniMixerEncoder` (2 blocks, FFN
multiplier 2, SwiGLU for all mixers so that parameter counts are near-equal) + mean pooling + a
logit, trained with `train_on_batch` on one fixed batch. Reported: median step time
(forward+backward+Adam) over the timed steps, examples/s, parameters, and achieved GFLOP/s =
3 x analytic forward FLOPs (forward + backward ~ 3 forward) / step time, as a fraction of the dense
float32 matmul GFLOP/s measured in the same run (2048 x 2048 matmuls). TensorFlow is timed with
and without XLA (`jit_compile`); JAX always compiles. Appends to
benchmarks/results/mixer_speed_<backend>.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_unimixer.layers import UniMixerEncoder  # noqa: E402
from keras_unimixer.models.ranking import make_mixing  # noqa: E402
from keras_unimixer.scaling import flops_per_example  # noqa: E402

MIXERS = ("rankmixer", "unimixer", "unimixer_lite", "attention", "fm")
RESULTS = Path(__file__).resolve().parent / "results"


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """Dense float32 matmul throughput of this backend on this machine."""
    a = keras.random.normal((size, size), seed=1)
    b = keras.random.normal((size, size), seed=2)
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


def encoder_model(mixer: str, num_tokens: int, token_dim: int, num_layers: int):
    inputs = keras.Input((num_tokens, token_dim))
    mixing = make_mixing(mixer, num_tokens, token_dim)
    encoder = UniMixerEncoder(
        num_layers=num_layers, mixing=mixing, ffn_multiplier=2, ffn_activation="swiglu",
        norm="siamese" if mixer.startswith("unimixer") else "post",
    )  # fmt: skip
    pooled = keras.layers.GlobalAveragePooling1D()(encoder(inputs))
    return keras.Model(inputs, keras.layers.Dense(1)(pooled))


def time_steps(model, inputs, targets, steps: int) -> float:
    model.train_on_batch(inputs, targets)  # compile
    model.train_on_batch(inputs, targets)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(inputs, targets)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--tokens", default="16,32")
    parser.add_argument("--dims", default="64,256")
    parser.add_argument("--mixers", default=",".join(MIXERS))
    parser.add_argument(
        "--jit-off-dims", default="64", help="D values also timed without XLA (TensorFlow)"
    )
    args = parser.parse_args()
    backend = keras.backend.backend()
    jit_modes = (True,) if backend == "jax" else (True, False)
    roofline = matmul_gflops()
    print(f"matmul roofline: {roofline:.1f} GFLOP/s")
    rng = np.random.default_rng(0)
    rows = []
    for num_tokens in [int(t) for t in args.tokens.split(",")]:
        for token_dim in [int(d) for d in args.dims.split(",")]:
            shape = (args.batch_size, num_tokens, token_dim)
            inputs = rng.standard_normal(shape).astype("float32")
            targets = rng.integers(0, 2, (args.batch_size, 1)).astype("float32")
            for mixer in args.mixers.split(","):
                if mixer == "rankmixer" and token_dim % num_tokens:
                    continue
                jit_off_dims = [int(d) for d in args.jit_off_dims.split(",") if d]
                for jit in [j for j in jit_modes if j or token_dim in jit_off_dims]:
                    keras.utils.clear_session()
                    model = encoder_model(mixer, num_tokens, token_dim, args.num_layers)
                    model.compile(optimizer="adam", loss="mse", jit_compile=jit)
                    seconds = time_steps(model, inputs, targets, args.steps)
                    flops = 3 * flops_per_example(model) * args.batch_size
                    row = {
                        "T": num_tokens, "D": token_dim, "mixer": mixer,
                        "jit": "xla" if jit else "off", "params": model.count_params(),
                        "step_ms": 1e3 * seconds, "examples_per_s": args.batch_size / seconds,
                        "gflops": flops / seconds / 1e9,
                    }  # fmt: skip
                    row["fraction_of_matmul"] = row["gflops"] / roofline
                    rows.append(row)
                    print(
                        f"T={num_tokens:2d} D={token_dim:3d} {mixer:14s} {row['jit']:3s} "
                        f"{row['step_ms']:8.1f} ms  {row['gflops']:6.1f} GFLOP/s "
                        f"({row['fraction_of_matmul']:.0%})  params {row['params']}"
                    )
    # Measured again at the end; the larger value is the roofline (robust to a busy moment).
    roofline = max(roofline, matmul_gflops())
    for row in rows:
        row["fraction_of_matmul"] = row["gflops"] / roofline
    write(rows, roofline, args, backend)


def write(rows, roofline, args, backend):
    lines = [
        f"# Mixer training-step speed, {backend} backend",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        f"- Date: {datetime.date.today()}; keras {keras.__version__}",
        f"- Command: `KERAS_BACKEND={backend} .venv/bin/python benchmarks/mixer_speed.py`",
        f"- Batch {args.batch_size}, {args.num_layers} blocks, FFN SwiGLU x2, median of "
        f"{args.steps} steps after 2 warm-up steps",
        "- Measured dense matmul roofline (float32, 2048^3, same run, max of start and end): "
        f"{roofline:.1f} GFLOP/s",
        "",
        "| T | D | mixer | XLA | params | step ms | examples/s | GFLOP/s | of matmul |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['T']} | {r['D']} | {r['mixer']} | {r['jit']} | {r['params']} | "
        f"{r['step_ms']:.1f} | {r['examples_per_s']:.0f} | {r['gflops']:.1f} | "
        f"{r['fraction_of_matmul']:.0%} |"
        for r in rows
    ]
    path = RESULTS / f"mixer_speed_{backend}.md"
    path.write_text("\n".join(lines) + "\n")
    print(path.read_text())


if __name__ == "__main__":
    main()
