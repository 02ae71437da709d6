"""Does `synthetic_stream` reward capacity? Test AUC against training rows and model size.

Results go to runs/benchmarks/ (git-ignored); `--write-results` rewrites the committed
file under benchmarks/results/ instead.

One pass over the training rows per run (streamed: each row seen once, as in industrial
one-epoch training), the same teacher, validation/test rows and budget rule for every run; sizes
are the scaling ladder's (`keras_unimixer.experiments.scaling.SIZES`), built by the ladder's own
`train_config`. The mid-size model runs at every row count; the other sizes at the largest.

Usage (from the repository root):
    KERAS_BACKEND=jax .venv/bin/python benchmarks/synthetic_stream_capacity.py \
        --model rankmixer --rows 100000,1000000,3000000 --mid m --sizes s,l

Writes benchmarks/results/synthetic_stream_capacity.md (appending each run to
<output>/capacity.jsonl, so an interrupted benchmark continues).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from results_files import add_write_results, results_path  # noqa: E402 (benchmarks/ on sys.path)

from keras_unimixer.experiments.scaling import SIZES  # noqa: E402
from keras_unimixer.experiments.scaling.ladder import LadderConfig, train_config  # noqa: E402
from keras_unimixer.experiments.training import load_data, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run_one(model, size, rows, seed, output, batch_size):
    ladder = LadderConfig(
        dataset="synthetic_stream", models=(model,), sizes=tuple(SIZES), seeds=(seed,), epochs=1,
        batch_size=batch_size, max_examples=rows, output=str(output / f"{size}_{rows}"),
    )  # fmt: skip
    config = train_config(ladder, model, size, seed)
    data = load_data(config)
    start = time.monotonic()
    metrics = train(config, data=data)
    return {
        "model": model, "size": size, "rows": rows, "seed": seed,
        "backend": keras.backend.backend(),
        "test_auc": metrics["test"]["auc"], "test_logloss": metrics["test"]["logloss"],
        "validation_auc": metrics["validation"]["auc"],
        "oracle_test_auc": data.report["oracle_test_auc"],
        "dense_params": metrics["parameters"]["dense"],
        "flops_per_example": metrics["flops_per_example"],
        "seconds": round(time.monotonic() - start, 1),
    }  # fmt: skip


def markdown(rows, command):
    lines = [
        f"`synthetic_stream` capacity check, {datetime.date.today()}, {platform.machine()} "
        f"{os.cpu_count()} CPUs, backend {rows[0]['backend']}; `{command}`. One streamed pass "
        "over the training rows, batch and learning rate as the scaling ladder's; exact test AUC "
        f"on {100_000:,} test rows; the oracle is the teacher's own probability.",
        "",
        "| model | size (layers x tokens x width) | dense params | training rows | test AUC "
        "| test log loss | oracle AUC | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["rows"], r["dense_params"])):
        shape = "x".join(str(v) for v in SIZES[r["size"]])
        lines.append(
            f"| {r['model']} | {r['size']} ({shape}) | {r['dense_params']:,} | {r['rows']:,} "
            f"| {r['test_auc']:.4f} | {r['test_logloss']:.4f} | {r['oracle_test_auc']:.4f} "
            f"| {r['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rankmixer")
    parser.add_argument("--rows", default="100000,1000000,3000000")
    parser.add_argument("--mid", default="m", help="the size run at every row count")
    parser.add_argument("--sizes", default="s,l", help="sizes run at the largest row count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--output", default="runs/synthetic_capacity")
    add_write_results(parser)
    args = parser.parse_args(argv)
    counts = [int(r) for r in args.rows.split(",")]
    jobs = [(args.mid, rows) for rows in counts]
    jobs += [(size, counts[-1]) for size in args.sizes.split(",") if size]
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    log = output / "capacity.jsonl"
    done = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    for size, rows in jobs:
        if any(r["size"] == size and r["rows"] == rows and r["model"] == args.model for r in done):
            continue
        row = run_one(args.model, size, rows, args.seed, output, args.batch_size)
        print(row, flush=True)
        with open(log, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        done.append(row)
        keras.utils.clear_session()
    command = "python benchmarks/synthetic_stream_capacity.py " + " ".join(argv or sys.argv[1:])
    text = markdown([r for r in done if r["model"] == args.model], command)
    results_path("synthetic_stream_capacity.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
