"""Frappe_x1 under the BARS protocol: a validation-only search for the token mixers, then the table.

Results go to runs/benchmarks/ (git-ignored); `--write-results` rewrites the committed
file under benchmarks/results/ instead.

Results go to runs/benchmarks/ (git-ignored); `--write-results` rewrites the committed
file under benchmarks/results/ instead.

Every run is `keras_unimixer.experiments.training.train` with the `frappe_x1` protocol of its
model (`keras_unimixer.experiments.protocols`: embedding L2 0.05 with normal(1e-4) init, batch
4096, Adam 1e-3, early stopping on exact validation AUC with patience 2, learning rate x0.1 on a
plateau), so
`python -m keras_unimixer train --dataset frappe_x1 --model M` reproduces any row.

Usage (from the repository root, once `bash scripts/test.sh` made .venv):
    # search: sampled shared settings, every mixer on each, ranked by validation AUC (seed 0)
    .venv/bin/python benchmarks/frappe_x1.py search --configs 12 --workers 2 --output runs/fx1
    # table: every model, 3 seeds, with its preset
    .venv/bin/python benchmarks/frappe_x1.py table --seeds 0,1,2 --output runs/fx1_table

`search` writes `<output>/search.jsonl` (one line per run: the settings, validation and test
metrics; choose by validation only) and prints the best settings per mixer by validation AUC.
`table` writes `<output>/table.jsonl` and `benchmarks/results/frappe_x1_<backend>.md`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from results_files import add_write_results, results_path  # noqa: E402 (benchmarks/ on sys.path)

from keras_unimixer.layers.mixing import mixer_names  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MIXERS = mixer_names()  # every registered architecture
BASELINES = ("logistic_regression", "dnn", "deepfm", "dcnv2", "finalmlp")
# The shared settings searched for the token mixers (each sampled setting runs for every mixer).
SEARCH_SPACE = {
    "norm": ["post", "siamese", "pre"],
    "embedding_dim": [10, 16, 32],
    "token_dim": [20, 40, 80],
    "num_layers": [1, 2, 3],
    "pooling": ["flatten", "mean"],
    "dropout": [0.1, 0.2, 0.4],
    "ffn_multiplier": [2, 4],
}
# Ablations of UniMixer-Lite / UniMixer on Frappe_x1 (`ablation`): each variant changes one
# setting of a small base model, the same 3 seeds each; the table gives the change in test AUC
# paired by seed. (Small base: the full preset costs ~35 min a run on 2 CPU cores.)
ABLATION_BASE = {
    "norm": "post",
    "embedding_dim": 10,
    "token_dim": 20,
    "num_layers": 2,
    "pooling": "flatten",
    "dropout": 0.2,
    "ffn_multiplier": 2,
}
ABLATIONS = {
    "unimixer_lite": {
        "base (anneal 1 -> 0.05 over 4 epochs, random W_G, post-norm)": {},
        "no temperature (constant 1.0)": {"temperature_schedule": "constant"},
        "model warm-up (tau 1, then 0.05)": {"temperature_schedule": "warmup"},
        "identity-like start (scale 3)": {
            "mixing_options": {"global_init": "identity", "init_scale": 3.0}
        },
        "no symmetry": {"mixing_options": {"symmetric": False}},
        "10 Sinkhorn rounds only (no tolerance phase)": {
            "mixing_options": {"sinkhorn_max_iterations": 0}
        },
        "SiameseNorm per sublayer": {"norm": "siamese"},
        "SiameseNorm per block": {"norm": "siamese", "siamese_scope": "block"},
    },
    "unimixer": {
        "base": {},
        "shared local matrix (not block-specific)": {"mixing_options": {"block_specific": False}},
    },
}
# BARS's published test AUC on Frappe_x1 (mean of their 3 seeds where they give them).
BARS_TEST_AUC = {
    "logistic_regression": 0.9356,
    "dnn": 0.9837,
    "deepfm": 0.9840,
    "dcnv2": 0.9840,
    "finalmlp": 0.9861,
}
LABELS = {
    "logistic_regression": "logistic regression",
    "dnn": "DNN",
    "deepfm": "DeepFM",
    "dcnv2": "DCNv2",
    "finalmlp": "FinalMLP",
    "rankmixer": "RankMixer",
    "unimixer": "UniMixer",
    "unimixer_lite": "UniMixer-Lite",
    "attention": "attention",
    "fm": "FM (Wukong-style)",
    "hiformer": "HiFormer",
    "wukong": "Wukong",
}


def sample_settings(count: int, seed: int = 2026) -> list[dict]:
    """`count` distinct random draws from `SEARCH_SPACE`, the first being the preset's values."""
    from keras_unimixer.experiments.protocols import model_protocol

    preset = model_protocol("frappe_x1", "unimixer_lite")
    chosen = [{name: preset[name] for name in SEARCH_SPACE}]
    rng = random.Random(seed)
    while len(chosen) < count:
        draw = {name: rng.choice(values) for name, values in SEARCH_SPACE.items()}
        if draw not in chosen:
            chosen.append(draw)
    return chosen


