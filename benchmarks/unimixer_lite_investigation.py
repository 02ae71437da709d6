"""Why does UniMixer-Lite trail RankMixer and DCNv2 on MovieLens 100K? One-factor variations.

Same split, seed, data and budget as benchmarks/movielens_models.py (seed 1 by default); each row
changes one setting of UniMixer-Lite: learning rate, temperature schedule, norm, depth, width.
    KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/unimixer_lite_investigation.py
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))

from movielens_models import COMMON  # noqa: E402

from keras_unimixer import datasets  # noqa: E402
from keras_unimixer.experiments.training import TrainConfig, train  # noqa: E402

VARIANTS = {
    "baseline (lr 1e-3, tau 1->0.05, siamese, L=2)": {},
    "learning rate 3e-3": {"learning_rate": 3e-3},
    "learning rate 3e-4": {"learning_rate": 3e-4},
    "no temperature annealing (tau = 1)": {"temperature_schedule": "constant"},
    "tau 1 -> 0.3": {"temperature_end": 0.3},
    "post-norm instead of SiameseNorm": {"norm": "post"},
    "pre-norm instead of SiameseNorm": {"norm": "pre"},
    "depth 1": {"num_layers": 1},
    "block size 64 (n = 4 blocks)": {"block_size": 64},
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", default="unimixer_lite")
    args = parser.parse_args()
    data = datasets.load_movielens(seed=args.seed)
    print(f"| {args.model} variant (seed {args.seed}) | test AUC | test log loss | best epoch |")
    print("| --- | --- | --- | --- |")
    for number, (label, change) in enumerate(VARIANTS.items()):
        settings = {**COMMON, **change}
        output = f"runs/investigation/{args.model}_{number}_{args.seed}"
        config = TrainConfig(model=args.model, seed=args.seed, output=output, **settings)
        metrics = train(config, data=data)
        print(
            f"| {label} | {metrics['test']['auc']:.4f} | {metrics['test']['logloss']:.4f} | "
            f"{metrics['best_epoch']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
