"""MovieLens 100K: a validation-only search of equal effort per token mixer, which sets the
defaults of `train --dataset movielens --model M`.

Every mixer runs the same sampled settings (the first is `movielens_models.py`'s shared setting),
each with the same 3 seeds (seed = the random 80/10/10 split and the initialization), under the
`movielens` training protocol (`keras_unimixer.experiments.protocols`: up to 10 epochs, batch 512,
Adam 1e-3, early stopping on exact validation AUC with patience 2). Settings are ranked by the
mean validation AUC over the seeds; test AUC plays no part in the choice. The results file gives,
per mixer, every setting's validation and test AUC (mean ± std) and parameters, the chosen one
first; `protocols.py` holds the chosen settings (a test checks that they are this file's best).

Usage (from the repository root, once `bash scripts/test.sh` made .venv):
    KERAS_BACKEND=jax .venv/bin/python benchmarks/movielens_search.py --workers 2 \\
        --data-dir ../shared/data/ml-100k

Writes `<output>/search.jsonl` (one line per run, resumable) and
benchmarks/results/movielens_search_<backend>.{jsonl,md} (with `--write-results`; otherwise
under runs/benchmarks/).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from protocol_runs import (  # noqa: E402 (benchmarks/ is on sys.path)
    best_by_mean_validation,
    failures,
    mean_std,
    run_all,
    sample_settings,
)
from results_files import add_write_results, results_path  # noqa: E402

MODELS = ("unimixer_lite", "rankmixer", "unimixer")
SEEDS = (1, 2, 3)
# Shared by every mixer; the first setting is movielens_models.py's (RankMixer tokenizer, T=8).
FIRST = {
    "tokenizer_mode": "rankmixer",
    "num_layers": 2,
    "token_dim": 32,
    "ffn_multiplier": 2,
    "dropout": 0.0,
    "block_dropout": 0.0,
    "embedding_weight_decay": None,
}
SEARCH_SPACE = {
    "tokenizer_mode": ["rankmixer", "field"],
    "num_layers": [1, 2, 3],
    "token_dim": [16, 32, 64],
    "ffn_multiplier": [2, 4],
    "dropout": [0.0, 0.1, 0.2],
    "block_dropout": [0.0, 0.1],
    # AdamW's decoupled decay on the tables only (the runs stop after 3-5 epochs: the
    # embeddings overfit first).
    "embedding_weight_decay": [None, 0.01],
}


def markdown(rows: list, command: str, failed: list = ()) -> str:
    best = best_by_mean_validation(rows)
    lines = [
        "# MovieLens 100K: validation-only search per token mixer",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs; date {datetime.date.today()}; "
        f"backend {rows[0]['backend']}; command: `{command}`.",
        "",
        "Every mixer ran the same sampled settings with seeds 1, 2, 3 (split and init) under the "
        "`movielens` protocol; ranked by mean validation AUC (test AUC played no part). Exact "
        "AUC, mean ± std over the seeds. The first row of each mixer is its chosen setting, "
        "the defaults of `train --dataset movielens --model M`.",
        "",
        "| model | settings | validation AUC | test AUC | params (dense) | best epochs |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for model in dict.fromkeys(row["model"] for row in rows):
        groups: dict = {}
        for row in rows:
            if row["model"] == model:
                groups.setdefault(json.dumps(row["settings"], sort_keys=True), []).append(row)
        chosen = json.dumps(best[model][1], sort_keys=True)
        order = sorted(groups, key=lambda key: (key != chosen, key))
        for key in order:
            group = groups[key]
            params = group[0]["params"]
            lines.append(
                f"| {model}{' (chosen)' if key == chosen else ''} | `{key}` "
                f"| {mean_std([r['validation']['auc'] for r in group])} "
                f"| {mean_std([r['test']['auc'] for r in group])} "
                f"| {params['total']:,} ({params['dense']:,}) "
                f"| {'/'.join(str(r['best_epoch']) for r in group)} |"
            )
    refused: dict = {}
    for failure in failed:
        key = (failure["model"], json.dumps(failure["settings"], sort_keys=True))
        refused.setdefault(key, (failure["error"], []))[1].append(str(failure["seed"]))
    if refused:
        lines += ["", "Settings a model could not run (each run's error; not counted above):", ""]
        for (model, settings), (error, seeds) in refused.items():
            lines.append(f"- {model}, seeds {','.join(seeds)}: `{settings}`: {error}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--configs", type=int, default=6)
    parser.add_argument("--seeds", default=",".join(str(s) for s in SEEDS))
    parser.add_argument("--output", default="runs/benchmark_movielens_search")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--data-dir", default=None)
    add_write_results(parser)
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    jobs = [
        (model, settings, seed)
        for settings in sample_settings(SEARCH_SPACE, FIRST, args.configs)
        for model in models
        for seed in seeds
    ]
    output = Path(args.output)
    rows = run_all(jobs, output, "search", args.workers, args.data_dir, "movielens")
    backend = rows[0]["backend"]
    command = "python benchmarks/movielens_search.py " + " ".join(argv or sys.argv[1:])
    text = markdown(rows, command, failures(output, "search"))
    results_path(f"movielens_search_{backend}.md").write_text(text)
    shutil.copyfile(output / "search.jsonl", results_path(f"movielens_search_{backend}.jsonl"))
    print(text)
    for model, (auc, settings) in best_by_mean_validation(rows).items():
        print(f"best {model}: mean val {auc:.5f} {json.dumps(settings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