def run_one(model: str, settings: dict, seed: int, output: str, data_dir: str | None) -> dict:
    """Train one model with the Frappe_x1 preset under `settings`; a JSON-ready result row."""
    import keras

    from keras_unimixer.experiments.training import TrainConfig, train

    config = TrainConfig.from_protocol(
        dataset="frappe_x1",
        model=model,
        data_dir=data_dir,
        seed=seed,
        output=output,
        verbose=0,
        **settings,
    )
    start = time.perf_counter()
    metrics = train(config)
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
    }


def run_all(jobs, output: Path, name: str, workers: int, data_dir, time_budget=None) -> list:
    """Run `(model, settings, seed)` jobs in `workers` fresh processes; append rows to JSONL."""
    results_path = output / f"{name}.jsonl"
    output.mkdir(parents=True, exist_ok=True)
    done = set()
    if results_path.is_file():
        for line in results_path.read_text().splitlines():
            row = json.loads(line)
            done.add(_job_key(row["model"], row["settings"], row["seed"]))
    pending = [job for job in jobs if _job_key(*job) not in done]
    running: list = []
    start = time.monotonic()
    while pending or running:
        over_budget = time_budget is not None and time.monotonic() - start > time_budget
        while pending and len(running) < workers and not over_budget:
            model, settings, seed = pending.pop(0)
            run_dir = output / "runs" / f"{model}-{len(done) + len(running)}-{seed}-{os.getpid()}"
            job = json.dumps([model, settings, seed, str(run_dir), data_dir])
            process = subprocess.Popen(
                [sys.executable, __file__, "one", job], stdout=subprocess.PIPE, text=True
            )
            running.append(process)
        for process in list(running):
            if process.poll() is None:
                continue
            running.remove(process)
            lines = (process.stdout.read() or "").strip().splitlines()
            if process.returncode != 0 or not lines:
                print(f"a run failed (exit {process.returncode})", file=sys.stderr, flush=True)
                continue
            row = json.loads(lines[-1])
            with open(results_path, "a") as handle:
                handle.write(json.dumps(row) + "\n")
            done.add(_job_key(row["model"], row["settings"], row["seed"]))
            print(_summary(row), flush=True)
        if over_budget and not running:
            break
        time.sleep(0.5)
    return [json.loads(line) for line in results_path.read_text().splitlines()]


def _job_key(model, settings, seed):
    return json.dumps([model, settings, seed], sort_keys=True)


def _summary(row) -> str:
    return (
        f"{row['model']:20s} seed {row['seed']} val {row['validation']['auc']:.5f} "
        f"test {row['test']['auc']:.5f} epochs {row['epochs_run']} {row['seconds']:.0f}s "
        f"{json.dumps(row['settings'])}"
    )


def best_by_validation(rows) -> dict:
    """Per model, the settings with the highest validation AUC (test AUC plays no part)."""
    best = {}
    for row in rows:
        current = best.get(row["model"])
        if current is None or row["validation"]["auc"] > current["validation"]["auc"]:
            best[row["model"]] = row
    return best


def reproducing_command(argv: list[str]) -> str:
    """The command that produces a results file: `--time-budget` (a snapshot's 0) left out."""
    kept, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--time-budget"):
            skip = arg == "--time-budget"
            continue
        kept.append(arg)
    return "python benchmarks/frappe_x1.py " + " ".join(kept)


