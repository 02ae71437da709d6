"""Frappe_x1 under the BARS protocol: a validation-only search for the token mixers, then the table.

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
import shlex
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mixing_options import VARIANTS as MOVIELENS_VARIANTS  # noqa: E402 (benchmarks/)
from protocol_runs import (  # noqa: E402
    best_by_mean_validation,
    mean_std,
    run_all,
    sample_settings,
)
from results_files import add_write_results, current_commit, results_path  # noqa: E402

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
# Variant labels (no commas: `--variants` takes them comma-separated) -> the change of the base.
ABLATIONS = {
    "unimixer_lite": {
        "base": {},
        "no temperature (constant 1.0)": {"temperature_schedule": "constant"},
        "model warm-up (tau 1 then 0.05)": {"temperature_schedule": "warmup"},
        "identity-like start (scale 3)": {
            "mixing_options": {"global_init": "identity", "init_scale": 3.0}
        },
        "no symmetry": {"mixing_options": {"symmetric": False}},
        "10 Sinkhorn rounds only (no tolerance phase)": {
            "mixing_options": {"sinkhorn_max_iterations": 0}
        },
        "SiameseNorm per sublayer": {"norm": "siamese"},
        "SiameseNorm per block": {"norm": "siamese", "siamese_scope": "block"},
        # The authors' design choices, as `mixing_options.py` measures them on MovieLens 100K.
        **{label: change for label, change in MOVIELENS_VARIANTS.items() if label != "default"},
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


def search_settings(count: int) -> list[dict]:
    """`count` distinct random draws from `SEARCH_SPACE`, the first being the preset's values."""
    from keras_unimixer.experiments.protocols import model_protocol

    preset = model_protocol("frappe_x1", "unimixer_lite")
    return sample_settings(SEARCH_SPACE, {name: preset[name] for name in SEARCH_SPACE}, count)


def selected_ablations(labels: str | None) -> dict:
    """`ABLATIONS` restricted to the comma-separated `labels` (each model with a chosen variant
    keeps its base); all of it for `None`. An unknown label is refused, naming the valid ones."""
    if labels is None:
        return ABLATIONS
    wanted = {label for label in labels.split(",") if label}
    known = {label for variants in ABLATIONS.values() for label in variants}
    if wanted - known:
        raise SystemExit(f"unknown --variants {sorted(wanted - known)}; valid: {sorted(known)}")
    return {
        model: {label: v for label, v in variants.items() if label == "base" or label in wanted}
        for model, variants in ABLATIONS.items()
        if wanted & set(variants) - {"base"}
    }


def reproducing_command(argv: list[str]) -> str:
    """The shell command that produces a results file: `--time-budget` (a snapshot's 0) left out.

    Arguments are shell-quoted, so a `--variants` list whose labels hold spaces reruns as written.
    """
    kept, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--time-budget"):
            skip = arg == "--time-budget"
            continue
        kept.append(arg)
    return shlex.join(["python", "benchmarks/frappe_x1.py", *kept])


