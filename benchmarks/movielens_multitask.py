"""Multi-task heads on MovieLens 100K: click (rating >= 4) and rating, 3 seeds.

Independent heads (one shared tower, a linear head per task) against MMoE and PLE on the same
mixer stack, the same data split per seed, the same budget and early stopping as
`movielens_models.py` (validation AUC of the first task, click).

Usage (from the repository root):
    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/movielens_multitask.py

Writes benchmarks/results/movielens_multitask_<backend>.md (mean ± std over seeds of test click
AUC, UAUC, log loss and rating RMSE).
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from movielens_models import (  # noqa: E402
    COMMON,
    OVERRIDES,
    mean_std,
    model_seed_arguments,
    write_markdown,
)

from keras_unimixer import datasets  # noqa: E402
from keras_unimixer.experiments.training import TrainConfig, train  # noqa: E402

HEADS = {
    "independent": {},
    "mmoe": {"heads": "mmoe", "num_experts": 4, "expert_units": (64,)},
    "ple": {"heads": "ple", "num_experts": 4, "expert_units": (64,)},
}
COLUMNS = (
    ("click_auc", "click AUC"),
    ("click_uauc", "click UAUC"),
    ("click_logloss", "click log loss"),
    ("rating_rmse", "rating RMSE"),
)


def run(model, seeds, output_root, data_dir):
    rows = []
    for seed in seeds:
        data = datasets.load_movielens(data_dir, seed=seed)
        for heads, options in HEADS.items():
            settings = {**COMMON, **OVERRIDES.get(model, {}), **options}
            config = TrainConfig(
                model=model,
                seed=seed,
                tasks=("click", "rating"),
                output=str(Path(output_root) / f"{model}_{heads}_{seed}"),
                **settings,
            )
            metrics = train(config, data=data)
            row = {"heads": heads, "seed": seed, "best_epoch": metrics["best_epoch"]}
            row.update({key: metrics["test"][key] for key, _ in COLUMNS})
            row["params"] = metrics["parameters"]["total"]
            print(row, flush=True)
            rows.append(row)
    return rows


def markdown(rows, model, command):
    lines = [
        f"MovieLens 100K multi-task heads ({model}), {datetime.date.today()}, "
        f"{platform.machine()} {os.cpu_count()} CPUs, backend {keras.backend.backend()}; "
        f"`{command}`. Tasks click (rating >= 4) and rating (MSE); early stopping on validation "
        "click AUC; mean ± std over seeds; exact metrics.",
        "",
        "| heads | " + " | ".join(title for _, title in COLUMNS) + " | params | best epochs |",
        "|---" * (len(COLUMNS) + 3) + "|",
    ]
    for heads in HEADS:
        group = [r for r in rows if r["heads"] == heads]
        cells = []
        for key, _ in COLUMNS:
            cells.append(mean_std([r[key] for r in group]))
        epochs = "/".join(str(r["best_epoch"]) for r in group)
        cells += [f"{group[0]['params']:,}", epochs]
        lines.append(f"| {heads} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    args = model_seed_arguments(__doc__.splitlines()[0], "runs/benchmark_multitask")
    rows = run(args.model, args.seeds, args.output, args.data_dir)
    write_markdown("movielens_multitask", lambda command: markdown(rows, args.model, command))


if __name__ == "__main__":
    main()
