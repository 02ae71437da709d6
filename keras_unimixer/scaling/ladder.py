"""Scaling ladders: the same data, budget rule and seeds for every architecture and size."""

from __future__ import annotations

import csv
import dataclasses
import logging
from pathlib import Path

from keras_unimixer.scaling.fit import fit_power_law

logger = logging.getLogger("keras_unimixer.scaling")

# Named sizes: (num_layers, num_tokens, token_dim). Every size suits every mixer (D % T == 0).
SIZES = {
    "xs": (1, 4, 16),
    "s": (2, 8, 16),
    "m": (2, 8, 32),
    "l": (3, 8, 64),
    "xl": (4, 16, 64),
    "xxl": (4, 16, 128),
}
# Ablations, written `<mixer>+<variant>` in the model list (e.g. `unimixer+post_norm`).
VARIANTS = {
    "no_anneal": {"temperature_schedule": "constant"},
    "no_symmetry": {"mixing_options": {"symmetric": False}},
    "shared_local": {"mixing_options": {"block_specific": False}},
    "post_norm": {"norm": "post"},
    "depth2": {"num_layers": 2},
    "depth4": {"num_layers": 4},
}
QUICK = {
    "dataset": "synthetic",
    "models": ["unimixer", "unimixer_lite", "rankmixer"],
    "sizes": ["xs", "s", "m"],
    "seeds": [0],
    "epochs": 2,
    "max_examples": 8000,
}


@dataclasses.dataclass
class LadderConfig:
    """A scaling experiment (see `python -m keras_unimixer scale --help`)."""

    dataset: str = "synthetic"
    models: tuple = ()  # default: every registered mixer
    sizes: tuple = ("xs", "s", "m", "l")
    seeds: tuple = (0, 1, 2)
    epochs: int = 5
    batch_size: int = 512
    learning_rate: float = 1e-3
    patience: int = 2
    embedding_dim: int = 16
    max_examples: int | None = None
    data_dir: str | None = None
    output: str = "runs/scale"

    def __post_init__(self):
        from keras_unimixer.layers import mixer_names
        from keras_unimixer.models import check_options_apply

        self.models = tuple(self.models) or mixer_names()
        for size in self.sizes:
            if size not in SIZES:
                raise ValueError(f"`sizes` entry {size!r} is not one of {list(SIZES)}.")
        for name in self.models:
            mixer, _, variant = name.partition("+")
            if mixer not in mixer_names():
                raise ValueError(f"`models` entry {name!r}: mixer must be one of {mixer_names()}.")
            if variant and variant not in VARIANTS:
                raise ValueError(
                    f"`models` entry {name!r}: ablation must be one of {list(VARIANTS)}."
                )
            try:
                check_options_apply(mixer, VARIANTS.get(variant, {}))
            except ValueError as error:
                raise ValueError(f"`models` entry {name!r}: {error}") from None
            if variant == "shared_local" and mixer != "unimixer":
                raise ValueError(f"`models` entry {name!r}: shared_local applies to 'unimixer'.")
        if len(self.sizes) < 2:
            raise ValueError("`sizes` needs at least 2 sizes to fit a curve.")


def train_config(config: LadderConfig, name: str, size: str, seed: int):
    from keras_unimixer.layers import get_mixer
    from keras_unimixer.training import TrainConfig

    mixer, _, variant = name.partition("+")
    num_layers, num_tokens, token_dim = SIZES[size]
    values = dict(
        dataset=config.dataset, data_dir=config.data_dir, model=mixer, num_layers=num_layers,
        num_tokens=num_tokens, token_dim=token_dim, embedding_dim=config.embedding_dim,
        epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
        patience=config.patience, seed=seed, max_examples=config.max_examples, verbose=0,
        output=str(Path(config.output) / "runs" / f"{name}_{size}_seed{seed}"),
    )  # fmt: skip
    values.update(VARIANTS.get(variant, {}))
    if get_mixer(mixer).ffn_activation == "gelu":
        values["ffn_multiplier"] = 3  # GELU FFN: 2 matrices to SwiGLU's 3, equal parameters
    return TrainConfig(**values)


