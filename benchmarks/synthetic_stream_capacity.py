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

`--embedding-optimizer rowwise_adagrad` (with `--embedding-learning-rate`) trains the tables
row-sparse, so that a step no longer costs the whole tables; `--seeds 0,1,2` repeats every run.

Writes synthetic_stream_capacity.md (`_<table optimizer>.md` with one; appending each run to
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
import numpy as np  # noqa: E402
from results_files import add_write_results, results_path  # noqa: E402 (benchmarks/ on sys.path)

from keras_unimixer.experiments.scaling import SIZES  # noqa: E402
from keras_unimixer.experiments.scaling.ladder import LadderConfig, train_config  # noqa: E402
from keras_unimixer.experiments.training import load_data, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run_one(model, size, rows, seed, output, batch_size, tables=None, tables_lr=None):
    ladder = LadderConfig(
        dataset="synthetic_stream",
        models=(model,),
        sizes=tuple(SIZES),
        seeds=(seed,),
        epochs=1,
        batch_size=batch_size,
        max_examples=rows,
        output=str(output / f"{size}_{rows}_seed{seed}_{tables or 'adam'}"),
    )
    config = train_config(ladder, model, size, seed)
    config.embedding_optimizer, config.embedding_learning_rate = tables, tables_lr
    data = load_data(config)
    start = time.monotonic()
    metrics = train(config, data=data)
    return {
        "model": model,
        "size": size,
        "rows": rows,
        "seed": seed,
        "backend": keras.backend.backend(),
        "table_optimizer": tables or "adam",
        "table_learning_rate": tables_lr,
        "test_auc": metrics["test"]["auc"],
        "test_logloss": metrics["test"]["logloss"],
        "validation_auc": metrics["validation"]["auc"],
        "oracle_test_auc": data.report["oracle_test_auc"],
        "dense_params": metrics["parameters"]["dense"],
        "flops_per_example": metrics["flops_per_example"],
        "seconds": round(time.monotonic() - start, 1),
    }


def _key(row) -> tuple:
    return row["model"], row.get("table_optimizer", "adam"), row["size"], row["rows"]


def markdown(rows, command):
    lines = [
        f"`synthetic_stream` capacity check, {datetime.date.today()}, {platform.machine()} "
        f"{os.cpu_count()} CPUs, backend {rows[0]['backend']}; `{command}`. One streamed pass "
        "over the training rows, batch and learning rate as the scaling ladder's; exact test AUC "
        f"on {100_000:,} test rows, mean ± std over seeds; the oracle is the teacher's own "
        "probability; seconds: the mean time of one run.",
        "",
        "| model | tables | size (layers x tokens x width) | dense params | training rows | seeds "
        "| test AUC | validation AUC | test log loss | oracle AUC | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups = {}
    for row in rows:
        groups.setdefault(_key(row), []).append(row)
    for key, runs in sorted(
        groups.items(), key=lambda kv: (kv[0][1], kv[0][3], kv[1][0]["dense_params"])
    ):
        model, tables, size, count = key
        shape = "x".join(str(v) for v in SIZES[size])
        rate = runs[0].get("table_learning_rate")
        tables = tables if rate is None else f"{tables} {rate:g}"

        def stat(name, runs=runs):
            values = np.array([r[name] for r in runs])
            return (
                f"{values.mean():.4f} ± {values.std():.4f}" if len(runs) > 1 else f"{values[0]:.4f}"
            )

        lines.append(
            f"| {model} | {tables} | {size} ({shape}) | {runs[0]['dense_params']:,} | {count:,} "
            f"| {len(runs)} | {stat('test_auc')} | {stat('validation_auc')} "
            f"| {stat('test_logloss')} | {runs[0]['oracle_test_auc']:.4f} "
            f"| {np.mean([r['seconds'] for r in runs]):.0f} |"
        )
    lines += ["", *paired_differences(groups)]
    return "\n".join(lines) + "\n"


def paired_differences(groups) -> list:
    """At each row count with several sizes: each larger size minus the smallest, paired by seed."""
    lines = []
    for (model, tables, _, count), runs in sorted(groups.items()):
        same = {k: v for k, v in groups.items() if k[:2] == (model, tables) and k[3] == count}
        smallest = min(same, key=lambda k: same[k][0]["dense_params"])
        if _key(runs[0]) == smallest:
            continue
        base = {r["seed"]: r["test_auc"] for r in same[smallest]}
        deltas = [r["test_auc"] - base[r["seed"]] for r in runs if r["seed"] in base]
        if deltas:
            lines.append(
                f"- {model}, {tables}, {count:,} rows: {runs[0]['size']} - {smallest[2]} test AUC "
                f"{np.mean(deltas):+.4f} ± {np.std(deltas):.4f} over {len(deltas)} paired seeds "
                f"({sum(d > 0 for d in deltas)} of {len(deltas)} positive)."
            )
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rankmixer")
    parser.add_argument("--rows", default="100000,1000000,3000000")
    parser.add_argument("--mid", default="m", help="the size run at every row count")
    parser.add_argument("--sizes", default="s,l", help="sizes run at the largest row count")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds of every run")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--embedding-optimizer", default=None, help="e.g. rowwise_adagrad")
    parser.add_argument("--embedding-learning-rate", type=float, default=None)
    parser.add_argument("--output", default="runs/synthetic_capacity")
    add_write_results(parser)
    args = parser.parse_args(argv)
    counts = [int(r) for r in args.rows.split(",")]
    jobs = [(args.mid, rows) for rows in counts]
    jobs += [(size, counts[-1]) for size in args.sizes.split(",") if size]
    seeds = [int(seed) for seed in args.seeds.split(",")]
    tables = args.embedding_optimizer
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    log = output / "capacity.jsonl"
    done = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    for seed in seeds:
        for size, rows in jobs:
            key = (args.model, tables or "adam", size, rows)
            if any(_key(r) == key and r["seed"] == seed for r in done):
                continue
            row = run_one(
                args.model,
                size,
                rows,
                seed,
                output,
                args.batch_size,
                tables,
                args.embedding_learning_rate,
            )
            print(row, flush=True)
            with open(log, "a") as handle:
                handle.write(json.dumps(row) + "\n")
            done.append(row)
            keras.utils.clear_session()
    command = "python benchmarks/synthetic_stream_capacity.py " + " ".join(argv or sys.argv[1:])
    text = markdown([r for r in done if r["model"] == args.model], command)
    name = "synthetic_stream_capacity" + (f"_{tables}" if tables else "") + ".md"
    results_path(name, args.write_results).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
