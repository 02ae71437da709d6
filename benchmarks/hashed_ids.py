"""A 10^8-bucket hashed feature trains without a vocabulary pass.

Results go to runs/benchmarks/ (git-ignored); `--write-results` rewrites the committed
file under benchmarks/results/ instead.

Writes a TSV with an open id space (`uid`: random 63-bit ids, nearly all distinct) and a small
categorical feature that carries the signal, describes `uid` with `hash_buckets: 100_000_000`
(no vocabulary pass: the embedding table is sized by the declared bucket count), trains a DNN for
one epoch with `train`, and reports the table size, the time to build the dataset, training time,
peak RSS and exact test AUC.

Usage: KERAS_BACKEND=jax .venv/bin/python benchmarks/hashed_ids.py --rows 200000
Writes benchmarks/results/hashed_ids.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
from results_files import add_write_results, results_path  # noqa: E402 (benchmarks/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
BUCKETS = 100_000_000


def write_data(folder: Path, rows: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    ads = rng.integers(0, 1000, rows)
    effect = rng.normal(0.0, 1.5, 1000)
    labels = (rng.random(rows) < 1 / (1 + np.exp(-(effect[ads] - 1.0)))).astype(int)
    uids = rng.integers(0, 2**63 - 1, rows, dtype=np.int64)
    lines = (f"{y}\t{u:x}\ta{a}" for y, u, a in zip(labels, uids, ads, strict=True))
    (folder / "data.tsv").write_text("\n".join(lines) + "\n")
    description = {
        "name": "hashed_ids",
        "format": "tsv",
        "header": False,
        "columns": ["label", "uid", "ad"],
        "files": ["data.tsv"],
        "split_fractions": [0.8, 0.1, 0.1],
        "labels": {"click": {"column": "label", "kind": "binary"}},
        "features": {
            "uid": {"kind": "categorical", "hash_buckets": BUCKETS, "group": "user"},
            "ad": {"kind": "categorical", "group": "item"},
        },
    }
    path = folder / "hashed_ids.json"
    path.write_text(json.dumps(description))
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dir", default="/tmp/hashed_ids")
    add_write_results(parser)
    args = parser.parse_args(argv)
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    description = write_data(folder, args.rows)

    import keras

    from keras_unimixer import datasets
    from keras_unimixer.experiments.training import TrainConfig, train

    start = time.perf_counter()
    data = datasets.read_streaming_dataset(description)
    build_seconds = time.perf_counter() - start
    config = TrainConfig(
        dataset=str(description),
        model="dnn",
        embedding_dim=4,
        hidden_units=(64,),
        batch_size=4096,
        epochs=1,
        output=str(folder / "run"),
        overwrite=True,
        verbose=0,
    )
    start = time.perf_counter()
    metrics = train(config, data=data)
    train_seconds = time.perf_counter() - start
    sizes = {f.name: f.vocabulary_size for f in data.features}
    auc = metrics["test"]["auc"]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    command = "python benchmarks/hashed_ids.py " + " ".join(argv or sys.argv[1:])
    backend = keras.backend.backend()
    lines = [
        f"Hashed ids, {datetime.date.today()}, {platform.machine()} {os.cpu_count()} CPUs, "
        f"backend {backend}; `KERAS_BACKEND={backend} {command}`.",
        "",
        "| rows | uid table rows | embedding params | dataset built (s) | train 1 epoch (s) "
        "| peak RSS MiB | test AUC |",
        "|---|---|---|---|---|---|---|",
        f"| {args.rows:,} | {sizes['uid']:,} | {metrics['parameters']['embedding']:,} "
        f"| {build_seconds:.1f} | {train_seconds:.1f} | {rss:,.0f} | {auc:.4f} |",
    ]
    text = "\n".join(lines) + "\n"
    results_path("hashed_ids.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
