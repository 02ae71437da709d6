"""Serving latency of exported UniMixing models: constraints recomputed per request vs frozen.

Results go to runs/benchmarks/ (git-ignored); `--write-results` rewrites the committed
file under benchmarks/results/ instead.

Usage (from the repository root):
    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/frozen_mixing.py

UniMixing and UniMixing-Lite compute their matrices from raw parameters at every call (symmetry,
temperature, 10 Sinkhorn rounds in the log domain), a cost that does not shrink with the batch.
`keras_unimixer.layers.mixing.frozen_mixing_weights` (used by `keras_unimixer.export`) traces
them as constants instead. For each mixer and (T, D), a 2-block encoder + mean pooling + logit
(`mixer_speed.encoder_model`: random weights, the default block size, each architecture's own
norm) is exported with `model.export` twice, plain and inside `frozen_mixing_weights`, and each
SavedModel's `serve` is timed at batch 1 and 256 (p50 over timed calls after a warm-up). Outputs
of the two exports are compared; RankMixer (no constraints: both exports are the same graph) is
the reference. Writes benchmarks/results/frozen_mixing.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from export_latency import percentiles  # noqa: E402 (benchmarks/ is on sys.path when run)
from mixer_speed import encoder_model  # noqa: E402
from results_files import add_write_results, results_path  # noqa: E402 (benchmarks/ is on sys.path)

from keras_unimixer.layers.mixing import frozen_mixing_weights  # noqa: E402


def exported(model, directory: Path, frozen: bool):
    with frozen_mixing_weights(model) if frozen else contextlib.nullcontext():
        model.export(str(directory), format="tf_saved_model", verbose=False)
    return tf.saved_model.load(str(directory))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--shapes", default="16x64,32x256", help="TxD pairs")
    parser.add_argument("--mixers", default="rankmixer,unimixer,unimixer_lite")
    add_write_results(parser)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="frozen_mixing_"))
    rng = np.random.default_rng(0)
    rows = []
    for shape in args.shapes.split(","):
        num_tokens, token_dim = (int(value) for value in shape.split("x"))
        for mixer in args.mixers.split(","):
            keras.utils.clear_session()
            model = encoder_model(mixer, num_tokens, token_dim, num_layers=2, norm="native")
            serves = {
                frozen: exported(model, directory / f"{mixer}_{shape}_{frozen}", frozen)
                for frozen in (False, True)
            }
            for batch in (1, 256):
                inputs = tf.constant(
                    rng.standard_normal((batch, num_tokens, token_dim)).astype("float32")
                )
                difference = float(
                    np.abs(
                        serves[True].serve(inputs).numpy() - serves[False].serve(inputs).numpy()
                    ).max()
                )
                plain, frozen = (
                    percentiles(lambda s=serves[f], x=inputs: s.serve(x), args.repeats)[0]
                    for f in (False, True)
                )
                rows.append((mixer, num_tokens, token_dim, batch, plain, frozen, difference))
                print(
                    f"{mixer:14s} T={num_tokens} D={token_dim} batch {batch:3d}: recomputed "
                    f"{plain:8.2f} ms, frozen {frozen:8.2f} ms, max |diff| {difference:.1e}",
                    flush=True,
                )
    lines = [
        "# Serving latency with UniMixing constraints recomputed per request vs frozen",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        f"- Date: {datetime.date.today()}; keras {keras.__version__}, tensorflow {tf.__version__};"
        f" backend {keras.backend.backend()}",
        "- Command: `KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/frozen_mixing.py`",
        "- Model: 2-block encoder (SiameseNorm; RankMixer post-norm; SwiGLU x2) + mean pool + "
        "logit, random weights, default block size; `model.export` SavedModel `serve`",
        f"- p50 of {args.repeats} calls after 10 warm-up calls",
        "",
        "| mixer | T | D | batch | recomputed p50 ms | frozen p50 ms | speed-up | max abs diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {mixer} | {t} | {d} | {batch} | {plain:.2f} | {frozen:.2f} | {plain / frozen:.1f}x "
        f"| {difference:.1e} |"
        for mixer, t, d, batch, plain, frozen, difference in rows
    ]
    path = results_path("frozen_mixing.md")
    path.write_text("\n".join(lines) + "\n")
    print(path.read_text())


if __name__ == "__main__":
    main()