def table_markdown(rows, command: str) -> str:
    by_model: dict = {}
    for row in rows:
        by_model.setdefault(row["model"], []).append(row)

    lines = [
        f"Frappe_x1 (BARS split, train.csv rebuilt), {datetime.date.today()}, "
        f"{platform.machine()} {os.cpu_count()} CPUs, backend {rows[0]['backend']}, commit "
        f"{current_commit()}; `{command}`.",
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
            f"| {mean_std([r['test']['auc'] for r in group])} "
            f"| {mean_std([r['test']['logloss'] for r in group])} "
            f"| {mean_std([r['test']['uauc'] for r in group])} "
            f"| {mean_std([r['validation']['auc'] for r in group])} "
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
        f"CPUs, backend {rows[0]['backend'] if rows else '-'}, commit {current_commit()}; "
        f"`{command}`. Base settings: "
        f"`{json.dumps(ABLATION_BASE)}` plus the frappe_x1 preset (embedding L2 0.05, batch "
        "4096, Adam 1e-3, early stopping on exact validation AUC; temperature annealed 1 -> "
        "0.05 over 4 epochs, random W_G). Change = variant - base, per seed, then mean ± std. "
        "W_G / W_B: row entropy of the mixing matrices at the last epoch over its maximum (0: a "
        "permutation or the identity, 1: uniform; mean over seeds and layers).",
        "",
        "| model | variant | seeds | test AUC | change vs base | val AUC | change vs base (val) "
        "| W_G entropy | W_B entropy | best epoch |",
        "|---|---|---|---|---|---|---|---|---|---|",
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

            def change(split, group=group, base=base, variant=variant):
                paired = [
                    r[split]["auc"] - base[r["seed"]][split]["auc"]
                    for r in group
                    if r["seed"] in base
                ]
                return "-" if not variant else mean_std(paired)

            lines.append(
                f"| {LABELS.get(model, model)} | {label} | {len(group)} "
                f"| {mean_std([r['test']['auc'] for r in group])} | {change('test')} "
                f"| {mean_std([r['validation']['auc'] for r in group])} | {change('validation')} "
                f"| {_mean_mixing(group, 'mixing_global_entropy')} "
                f"| {_mean_mixing(group, 'mixing_local_entropy')} "
                f"| {statistics.mean(r['best_epoch'] for r in group):.1f} |"
            )
    return "\n".join(lines) + "\n"


def _mean_mixing(group, key) -> str:
    values = [r["mixing"][key] for r in group if key in r.get("mixing", {})]
    return f"{statistics.mean(values):.3f}" if values else "-"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    search = commands.add_parser("search", help="validation-only search over SEARCH_SPACE")
    search.add_argument("--configs", type=int, default=12)
    search.add_argument("--models", default=",".join(MIXERS))
    table = commands.add_parser("table", help="every model with its preset, several seeds")
    table.add_argument("--models", default=",".join(BASELINES + MIXERS))
    table.add_argument("--seeds", default="0,1,2")
    table.add_argument(
        "--results-name",
        default=None,
        help="results file name (default: frappe_x1_<backend>.md, the full table)",
    )
    for command in (search, table):
        command.add_argument("--output", required=True)
        command.add_argument("--workers", type=int, default=1)
        command.add_argument("--data-dir", default=None)
        command.add_argument("--time-budget", type=float, default=None, help="seconds")
        command.add_argument("--settings", default="{}", help="JSON overrides for every run")
    ablation = commands.add_parser("ablation", help="one-setting changes of a small base model")
    ablation.add_argument("--seeds", default="0,1,2")
    ablation.add_argument(
        "--variants",
        default=None,
        help="comma-separated variant labels (default: all; each model's base always runs)",
    )
    ablation.add_argument("--output", required=True)
    ablation.add_argument("--workers", type=int, default=1)
    ablation.add_argument("--data-dir", default=None)
    ablation.add_argument("--time-budget", type=float, default=None, help="seconds")
    for command in (search, table, ablation):
        add_write_results(command)
    args = parser.parse_args(argv)

    output = Path(args.output)
    if args.command == "ablation":
        seeds = [int(s) for s in args.seeds.split(",") if s]
        jobs = [
            (model, {**ABLATION_BASE, **variant}, seed)
            for model, variants in selected_ablations(args.variants).items()
            for variant in variants.values()
            for seed in seeds
        ]
        rows = run_all(
            jobs, output, "ablation", args.workers, args.data_dir, "frappe_x1", args.time_budget
        )
        command = reproducing_command(argv or sys.argv[1:])
        markdown = ablation_markdown(rows, command)
        backend = rows[0]["backend"] if rows else "none"
        results_path(f"frappe_x1_ablation_{backend}.md").write_text(markdown)
        print(markdown)
        return 0
    extra = json.loads(args.settings)
    models = [m for m in args.models.split(",") if m]
    if args.command == "search":
        configs = [{**settings, **extra} for settings in search_settings(args.configs)]
        jobs = [(model, settings, 0) for settings in configs for model in models]
        rows = run_all(
            jobs, output, "search", args.workers, args.data_dir, "frappe_x1", args.time_budget
        )
        for model, (auc, settings) in best_by_mean_validation(rows).items():
            print(f"best {model}: val {auc:.5f} {json.dumps(settings)}")
        return 0
    seeds = [int(s) for s in args.seeds.split(",") if s]
    jobs = [(model, extra, seed) for model in models for seed in seeds]
    rows = run_all(
        jobs, output, "table", args.workers, args.data_dir, "frappe_x1", args.time_budget
    )
    command = reproducing_command(argv or sys.argv[1:])
    markdown = table_markdown(rows, command)
    backend = rows[0]["backend"] if rows else "none"
    results_path(table_results_name(args.results_name, backend)).write_text(markdown)
    print(markdown)
    return 0


def table_results_name(name: str | None, backend: str) -> str:
    """The table's results file: `name` (a partial table's own file, so that it does not
    replace the full one), or `frappe_x1_<backend>.md`. A name that is not a plain `.md` file
    name is refused."""
    if name is None:
        return f"frappe_x1_{backend}.md"
    if Path(name).name != name or not name.endswith(".md"):
        raise SystemExit(f"--results-name must be a file name ending in .md, got {name!r}")
    return name


if __name__ == "__main__":
    sys.exit(main())
