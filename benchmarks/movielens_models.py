"""Every model on MovieLens 100K with the same pipeline, budget and early stopping; 3 seeds.

Results go to runs/benchmarks/ (git-ignored); `--write-results` rewrites the committed
file under benchmarks/results/ instead.

Usage (from the repository root, once `bash scripts/test.sh` or `scripts/train.sh` made .venv):
    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/movielens_models.py
    KERAS_BACKEND=jax .venv/bin/python benchmarks/movielens_models.py --models unimixer_lite

Writes benchmarks/results/movielens_models_<backend>.csv and prints a markdown table (mean and
standard deviation over seeds of test AUC and log loss, parameters, examples/s).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from results_files import add_write_results, results_path  # noqa: E402 (benchmarks/ is on sys.path)

from keras_unimixer import datasets, layers, models  # noqa: E402
from keras_unimixer.experiments.training import TrainConfig, train  # noqa: E402

# One budget rule for all: same embeddings (16 per feature), same epochs and early stopping;
# model widths chosen so that parameter counts are comparable (see the params column).
COMMON = dict(
    dataset="movielens",
    epochs=10,
    patience=2,
    batch_size=512,
    learning_rate=1e-3,
    num_layers=2,
    num_tokens=8,
    token_dim=32,
    embedding_dim=16,
    ffn_multiplier=2,
    hidden_units=(64,),
    verbose=0,
)
OVERRIDES = {
    "rankmixer": dict(ffn_multiplier=3),  # GELU FFN has 2 matrices to SwiGLU's 3
    "deepfm": dict(hidden_units=(256, 128)),
    "dcnv2": dict(hidden_units=(128, 64)),
}


def takes_mixing_options(name: str) -> bool:
    return (
        name in layers.mixing.mixer_names()
        and "mixing_options" in layers.mixing.get_mixer(name).options
    )


def run(model_names, seeds, output_root, data_dir, mixing_options=None):
    data = {seed: datasets.load_movielens(data_dir, seed=seed) for seed in seeds}
    rows = []
    for name in model_names:
        for seed in seeds:
            settings = {**COMMON, **OVERRIDES.get(name, {})}
            if mixing_options and takes_mixing_options(name):
                settings["mixing_options"] = dict(mixing_options)
            config = TrainConfig(
                model=name, seed=seed, output=str(Path(output_root) / f"{name}_{seed}"), **settings
            )
            metrics = train(config, data=data[seed])
            row = {
                "model": name,
                "seed": seed,
                "backend": keras.backend.backend(),
                "test_auc": metrics["test"]["auc"],
                "test_logloss": metrics["test"]["logloss"],
                "best_epoch": metrics["best_epoch"],
                "epochs_run": metrics["epochs_run"],
                "params": metrics["parameters"]["total"],
                "dense_params": metrics["parameters"]["dense"],
                "flops_per_example": metrics["flops_per_example"],
                "examples_per_second": metrics["train_examples_per_second"],
            }
            print(row, flush=True)
            rows.append(row)
    return rows


def model_seed_arguments(description: str, default_output: str):
    """The command line shared by the MovieLens benchmarks of one model over seeds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default="unimixer_lite")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--output", default=default_output)
    parser.add_argument("--data-dir", default=None)
    add_write_results(parser)
    args = parser.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    return args


def write_markdown(name: str, markdown) -> None:
    """`markdown(command)` written to benchmarks/results/<name>_<backend>.md and printed."""
    backend = keras.backend.backend()
    text = markdown(f"KERAS_BACKEND={backend} python {' '.join(sys.argv)}")
    path = results_path(f"{name}_{backend}.md")
    path.write_text(text)
    print(text + f"\nWrote {path}")


def mean_std(values) -> str:
    """`mean ± std` (sample std; 0 for one value) to 4 decimals."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def summarize(rows):
    lines = [
        "| model | test AUC | test log loss | params (dense) | FLOPs/example | train ex/s "
        "| best epochs |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in dict.fromkeys(r["model"] for r in rows):
        group = [r for r in rows if r["model"] == name]

        def column(key, group=group):
            return mean_std([r[key] for r in group])

        epochs = "/".join(str(r["best_epoch"]) for r in group)
        speed = statistics.mean(r["examples_per_second"] for r in group)
        lines.append(
            f"| {name} | {column('test_auc')} | {column('test_logloss')} | "
            f"{group[0]['params']:,} ({group[0]['dense_params']:,}) | "
            f"{group[0]['flops_per_example']:,} | {speed:,.0f} | {epochs} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(models.model_names()))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--output", default="runs/benchmark_movielens")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--mixing-options",
        type=json.loads,
        default=None,
        help='UniMixing / UniMixing-Lite options as JSON, e.g. {"symmetric": false}',
    )
    parser.add_argument("--csv", default=None, help="results CSV (default: results/...)")
    add_write_results(parser)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = run(args.models.split(","), seeds, args.output, args.data_dir, args.mixing_options)
    path = Path(args.csv or results_path(f"movielens_models_{keras.backend.backend()}.csv"))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(
        f"\nMachine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    print(
        f"Date: {datetime.date.today()}; backend {keras.backend.backend()}; command: "
        f"KERAS_BACKEND={keras.backend.backend()} python {' '.join(sys.argv)}"
    )
    print("Best epochs per seed in the last column (early stopping on validation AUC, patience 2).")
    print(summarize(rows))
    print(f"\nWrote {path}")


if __name__ == "__main__":
    main()
