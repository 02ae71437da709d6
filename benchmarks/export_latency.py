"""Predict latency of an exported MovieLens model: Keras predict vs SavedModel vs ONNX Runtime.

Results go to runs/benchmarks/ (git-ignored); `--write-results` rewrites the committed
file under benchmarks/results/ instead.

Usage (from the repository root):
    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/export_latency.py

Trains the default UniMixer-Lite model on MovieLens 100K (3 epochs), exports it as a SavedModel
and as ONNX (timing both exports), then times single requests of batch 1 and 256 (raw features
for the SavedModel and ONNX, encoded ids for Keras) after a warm-up, and writes
benchmarks/results/export_latency.md (p50/p99 in milliseconds, machine, date, command).
Keras is timed both with `model.predict` (what users call; it builds a dataset per call) and
with a direct `model(x)` call under `tf.function`.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from results_files import add_write_results, results_path  # noqa: E402 (benchmarks/ is on sys.path)

from keras_unimixer import datasets, export  # noqa: E402
from keras_unimixer.experiments.training import TrainConfig, train  # noqa: E402


def percentiles(function, repeats: int) -> tuple[float, float]:
    for _ in range(10):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=300)
    add_write_results(parser)
    args = parser.parse_args()
    import onnxruntime

    directory = Path(tempfile.mkdtemp(prefix="export_latency_"))
    config = TrainConfig(dataset="movielens", epochs=3, output=str(directory / "run"), verbose=0)
    train(config)
    model = keras.saving.load_model(directory / "run" / "model.keras")
    spec = export.read_serving_spec(directory / "run")
    start = time.perf_counter()
    version = export.export_savedmodel(model, spec, directory / "saved" / "movielens")
    savedmodel_seconds = time.perf_counter() - start
    start = time.perf_counter()
    onnx_path = export.export_onnx(model, spec, directory / "model.onnx")
    onnx_seconds = time.perf_counter() - start

    data = datasets.load_movielens()
    features, _ = data.arrays("test")
    serving = tf.saved_model.load(str(version)).signatures[export.SIGNATURE]
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    direct = tf.function(lambda x: model(x, training=False))
    rows = []
    for batch in (1, 256):
        encoded = {name: values[:batch] for name, values in features.items()}
        raw = export.raw_from_encoded(spec, encoded)
        raw_tensors = {
            n: tf.constant(v.astype(str) if v.dtype == object else v) for n, v in raw.items()
        }
        feeds = {n: v.astype(str) if v.dtype == object else v for n, v in raw.items()}
        encoded_tensors = {n: tf.constant(v) for n, v in encoded.items()}
        candidates = {
            "Keras model.predict (encoded ids)": lambda x=encoded: model.predict(x, verbose=0),
            "Keras model(x) in tf.function (encoded ids)": lambda x=encoded_tensors: direct(x),
            "SavedModel serving_default (raw)": lambda x=raw_tensors: serving(**x),
            "ONNX Runtime (raw)": lambda x=feeds: session.run(None, x),
        }
        for name, function in candidates.items():
            p50, p99 = percentiles(function, args.repeats)
            rows.append((name, batch, p50, p99))
            print(f"{name:45s} batch {batch:4d}: p50 {p50:8.3f} ms  p99 {p99:8.3f} ms")

    lines = [
        "# Export and predict latency (MovieLens 100K, default UniMixer-Lite model)",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        f"- Date: {datetime.date.today()}; keras {keras.__version__}, tensorflow {tf.__version__},"
        f" onnxruntime {onnxruntime.__version__}; backend {keras.backend.backend()}",
        "- Command: `KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/export_latency.py`",
        f"- Export time: SavedModel {savedmodel_seconds:.1f} s, ONNX {onnx_seconds:.1f} s "
        f"(opset {export.onnx_opset(onnx_path)}; includes its SavedModel and a tf2onnx process)",
        f"- {args.repeats} timed calls after 10 warm-up calls, one request per call",
        "",
        "| path | batch | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {batch} | {p50:.3f} | {p99:.3f} |" for name, batch, p50, p99 in rows]
    path = results_path("export_latency.md")
    path.write_text("\n".join(lines) + "\n")
    print(path.read_text())


if __name__ == "__main__":
    main()
