"""Benchmark runs under a dataset's protocol, each in a fresh process, appended to a JSONL file.

Shared by the benchmarks that search and tabulate models on a protocol dataset
(`frappe_x1.py`, `movielens_search.py`): a job is `(model, settings, seed)`; its run is
`keras_unimixer.experiments.training.train` with `TrainConfig.from_protocol(dataset, model)`
under `settings`, so `python -m keras_unimixer train --dataset D --model M` plus the settings as
flags reproduces any row. A rerun of the same command skips the jobs its JSONL already holds.

Internal entry point (one run, its row as JSON on stdout):
    .venv/bin/python benchmarks/protocol_runs.py '<job as JSON>'
"""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_one(
    dataset: str, model: str, settings: dict, seed: int, output: str, data_dir: str | None
) -> dict:
    """Train one model with `dataset`'s protocol under `settings`; a JSON-ready result row."""
    import keras

    from keras_unimixer.experiments.training import TrainConfig, train

    config = TrainConfig.from_protocol(
        dataset=dataset,
        model=model,
        data_dir=data_dir,
        seed=seed,
        output=output,
        verbose=0,
        **settings,
    )
    start = time.perf_counter()
    metrics = train(config)
    history = metrics["history"]
    return {
        "model": model,
        "seed": seed,
        "settings": settings,
        "backend": keras.backend.backend(),
        "validation": metrics["validation"],
        "test": metrics["test"],
        "best_epoch": metrics["best_epoch"],
        "epochs_run": metrics["epochs_run"],
        "params": metrics["parameters"],
        "flops_per_example": metrics["flops_per_example"],
        "seconds": time.perf_counter() - start,
        "epoch_seconds": metrics["fit_seconds"] / max(metrics["epochs_run"], 1),
        # What the mixing matrices became (the last epoch's statistics), where the model mixes.
        "mixing": {key: values[-1] for key, values in history.items() if key.startswith("mixing_")},
    }


def run_all(
    jobs: list,
    output: Path,
    name: str,
    workers: int,
    data_dir: str | None,
    dataset: str,
    time_budget: float | None = None,
) -> list:
    """Run `(model, settings, seed)` jobs in `workers` fresh processes; append rows to
    `<output>/<name>.jsonl` and return every row it holds. A run that fails (e.g. a setting the
    model refuses) is recorded with its last error line in `<output>/<name>_failed.jsonl` and
    not tried again by a rerun."""
    results_file = output / f"{name}.jsonl"
    failed_file = output / f"{name}_failed.jsonl"
    output.mkdir(parents=True, exist_ok=True)
    done = set()
    for path in (results_file, failed_file):
        for line in path.read_text().splitlines() if path.is_file() else []:
            row = json.loads(line)
            done.add(job_key(row["model"], row["settings"], row["seed"]))
    pending = [job for job in jobs if job_key(*job) not in done]
    running: list = []
    start = time.monotonic()
    while pending or running:
        over_budget = time_budget is not None and time.monotonic() - start > time_budget
        while pending and len(running) < workers and not over_budget:
            model, settings, seed = pending.pop(0)
            run_dir = output / "runs" / f"{model}-{len(done) + len(running)}-{seed}-{os.getpid()}"
            job = json.dumps([dataset, model, settings, seed, str(run_dir), data_dir])
            run_dir.mkdir(parents=True, exist_ok=True)
            errors = open(run_dir / "stderr.txt", "w+")
            process = subprocess.Popen(
                [sys.executable, __file__, job], stdout=subprocess.PIPE, stderr=errors, text=True
            )
            running.append((process, errors, (model, settings, seed)))
        for entry in list(running):
            process, errors, (model, settings, seed) = entry
            if process.poll() is None:
                continue
            running.remove(entry)
            lines = (process.stdout.read() or "").strip().splitlines()
            errors.seek(0)
            error = last_error_line(errors.read())
            errors.close()
            if process.returncode != 0 or not lines:
                failure = {"model": model, "settings": settings, "seed": seed, "error": error}
                with open(failed_file, "a") as handle:
                    handle.write(json.dumps(failure) + "\n")
                done.add(job_key(model, settings, seed))
                print(f"failed (exit {process.returncode}): {json.dumps(failure)}", flush=True)
                continue
            row = json.loads(lines[-1])
            with open(results_file, "a") as handle:
                handle.write(json.dumps(row) + "\n")
            done.add(job_key(row["model"], row["settings"], row["seed"]))
            print(summary(row), flush=True)
        if over_budget and not running:
            break
        time.sleep(0.5)
    return [json.loads(line) for line in results_file.read_text().splitlines()]


def last_error_line(stderr: str) -> str:
    """The last line of a run's stderr that names an exception (`ValueError: ...`), else its
    last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    named = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception): ", line)]
    return (named or lines or [""])[-1]


def failures(output: Path, name: str) -> list:
    """The failed runs recorded by `run_all` under `output` (empty if none)."""
    path = output / f"{name}_failed.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def job_key(model: str, settings: dict, seed: int) -> str:
    return json.dumps([model, settings, seed], sort_keys=True)


def summary(row: dict) -> str:
    return (
        f"{row['model']:20s} seed {row['seed']} val {row['validation']['auc']:.5f} "
        f"test {row['test']['auc']:.5f} epochs {row['epochs_run']} {row['seconds']:.0f}s "
        f"{json.dumps(row['settings'])}"
    )


def sample_settings(space: dict, first: dict, count: int, seed: int = 2026) -> list[dict]:
    """`count` distinct settings: `first`, then random draws of one value per name of `space`
    (the same list for the same arguments, so a search can be resumed or extended)."""
    chosen = [dict(first)]
    rng = random.Random(seed)
    while len(chosen) < count:
        draw = {name: rng.choice(values) for name, values in space.items()}
        if draw not in chosen:
            chosen.append(draw)
    return chosen


def best_by_mean_validation(rows: list) -> dict:
    """Per model, the settings with the highest validation AUC averaged over the seeds each ran
    (test AUC plays no part); `{model: (mean validation AUC, settings)}`."""
    groups: dict = {}
    for row in rows:
        key = (row["model"], json.dumps(row["settings"], sort_keys=True))
        groups.setdefault(key, []).append(row["validation"]["auc"])
    best: dict = {}
    for (model, settings), aucs in groups.items():
        mean = statistics.mean(aucs)
        if model not in best or mean > best[model][0]:
            best[model] = (mean, json.loads(settings))
    return best


def mean_std(values: list, digits: int = 4) -> str:
    """`mean ± std` (sample std) to `digits` decimals; one value alone; `-` for none."""
    if not values:
        return "-"
    if len(values) < 2:
        return f"{values[0]:+.{digits}f}" if values[0] < 0 else f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main(argv: list | None = None) -> int:
    """One run of a job given as JSON; its row as JSON on stdout."""
    dataset, model, settings, seed, output, data_dir = json.loads((argv or sys.argv[1:])[0])
    print(json.dumps(run_one(dataset, model, settings, seed, output, data_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
