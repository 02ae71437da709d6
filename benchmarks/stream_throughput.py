"""Streaming input throughput and memory on generated Criteo-format TSV (13 counts, 26 categories).

Results go to runs/benchmarks/ (git-ignored); `--write-results` rewrites the committed
file under benchmarks/results/ instead.

For each row count: write the TSV (Zipf-distributed ids, missing values), then in a fresh process
build the dataset from `keras_unimixer/datasets/descriptions/criteo.yaml` (the vocabulary pass with
min_count 10 over the training rows) and stream one shuffled training epoch of 4096-row batches
(parse, split, id lookup, standardization, shuffle buffer, batching: everything `fit` receives).
Reports rows/s of each phase and the process's peak RSS.

Usage: .venv/bin/python benchmarks/stream_throughput.py --rows 1000000,10000000 --dir /tmp/criteo
Writes benchmarks/results/stream_throughput.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from results_files import add_write_results, results_path  # noqa: E402 (benchmarks/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]


def write_criteo(path: Path, rows: int, seed: int = 0, chunk: int = 500_000) -> None:
    """Criteo-format TSV: label, I1..I13 (counts, some missing), C1..C26 (hex ids, Zipf)."""
    import numpy as np
    import pyarrow as pa
    from pyarrow import csv

    rng = np.random.default_rng(seed)
    options = csv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    with open(path, "wb") as handle:
        for start in range(0, rows, chunk):
            size = min(chunk, rows - start)
            columns = {"label": (rng.random(size) < 0.25).astype("int8")}
            for index in range(1, 14):
                counts = rng.geometric(0.05, size).astype("float64") - 1
                counts[rng.random(size) < 0.2] = np.nan
                columns[f"I{index}"] = pa.array(counts, from_pandas=True).cast(pa.int64())
            for index in range(1, 27):
                cardinality = [10, 1_000, 100_000, 10_000_000][index % 4]
                ids = np.minimum(rng.zipf(1.2, size), cardinality) * 2_654_435_761 % 2**32
                values = pa.compute.cast(pa.array(ids.astype("uint32")), pa.string())
                values = pa.compute.if_else(pa.array(rng.random(size) < 0.05), None, values)
                columns[f"C{index}"] = values
            csv.write_csv(pa.table(columns), handle, write_options=options)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(data_dir: str) -> dict:
    """(Run in a fresh process.) Vocabulary pass and one streamed epoch; rows/s and peak RSS."""
    from keras_unimixer import datasets

    description = datasets.DESCRIPTIONS_DIR / "criteo.yaml"
    start = time.perf_counter()
    data = datasets.read_streaming_dataset(description, data_dir=data_dir)
    fit_seconds = time.perf_counter() - start
    peak_after_vocabulary = _peak_rss_mib()
    train_rows = data.num_examples("train")
    batches = data.batches("train", 4096, shuffle=True, seed=0)
    start = time.perf_counter()
    streamed = 0
    for index in range(len(batches)):
        features, labels = batches[index]
        streamed += len(labels)
    epoch_seconds = time.perf_counter() - start
    vocabulary = sum(len(v.values or []) for v in data.vocabularies.values())
    return {
        "train_rows": train_rows,
        "streamed_rows": streamed,
        "vocabulary_pass_rows_per_s": train_rows / fit_seconds,
        "epoch_rows_per_s": streamed / epoch_seconds,
        "vocabulary_entries": vocabulary,
        "peak_rss_after_vocabulary_pass_mib": peak_after_vocabulary,
        "rss_end_of_epoch_mib": _current_rss_mib(),
        "peak_rss_mib": _peak_rss_mib(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--dir", default="/tmp/criteo_stream")
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    add_write_results(parser)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0
    results = []
    for rows in [int(r) for r in args.rows.split(",") if r]:
        directory = Path(args.dir) / str(rows)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "train.txt"
        if not path.is_file():
            start = time.perf_counter()
            write_criteo(path, rows)
            print(f"wrote {rows:,} rows in {time.perf_counter() - start:.0f} s", flush=True)
        environment = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
        output = subprocess.run(
            [sys.executable, __file__, "--measure", str(directory)],
            capture_output=True,
            text=True,
            env=environment,
            check=True,
        ).stdout
        result = {
            "rows": rows,
            "file_mib": path.stat().st_size / 2**20,
            **json.loads(output.strip().splitlines()[-1]),
        }
        print(json.dumps(result), flush=True)
        results.append(result)
    lines = [
        f"Streaming input, generated Criteo-format TSV, {datetime.date.today()}, "
        f"{platform.machine()} {os.cpu_count()} CPUs; `python benchmarks/stream_throughput.py "
        f"--rows {args.rows}` (description: keras_unimixer/datasets/descriptions/criteo.yaml; "
        "epoch: one shuffled pass of 4096-row batches as fit receives them).",
        "",
        "| rows in file | file MiB | train rows | vocabulary pass rows/s | epoch rows/s "
        "| vocabulary entries | peak RSS after vocabulary pass MiB | RSS at end of epoch MiB "
        "| peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['rows']:,} | {r['file_mib']:,.0f} | {r['train_rows']:,} "
            f"| {r['vocabulary_pass_rows_per_s']:,.0f} | {r['epoch_rows_per_s']:,.0f} "
            f"| {r['vocabulary_entries']:,} | {r['peak_rss_after_vocabulary_pass_mib']:,.0f} "
            f"| {r['rss_end_of_epoch_mib']:,.0f} | {r['peak_rss_mib']:,.0f} |"
        )
    results_path("stream_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
