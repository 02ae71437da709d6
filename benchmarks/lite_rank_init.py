"""UniMixing-Lite at full rank with the global logits' initial spread matched to rank 4's.

Results go to runs/benchmarks/ (git-ignored); `--write-results` rewrites the committed
file under benchmarks/results/ instead.

The low-rank global factors `A`, `B` `(n, r)` start normal with std `init_stddev` (0.1), so the
logits `A @ B^T` start with std `init_stddev^2 * sqrt(r)`: twice as spread at rank 16 as at rank 4.
This reruns the basis/rank sweep's `unimixer_lite+rank16` cell at size m (same data, budget and
seeds) with `init_stddev = 0.1 * (4 / 16) ** 0.25 = 0.0707`, which gives rank 16 rank 4's spread.

Usage: KERAS_BACKEND=jax .venv/bin/python benchmarks/lite_rank_init.py
Writes benchmarks/results/scaling/synthetic_stream_rank16_init.csv.
"""

import csv

from results_files import results_path  # noqa: E402 (benchmarks/ is on sys.path)

from keras_unimixer.experiments.scaling.ladder import LadderConfig, train_config
from keras_unimixer.experiments.training import load_data, train

INIT_STDDEV = 0.1 * (4 / 16) ** 0.25


def main():
    config = LadderConfig(
        dataset="synthetic_stream:vocabulary_size=2000",
        models=("unimixer_lite+rank16",),
        sizes=("m",),
        epochs=1,
        batch_size=1024,
        max_examples=300_000,
        reference=None,
    )
    rows = []
    for seed in (0, 1, 2):
        run = train_config(config, "unimixer_lite+rank16", "m", seed)
        run.mixing_options = {**run.mixing_options, "init_stddev": INIT_STDDEV}
        run.output = f"runs/rank16_init/seed{seed}"
        metrics = train(run, data=load_data(run))
        rows.append(
            {
                "model": "unimixer_lite+rank16",
                "size": "m",
                "seed": seed,
                "init_stddev": round(INIT_STDDEV, 4),
                "dense_params": metrics["parameters"]["dense"],
                "test_auc": metrics["test"]["auc"],
            }
        )
        print(rows[-1], flush=True)
    with open(results_path("scaling/synthetic_stream_rank16_init.csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