def run_ladder(config: LadderConfig, progress=print) -> list[dict]:
    """Train every (model, size, seed); one row per run, appended to `<output>/ladder.csv`.

    Finished runs found in the CSV are not trained again, so an interrupted ladder continues.
    """
    from keras_unimixer.training import load_data, train

    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    _check_same_budget(config, output / "ladder_config.json")
    table = output / "ladder.csv"
    rows = read_rows(table)
    done = {(r["model"], r["size"], int(r["seed"])) for r in rows}
    data_by_seed = {}
    for seed in config.seeds:
        for name in config.models:
            for size in config.sizes:
                if (name, size, seed) in done:
                    continue
                run = train_config(config, name, size, seed)
                if seed not in data_by_seed:
                    data_by_seed[seed] = load_data(run)
                metrics = train(run, data=data_by_seed[seed])
                row = {
                    "model": name, "size": size, "seed": seed,
                    "num_layers": run.num_layers, "num_tokens": run.num_tokens,
                    "token_dim": run.token_dim,
                    "dense_params": metrics["parameters"]["dense"],
                    "embedding_params": metrics["parameters"]["embedding"],
                    "flops_per_example": metrics["flops_per_example"],
                    "test_auc": metrics["test"]["auc"], "test_logloss": metrics["test"]["logloss"],
                    "best_epoch": metrics["best_epoch"],
                    "fit_seconds": round(metrics["fit_seconds"], 2),
                }  # fmt: skip
                append_row(table, row)
                rows.append(row)
                progress(
                    f"{name:24s} {size:4s} seed {seed}: AUC {row['test_auc']:.4f}, "
                    f"{row['dense_params']} dense params, {row['fit_seconds']:.0f} s"
                )
    wanted = {(m, s, seed) for m in config.models for s in config.sizes for seed in config.seeds}
    return [r for r in rows if (r["model"], r["size"], int(r["seed"])) in wanted]


def _check_same_budget(config: LadderConfig, path: Path) -> None:
    """Rows of a ladder are comparable only under one data/budget rule: refuse to mix two."""
    import json

    budget = {
        key: value
        for key, value in dataclasses.asdict(config).items()
        if key not in ("models", "sizes", "seeds", "output")
    }
    if path.is_file():
        saved = json.loads(path.read_text())
        differing = {k: (saved.get(k), v) for k, v in budget.items() if saved.get(k) != v}
        if differing:
            raise ValueError(
                f"{path.parent} holds a ladder run with other settings {differing} (saved, "
                "asked); use another --output to compare settings."
            )
    else:
        path.write_text(json.dumps(budget, indent=1))


def read_rows(path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    numeric = {"seed", "num_layers", "num_tokens", "token_dim", "dense_params",
               "embedding_params", "flops_per_example", "best_epoch"}  # fmt: skip
    rows = []
    with open(path) as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                if key in numeric:
                    row[key] = int(value)
                elif key not in ("model", "size"):
                    row[key] = float(value)
            rows.append(row)
    return rows


def append_row(path, row: dict) -> None:
    path = Path(path)
    new = not path.is_file()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def fit_ladder(rows) -> list[dict]:
    """Power-law fits per model, against dense parameters and against FLOPs per example."""
    fits = []
    for name in dict.fromkeys(row["model"] for row in rows):
        chosen = [row for row in rows if row["model"] == name]
        if len({row["size"] for row in chosen}) < 2:
            continue
        for x_key in ("dense_params", "flops_per_example"):
            fit = fit_power_law(chosen, x_key=x_key)
            fits.append({"model": name, "against": x_key, **fit})
    return fits


def ablation_table(rows, size: str | None = None) -> list[dict]:
    """Mean test AUC per model (and variant) at one size, with the difference to the base."""
    size = size or rows[0]["size"]
    means = {}
    for name in dict.fromkeys(row["model"] for row in rows):
        aucs = [r["test_auc"] for r in rows if r["model"] == name and r["size"] == size]
        if aucs:
            means[name] = sum(aucs) / len(aucs)
    table = []
    for name, mean in means.items():
        base = name.partition("+")[0]
        delta = mean - means[base] if base in means and base != name else None
        table.append({"model": name, "size": size, "test_auc": mean, "delta_vs_base": delta})
    return table
