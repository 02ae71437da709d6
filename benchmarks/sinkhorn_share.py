"""What share of a UniMixing training step goes to the matrix constraints (symmetry, temperature,

Results go to runs/benchmarks/ (git-ignored); `--write-results` rewrites the committed
file under benchmarks/results/ instead.
Sinkhorn), at batch 512 and 4096?

The constraints turn the raw mixing parameters into `W_G` / `W_B` once per step, whatever the
batch, so their share shrinks as the batch grows. Measured three ways against the live model's
step: the constraints alone (a training step of a model whose output is the sum of the live
model's constrained matrices: their forward, backward and Adam on the raw mixing parameters, no
data), the live model without the gradient-free balancing phase (`sinkhorn_max_iterations=0`),
and the model with its matrices frozen as constants (`frozen_mixing_weights`; this also drops the
mixing's batch-sized weight gradient, so it overstates the constraints' share).
Models are `benchmarks/mixer_speed.py`'s encoder (2 blocks, SwiGLU FFN x2, post-norm), trained
with `train_on_batch`; steps are interleaved so machine drift hits every variant alike.

Usage (from the repository root):
    KERAS_BACKEND=jax .venv/bin/python benchmarks/sinkhorn_share.py
Writes benchmarks/results/sinkhorn_share_<backend>.md.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from mixer_speed import interleaved_step_seconds  # noqa: E402
from results_files import add_write_results, results_path  # noqa: E402 (benchmarks/ is on sys.path)

from keras_unimixer.layers import UniMixerEncoder  # noqa: E402
from keras_unimixer.layers.mixing import (  # noqa: E402
    frozen_mixing_weights,
    make_mixing,
    mixing_layers,
)


def model_for(mixer, num_tokens, token_dim, **options):
    inputs = keras.Input((num_tokens, token_dim))
    mixing = make_mixing(mixer, num_tokens, token_dim, **options)
    encoder = UniMixerEncoder(
        num_layers=2, mixing=mixing, ffn_multiplier=2, ffn_activation="swiglu", norm="post"
    )
    pooled = keras.layers.GlobalAveragePooling1D()(encoder(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(pooled))
    model.compile(optimizer="adam", loss="mse")
    return model


class ConstraintsOnly(keras.layers.Layer):
    """The sum of the given UniMixing layers' constrained matrices (their weights are shared)."""

    def __init__(self, layers, **kwargs):
        super().__init__(**kwargs)
        self.mixings = layers

    def call(self, inputs):
        total = sum(
            keras.ops.sum(layer.global_weights()) + keras.ops.sum(layer.local_weights())
            for layer in self.mixings
        )
        return inputs * 0.0 + total


def constraints_model(model):
    inputs = keras.Input((1,))
    constrained = keras.Model(inputs, ConstraintsOnly(mixing_layers(model))(inputs))
    constrained.compile(optimizer="adam", loss="mse")
    return constrained


def measure(mixer, num_tokens, token_dim, batch_size, steps, rng, rounds=10) -> dict:
    keras.utils.clear_session()
    inputs = rng.standard_normal((batch_size, num_tokens, token_dim)).astype("float32")
    targets = rng.standard_normal((batch_size, 1)).astype("float32")
    models = {
        "live": model_for(mixer, num_tokens, token_dim, sinkhorn_iterations=rounds),
        "frozen": model_for(mixer, num_tokens, token_dim, sinkhorn_iterations=rounds),
        "no_balancing": model_for(
            mixer,
            num_tokens,
            token_dim,
            sinkhorn_iterations=rounds,
            mixing_options={"sinkhorn_max_iterations": 0},
        ),
    }
    with frozen_mixing_weights(models["frozen"]):
        seconds = interleaved_step_seconds(models, inputs, targets, steps)
    zeros = np.zeros((1, 1), "float32")
    alone = interleaved_step_seconds(
        {"alone": constraints_model(models["live"])}, zeros, zeros, steps
    )["alone"]
    live = seconds["live"]
    return {
        "mixer": mixer,
        "T": num_tokens,
        "D": token_dim,
        "batch": batch_size,
        "rounds": rounds,
        "live_ms": 1e3 * live,
        "frozen_ms": 1e3 * seconds["frozen"],
        "no_balancing_ms": 1e3 * seconds["no_balancing"],
        "alone_ms": 1e3 * alone,
        "alone_share": alone / live,
        "frozen_share": (live - seconds["frozen"]) / live,
        "balancing_share": (live - seconds["no_balancing"]) / live,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixers", default="unimixer_lite,unimixer")
    parser.add_argument("--shapes", default="16x64,32x256", help="TxD cells")
    parser.add_argument("--batches", default="512,4096")
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument(
        "--rounds", default="10", help="differentiable Sinkhorn rounds (sinkhorn_iterations)"
    )
    parser.add_argument("--output", default=None)
    add_write_results(parser)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for mixer in args.mixers.split(","):
        for shape in args.shapes.split(","):
            num_tokens, token_dim = (int(v) for v in shape.split("x"))
            for batch, rounds in itertools.product(
                (int(b) for b in args.batches.split(",")), (int(r) for r in args.rounds.split(","))
            ):
                row = measure(mixer, num_tokens, token_dim, batch, args.steps, rng, rounds)
                rows.append(row)
                print(
                    f"{mixer:14s} T{num_tokens} D{token_dim} batch {batch:5d} rounds {rounds}: "
                    f"live "
                    f"{row['live_ms']:.1f} ms, frozen {row['frozen_ms']:.1f} ms, no balancing "
                    f"{row['no_balancing_ms']:.1f} ms, constraints alone {row['alone_ms']:.1f} ms "
                    f"({row['alone_share']:.1%})",
                    flush=True,
                )
    backend = keras.backend.backend()
    command = "python benchmarks/sinkhorn_share.py " + " ".join(argv or sys.argv[1:])
    lines = [
        f"Constraint share of a UniMixing training step, {backend}, {datetime.date.today()}, "
        f"{platform.machine()} {os.cpu_count()} CPUs; `{command.strip()}`. Median of "
        f"{args.steps} interleaved steps (forward, backward, Adam). constraints alone: a step of "
        "the constrained matrices by themselves, as a share of the live step; balancing: (live - "
        "no balancing phase) / live; frozen: (live - frozen) / live, an upper bound.",
        "",
        "| mixer | T | D | batch | rounds | live ms | constraints alone ms | constraints share "
        "| no balancing ms | balancing share | frozen ms | frozen share |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mixer']} | {r['T']} | {r['D']} | {r['batch']} | {r['rounds']} "
            f"| {r['live_ms']:.1f} "
            f"| {r['alone_ms']:.1f} | {r['alone_share']:.1%} | {r['no_balancing_ms']:.1f} "
            f"| {r['balancing_share']:.1%} | {r['frozen_ms']:.1f} | {r['frozen_share']:.1%} |"
        )
    output = Path(args.output or results_path(f"sinkhorn_share_{backend}.md"))
    output.write_text("\n".join(lines) + "\n")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