def table_markdown(rows, command: str) -> str:
    by_model: dict = {}
    for row in rows:
        by_model.setdefault(row["model"], []).append(row)

    lines = [
        f"Frappe_x1 (BARS split, train.csv rebuilt), {datetime.date.today()}, "
        f"{platform.machine()} {os.cpu_count()} CPUs, backend {rows[0]['backend']}; `{command}`.",
        "Exact test AUC and log loss, mean ± std over seeds; UAUC over users with both labels.",
        "",
        "| model | seeds | test AUC | test log loss | test UAUC | val AUC | BARS test AUC "
        "| params (dense) | FLOPs/example | best epoch | s/epoch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, group in by_model.items():
        params = group[0]["params"]
        lines.append(
            f"| {LABELS.get(model, model)} | {len(group)} "
            f"| {_mean_std([r['test']['auc'] for r in group])} "
            f"| {_mean_std([r['test']['logloss'] for r in group])} "
            f"| {_mean_std([r['test']['uauc'] for r in group])} "
            f"| {_mean_std([r['validation']['auc'] for r in group])} "
            f"| {BARS_TEST_AUC.get(model, '-')} "
            f"| {params['total']:,} ({params['dense']:,}) | {group[0]['flops_per_example']:,} "
            f"| {statistics.mean(r['best_epoch'] for r in group):.1f} "
            f"| {statistics.mean(r['epoch_seconds'] for r in group):.1f} |"
        )
    return "\n".join(lines) + "\n"


def ablation_markdown(rows, command: str) -> str:
    """Each variant's test AUC and its change from the base, paired by seed (mean ± std)."""
    lines = [
        f"Frappe_x1 ablations, {datetime.date.today()}, {platform.machine()} {os.cpu_count()} "
        f"CPUs, backend {rows[0]['backend'] if rows else '-'}; `{command}`. Base settings: "
        f"`{json.dumps(ABLATION_BASE)}` plus the frappe_x1 preset (embedding L2 0.05, batch "
        "4096, Adam 1e-3, early stopping on exact validation AUC). Change = variant - base, "
        "per seed, then mean ± std.",
        "",
        "| model | variant | seeds | test AUC | change vs base | val AUC | best epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, variants in ABLATIONS.items():
        base_settings = {**ABLATION_BASE, **next(iter(variants.values()))}
        base = {
            r["seed"]: r for r in rows if r["model"] == model and r["settings"] == base_settings
        }
        for label, variant in variants.items():
            settings = {**ABLATION_BASE, **variant}
            group = [r for r in rows if r["model"] == model and r["settings"] == settings]
            if not group:
                continue
            aucs = [r["test"]["auc"] for r in group]
            changes = [
                r["test"]["auc"] - base[r["seed"]]["test"]["auc"]
                for r in group
                if r["seed"] in base
            ]
            change = "-" if not variant else _mean_std(changes)
            lines.append(
                f"| {LABELS.get(model, model)} | {label} | {len(group)} | {_mean_std(aucs)} "
                f"| {change} | {_mean_std([r['validation']['auc'] for r in group])} "
                f"| {statistics.mean(r['best_epoch'] for r in group):.1f} |"
            )
    return "\n".join(lines) + "\n"


def _mean_std(values, digits=4) -> str:
    if not values:
        return "-"
    if len(values) < 2:
        return f"{values[0]:+.{digits}f}" if values[0] < 0 else f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    search = commands.add_parser("search", help="validation-only search over SEARCH_SPACE")
    search.add_argument("--configs", type=int, default=12)
    search.add_argument("--models", default=",".join(MIXERS))
    table = commands.add_parser("table", help="every model with its preset, several seeds")
    table.add_argument("--models", default=",".join(BASELINES + MIXERS))
    table.add_argument("--seeds", default="0,1,2")
    for command in (search, table):
        command.add_argument("--output", required=True)
        command.add_argument("--workers", type=int, default=1)
        command.add_argument("--data-dir", default=None)
        command.add_argument("--time-budget", type=float, default=None, help="seconds")
        command.add_argument("--settings", default="{}", help="JSON overrides for every run")
    ablation = commands.add_parser("ablation", help="one-setting changes of a small base model")
    ablation.add_argument("--seeds", default="0,1,2")
    ablation.add_argument("--output", required=True)
    ablation.add_argument("--workers", type=int, default=1)
    ablation.add_argument("--data-dir", default=None)
    ablation.add_argument("--time-budget", type=float, default=None, help="seconds")
    for command in (search, table, ablation):
        add_write_results(command)
    one = commands.add_parser("one", help="(internal) one run, result as JSON on stdout")
    one.add_argument("job")
    args = parser.parse_args(argv)

    if args.command == "one":
        model, settings, seed, output, data_dir = json.loads(args.job)
        print(json.dumps(run_one(model, settings, seed, output, data_dir)))
        return 0
    output = Path(args.output)
    if args.command == "ablation":
        seeds = [int(s) for s in args.seeds.split(",") if s]
        jobs = [
            (model, {**ABLATION_BASE, **variant}, seed)
            for model, variants in ABLATIONS.items()
            for variant in variants.values()
            for seed in seeds
        ]
        rows = run_all(jobs, output, "ablation", args.workers, args.data_dir, args.time_budget)
        command = reproducing_command(argv or sys.argv[1:])
        markdown = ablation_markdown(rows, command)
        backend = rows[0]["backend"] if rows else "none"
        results_path(f"frappe_x1_ablation_{backend}.md").write_text(markdown)
        print(markdown)
        return 0
    extra = json.loads(args.settings)
    models = [m for m in args.models.split(",") if m]
    if args.command == "search":
        configs = [{**settings, **extra} for settings in sample_settings(args.configs)]
        jobs = [(model, settings, 0) for settings in configs for model in models]
        rows = run_all(jobs, output, "search", args.workers, args.data_dir, args.time_budget)
        for model, row in best_by_validation(rows).items():
            print(f"best {model}: val {row['validation']['auc']:.5f} {json.dumps(row['settings'])}")
        return 0
    seeds = [int(s) for s in args.seeds.split(",") if s]
    jobs = [(model, extra, seed) for model in models for seed in seeds]
    rows = run_all(jobs, output, "table", args.workers, args.data_dir, args.time_budget)
    command = reproducing_command(argv or sys.argv[1:])
    markdown = table_markdown(rows, command)
    backend = rows[0]["backend"] if rows else "none"
    results_path(f"frappe_x1_{backend}.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
