"""Implicit feedback on MovieLens 100K: how the negative sampler changes what AUC means.

Every rating >= 4 is a positive; 4 negatives per positive are sampled (same user and context,
an item the user never rated) uniformly or by popularity^0.75. A model is trained on each kind
and scored on the test positives against BOTH kinds of test negatives (exact AUC), 3 seeds.

Usage (from the repository root):
    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/movielens_negatives.py

Writes benchmarks/results/movielens_negatives_<backend>.md.
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

from keras_unimixer import datasets, evaluation  # noqa: E402
from keras_unimixer.datasets.negatives import MODES  # noqa: E402
from keras_unimixer.experiments.training import TrainConfig, train  # noqa: E402

PER_POSITIVE = 4


def run(model, seeds, output_root, data_dir):
    rows = []
    for seed in seeds:
        data = datasets.load_movielens(data_dir, seed=seed)
        sampled = {
            mode: datasets.sample_negatives(data, PER_POSITIVE, mode, seed=seed) for mode in MODES
        }
        for trained_on in MODES:
            config = TrainConfig(
                model=model,
                seed=seed,
                **{**COMMON, **OVERRIDES.get(model, {})},
                output=str(Path(output_root) / f"{model}_{trained_on}_{seed}"),
            )
            train(config, data=sampled[trained_on])
            trained = keras.saving.load_model(Path(config.output) / "model.keras")
            row = {"trained_on": trained_on, "seed": seed}
            for scored_on in MODES:
                features, labels = sampled[scored_on].arrays("test")
                scores = trained.predict(features, batch_size=4096, verbose=0)
                row[scored_on] = evaluation.roc_auc(labels["click"], scores.reshape(-1))
            print(row, flush=True)
            rows.append(row)
            keras.utils.clear_session()
    return rows


def markdown(rows, model, command):
    lines = [
        f"MovieLens 100K as implicit feedback ({model}), {datetime.date.today()}, "
        f"{platform.machine()} {os.cpu_count()} CPUs, backend {keras.backend.backend()}; "
        f"`{command}`. Positives: ratings >= 4; {PER_POSITIVE} sampled negatives per positive "
        "in every split; exact test AUC, mean ± std over seeds.",
        "",
        "| trained on | test AUC vs uniform negatives | test AUC vs popularity negatives |",
        "|---|---|---|",
    ]
    for trained_on in MODES:
        group = [r for r in rows if r["trained_on"] == trained_on]
        cells = []
        for scored_on in MODES:
            cells.append(mean_std([r[scored_on] for r in group]))
        lines.append(f"| {trained_on} negatives | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    args = model_seed_arguments(__doc__.splitlines()[0], "runs/benchmark_negatives")
    rows = run(args.model, args.seeds, args.output, args.data_dir)
    write_markdown("movielens_negatives", lambda command: markdown(rows, args.model, command))


if __name__ == "__main__":
    main()
