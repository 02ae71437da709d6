"""UniMixer-Lite on MovieLens 100K with each of the authors' design choices as an option, 3 seeds.

Every variant is the `movielens_models.py` setting of UniMixer-Lite (same data, epochs, early
stopping on exact validation AUC) plus one change; the table gives test and validation AUC (mean
± std over seeds), the change against the default paired by seed, and what the mixing matrices
became at the end (the row entropies of W_G and W_B, 0: permutation / identity, 1: uniform, and
the logits' spread; `keras_unimixer.layers.mixing.mixing_statistics`).

Usage (from the repository root):
    KERAS_BACKEND=jax .venv/bin/python benchmarks/mixing_options.py
    KERAS_BACKEND=jax .venv/bin/python benchmarks/mixing_options.py --variants default,l2

Writes benchmarks/results/mixing_options_<backend>.md and .json (with `--write-results`;
otherwise under runs/benchmarks/).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
from pathlib import Path

import keras
from movielens_models import COMMON, mean_std  # noqa: E402 (benchmarks/ is on sys.path)
from results_files import add_write_results, current_commit, results_path  # noqa: E402

from keras_unimixer import datasets
from keras_unimixer.experiments.training import TrainConfig, train

AUTHORS = {
    "rank": "full",
    "block_dropout": 0.1,
    "mixing_options": {
        "normalization": "l2",
        "basis_coefficients": "raw",
        "transpose_tokens": True,
        "normalize_across_blocks": True,
    },
    "weight_decay": 5e-5,
    "embedding_weight_decay": 0.01,
    "gradient_clip_norm": 10.0,
}
VARIANTS = {
    "default": {},
    "mixing lr x10": {"mixing_options": {"learning_rate_multiplier": 10.0}},
    "random local start": {"mixing_options": {"local_init": "random"}},
    "l2 normalization": {"mixing_options": {"normalization": "l2"}},
    "norm across blocks": {"mixing_options": {"normalize_across_blocks": True}},
    "full-rank W_G": {"rank": "full"},
    "block dropout 0.1": {"block_dropout": 0.1},
    "AdamW + clip": {
        "weight_decay": 5e-5,
        "embedding_weight_decay": 0.01,
        "gradient_clip_norm": 10.0,
    },
    "all of the authors' choices": AUTHORS,
}


def run_variant(name, settings, seed, data, output_root):
    config = TrainConfig(
        model="unimixer_lite",
        seed=seed,
        output=str(Path(output_root) / f"{name.replace(' ', '_')}_{seed}"),
        **{**COMMON, **settings},
    )
    metrics = train(config, data=data)
    history = metrics["history"]
    return {
        "variant": name,
        "seed": seed,
        "test_auc": metrics["test"]["auc"],
        "validation_auc": metrics["best_validation"],
        "best_epoch": metrics["best_epoch"],
        "dense_params": metrics["parameters"]["dense"],
        **{key: history[key][-1] for key in history if key.startswith("mixing_")},
    }


def summarize(rows):
    default = {r["seed"]: r["test_auc"] for r in rows if r["variant"] == "default"}
    lines = [
        "| variant | test AUC | validation AUC | vs default (paired) | W_G entropy | "
        "W_B entropy | W_G logit std | dense params |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in dict.fromkeys(r["variant"] for r in rows):
        group = [r for r in rows if r["variant"] == name]
        paired = [r["test_auc"] - default[r["seed"]] for r in group if r["seed"] in default]
        delta = mean_std(paired) if paired and name != "default" else ""
        lines.append(
            f"| {name} | {mean_std([r['test_auc'] for r in group])} | "
            f"{mean_std([r['validation_auc'] for r in group])} | {delta} | "
            f"{statistics.mean(r['mixing_global_entropy'] for r in group):.3f} | "
            f"{statistics.mean(r['mixing_local_entropy'] for r in group):.3f} | "
            f"{statistics.mean(r['mixing_global_logit_std'] for r in group):.3f} | "
            f"{group[0]['dense_params']:,} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--output", default="runs/benchmark_mixing_options")
    parser.add_argument("--data-dir", default=None)
    add_write_results(parser)
    args = parser.parse_args()
    names = [name for name in args.variants.split(",") if name]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; valid: {list(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    data = {seed: datasets.load_movielens(args.data_dir, seed=seed) for seed in seeds}
    rows = []
    for name in names:
        for seed in seeds:
            rows.append(run_variant(name, VARIANTS[name], seed, data[seed], args.output))
            print(rows[-1], flush=True)
    backend = keras.backend.backend()
    commit = current_commit()
    header = (
        f"# UniMixer-Lite on MovieLens 100K: the authors' design choices as options\n\n"
        f"Machine: {platform.machine()} CPU, {platform.system()}; date "
        f"{datetime.date.today()}; commit {commit}; command: `KERAS_BACKEND={backend} python "
        f"{' '.join(sys.argv)}`. Settings: `benchmarks/movielens_models.py`'s COMMON plus each "
        "variant's change; seeds "
        f"{args.seeds}; exact AUC; entropies and std at the last epoch (mean over seeds).\n\n"
    )
    text = header + summarize(rows) + "\n"
    markdown = results_path(f"mixing_options_{backend}.md")
    markdown.write_text(text)
    results_path(f"mixing_options_{backend}.json").write_text(json.dumps(rows, indent=1))
    print(text + f"\nWrote {markdown}")


if __name__ == "__main__":
    main()
