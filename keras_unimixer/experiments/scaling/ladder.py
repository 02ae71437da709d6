"""Scaling ladders: the same data, budget rule and seeds for every architecture and size."""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
from pathlib import Path

from keras_unimixer.experiments.scaling.fit import fit_gain_law, fit_gain_trend, fit_power_law

logger = logging.getLogger("keras_unimixer.experiments.scaling")

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
    "depth8": {"num_layers": 8},
    "basis2": {"num_basis": 2},
    "basis4": {"num_basis": 4},
    "basis8": {"num_basis": 8},
    "rank2": {"rank": 2},
    "rank16": {"rank": 16},
    "rank64": {"rank": 64},
    "rank256": {"rank": 256},  # capped at the number of blocks
    "rounds3": {"sinkhorn_iterations": 3},  # differentiable Sinkhorn rounds (default 10)
}
# Classic baselines on the same ladder: an MLP of `num_layers` layers of `num_tokens * token_dim`
# units (the width of the mixers' token matrix); DCNv2 adds as many cross layers.
MLP_BASELINES = ("dnn", "dcnv2")
BUDGETS = ("fixed", "proportional")
# "ladder": the ladder's own training settings; "benchmark": the dataset's benchmark protocol
# (`keras_unimixer.experiments.protocols.training_protocol`, e.g. BARS's for Frappe_x1) with the
# ladder's sizes.
PROTOCOLS = ("ladder", "benchmark")
# What the "benchmark" protocol sets beyond the ladder's own fields (epochs stay the ladder's
# budget).
PROTOCOL_EXTRAS = ("reduce_lr_on_plateau", "embedding_l2", "embedding_init_stddev")
REFERENCE_SIZE = "reference"
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
    # "fixed": every run trains on the same rows (`max_examples`); "proportional": a run trains on
    # `rows_per_param` rows per dense parameter, within [`min_examples`, `max_examples`] (data
    # that grows with the model; for data of any size, e.g. synthetic_stream).
    budget: str = "fixed"
    rows_per_param: float = 10.0
    min_examples: int = 100_000
    # The fixed reference of the paper's gain law dAUC = a N^alpha (trained once per seed).
    reference: str | None = "logistic_regression"
    # bfloat16 compute (`train --mixed-precision`), for rungs run on a GPU.
    mixed_precision: bool = False
    # Each run's learning curve: exact validation metrics every this many training examples.
    eval_every_examples: int | None = None
    # "benchmark": embedding size, batch size, learning rate, patience, learning-rate schedule and
    # embedding regularization come from the dataset's benchmark protocol.
    protocol: str = "ladder"
    # Row-sparse embedding tables (`TrainConfig.embedding_optimizer`: e.g. "rowwise_adagrad") at
    # `embedding_learning_rate`; None: every variable, tables included, trained densely by Adam.
    embedding_optimizer: str | None = None
    embedding_learning_rate: float | None = None

    def __post_init__(self):
        from keras_unimixer.layers.mixing import mixer_names
        from keras_unimixer.models.options import check_options_apply

        self.models = tuple(self.models) or mixer_names()
        for size in self.sizes:
            if size not in SIZES:
                raise ValueError(f"`sizes` entry {size!r} is not one of {list(SIZES)}.")
        for name in self.models:
            mixer, _, variant = name.partition("+")
            if mixer in MLP_BASELINES and not variant:
                continue
            if mixer not in mixer_names():
                raise ValueError(
                    f"`models` entry {name!r}: must be one of {mixer_names()} (a mixer, with an "
                    f"optional +variant) or a baseline {list(MLP_BASELINES)}."
                )
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
        if self.budget not in BUDGETS:
            raise ValueError(f"`budget` must be one of {BUDGETS}, got {self.budget!r}.")
        if self.budget == "proportional" and not self.max_examples:
            raise ValueError("budget 'proportional' needs `max_examples` (the largest run).")
        if not self.sizes:
            raise ValueError("`sizes` needs at least one size (two or more to fit a curve).")
        if self.embedding_optimizer is not None:
            from keras_unimixer.optimizers import TABLE_OPTIMIZERS

            if self.embedding_optimizer not in TABLE_OPTIMIZERS:
                raise ValueError(
                    f"`embedding_optimizer` must be one of {TABLE_OPTIMIZERS} or None, got "
                    f"{self.embedding_optimizer!r}."
                )
        elif self.embedding_learning_rate is not None:
            raise ValueError("`embedding_learning_rate` needs `embedding_optimizer`.")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"`protocol` must be one of {PROTOCOLS}, got {self.protocol!r}.")
        if self.protocol == "benchmark":
            from keras_unimixer.experiments.protocols import PROTOCOLS as DATASET_PROTOCOLS
            from keras_unimixer.experiments.protocols import training_protocol

            settings = training_protocol(self.dataset)
            if not settings:
                raise ValueError(
                    f"`protocol` 'benchmark': dataset {self.dataset!r} has no benchmark protocol; "
                    f"datasets with one: {list(DATASET_PROTOCOLS)}."
                )
            for key in ("embedding_dim", "batch_size", "learning_rate", "patience"):
                default = LadderConfig.__dataclass_fields__[key].default
                if getattr(self, key) not in (default, settings[key]):
                    raise ValueError(
                        f"`{key}` {getattr(self, key)!r}: the benchmark protocol sets it to "
                        f"{settings[key]!r}; drop one of them."
                    )
                setattr(self, key, settings[key])

    def table_settings(self) -> dict:
        """How every run of the ladder, the reference included, trains its embedding tables."""
        return {
            "embedding_optimizer": self.embedding_optimizer,
            "embedding_learning_rate": self.embedding_learning_rate,
        }

    def protocol_extras(self) -> dict:
        """The benchmark protocol's settings that a ladder has no field for (empty for "ladder")."""
        if self.protocol != "benchmark":
            return {}
        from keras_unimixer.experiments.protocols import training_protocol

        settings = training_protocol(self.dataset)
        return {key: settings[key] for key in PROTOCOL_EXTRAS}


def ladder_shape(name: str, size: str) -> dict:
    """`num_layers`, `num_tokens`, `token_dim` of ladder entry `name` at `size` (zeros for the
    reference); a variant such as `+depth8` overrides the size's."""
    shape = dict(
        zip(("num_layers", "num_tokens", "token_dim"), SIZES.get(size, (0, 0, 0)), strict=True)
    )
    if size in SIZES:
        variant = VARIANTS.get(name.partition("+")[2], {})
        shape.update({key: value for key, value in variant.items() if key in shape})
    return shape


def train_config(config: LadderConfig, name: str, size: str, seed: int, features=None):
    """The run of one (model, size, seed); `features` sizes a proportional budget."""
    from keras_unimixer.experiments.training import TrainConfig
    from keras_unimixer.layers.mixing import get_mixer

    mixer, _, variant = name.partition("+")
    if size == REFERENCE_SIZE:
        return TrainConfig(
            dataset=config.dataset,
            data_dir=config.data_dir,
            model=mixer,
            embedding_dim=config.embedding_dim,
            epochs=config.epochs,
            batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            patience=config.patience,
            seed=seed,
            max_examples=config.max_examples,
            verbose=0,
            mixed_precision=config.mixed_precision,
            eval_every_examples=config.eval_every_examples,
            output=str(Path(config.output) / "runs" / f"reference_{mixer}_seed{seed}"),
            **config.table_settings(),
            **config.protocol_extras(),
        )
    num_layers, num_tokens, token_dim = SIZES[size]
    values = dict(
        dataset=config.dataset,
        data_dir=config.data_dir,
        model=mixer,
        num_layers=num_layers,
        num_tokens=num_tokens,
        token_dim=token_dim,
        embedding_dim=config.embedding_dim,
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        patience=config.patience,
        seed=seed,
        max_examples=config.max_examples,
        verbose=0,
        mixed_precision=config.mixed_precision,
        eval_every_examples=config.eval_every_examples,
        output=str(Path(config.output) / "runs" / f"{name}_{size}_seed{seed}"),
        **config.table_settings(),
        **config.protocol_extras(),
    )
    values.update(VARIANTS.get(variant, {}))
    if mixer in MLP_BASELINES:
        for key in ("num_layers", "num_tokens", "token_dim"):
            del values[key]
        values["hidden_units"] = (num_tokens * token_dim,) * num_layers
        if mixer == "dcnv2":
            values["num_cross_layers"] = num_layers
    elif get_mixer(mixer).ffn_activation == "gelu":
        values["ffn_multiplier"] = 3  # GELU FFN: 2 matrices to SwiGLU's 3, equal parameters
    run = TrainConfig(**values)
    if config.budget == "proportional" and features is not None:
        run.max_examples = proportional_rows(config, run, features)
    return run


def proportional_rows(config: LadderConfig, run, features) -> int:
    """Training rows of a run under the proportional budget: rows_per_param x dense params."""
    import keras

    from keras_unimixer.experiments.training import build
    from keras_unimixer.utils.accounting import parameter_counts

    dense = parameter_counts(build(run, features))["dense"]
    keras.utils.clear_session()
    rows = int(config.rows_per_param * dense)
    return max(config.min_examples, min(config.max_examples, rows))


def run_ladder(config: LadderConfig, progress=print) -> list[dict]:
    """Train every (model, size, seed); one row per run, appended to `<output>/ladder.csv`.

    Finished runs found in the CSV are not trained again, so an interrupted ladder continues; a
    run interrupted part-way continues from its last whole checkpoint (or starts again).
    """
    from keras_unimixer.experiments.training import load_data, train

    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    _check_same_budget(config, output / "ladder_config.json")
    table = output / "ladder.csv"
    rows = read_rows(table)
    done = {(r["model"], r["size"], int(r["seed"])) for r in rows}
    references_done = {
        (int(r["seed"]), int(r["train_rows"])) for r in rows if r["size"] == REFERENCE_SIZE
    }
    data_by_seed = {}
    proportional_reference = config.budget == "proportional" and bool(config.reference)

    def run_one(name, size, seed, same_rows_as=None):
        if same_rows_as is not None:
            # The reference on a proportional run's rows (`same_rows_as`: that run's max_examples
            # and train rows): the run's gain is measured against it.
            max_examples, train_rows = same_rows_as
            if (seed, train_rows) in references_done:
                return
            run = train_config(config, name, size, seed)
            run.max_examples = max_examples
            run.output = f"{run.output}_rows{train_rows}"
            data = load_data(run)
        elif (name, size, seed) in done:
            if proportional_reference and size != REFERENCE_SIZE:  # finished without its reference
                add_missing_reference(name, size, seed)
            return
        elif config.budget == "proportional":
            features = load_data(train_config(config, name, size, seed)).features
            run = train_config(config, name, size, seed, features)
            data = load_data(run)
        else:
            run = train_config(config, name, size, seed)
            if seed not in data_by_seed:
                data_by_seed[seed] = load_data(run)
            data = data_by_seed[seed]
        # A run missing from the CSV that left a folder was interrupted: continue it from its
        # last whole checkpoint, or start it again where it has none.
        run.resume = run.overwrite = Path(run.output).exists()
        metrics = train(run, data=data)
        row = {
            "model": name,
            "size": size,
            "seed": seed,
            **ladder_shape(name, size),
            "dense_params": metrics["parameters"]["dense"],
            "embedding_params": metrics["parameters"]["embedding"],
            "flops_per_example": metrics["flops_per_example"],
            "train_rows": data.num_examples("train"),
            "test_auc": metrics["test"]["auc"],
            "test_logloss": metrics["test"]["logloss"],
            # Where the data has users: the mean per-user AUC and its impression-weighted form.
            **{
                f"test_{key}": metrics["test"][key]
                for key in ("uauc", "gauc")
                if key in metrics["test"]
            },
            "best_epoch": metrics["best_epoch"],
            "fit_seconds": round(metrics["fit_seconds"], 2),
        }
        append_row(table, row)
        rows.append(row)
        done.add((name, size, seed))
        progress(
            f"{name:24s} {size:9s} seed {seed}: AUC {row['test_auc']:.4f}, "
            f"{row['dense_params']} dense params, {row['train_rows']} rows, "
            f"{row['fit_seconds']:.0f} s"
        )
        if size == REFERENCE_SIZE:
            references_done.add((seed, row["train_rows"]))
        elif proportional_reference:
            run_one(config.reference, REFERENCE_SIZE, seed, (run.max_examples, row["train_rows"]))

    def add_missing_reference(name, size, seed):
        row = next(r for r in rows if (r["model"], r["size"], int(r["seed"])) == (name, size, seed))
        if (seed, row["train_rows"]) in references_done:
            return
        features = load_data(train_config(config, name, size, seed)).features
        max_examples = train_config(config, name, size, seed, features).max_examples
        run_one(config.reference, REFERENCE_SIZE, seed, (max_examples, row["train_rows"]))

    for seed in config.seeds:
        if config.reference:
            run_one(config.reference, REFERENCE_SIZE, seed)
        for name in config.models:
            for size in config.sizes:
                run_one(name, size, seed)
    wanted = {(m, s, seed) for m in config.models for s in config.sizes for seed in config.seeds}
    wanted |= {(config.reference, REFERENCE_SIZE, seed) for seed in config.seeds}
    return [r for r in rows if (r["model"], r["size"], int(r["seed"])) in wanted]


def _budget(config: LadderConfig) -> dict:
    """The settings that make two runs of a ladder comparable (not which runs it holds)."""
    return {
        key: value
        for key, value in dataclasses.asdict(config).items()
        if key not in ("models", "sizes", "seeds", "output", "eval_every_examples")
    }


def _check_same_budget(config: LadderConfig, path: Path) -> None:
    """Rows of a ladder are comparable only under one data/budget rule: refuse to mix two."""
    import json

    budget = _budget(config)
    if path.is_file():
        # A setting added after the ladder was saved held its default there.
        saved = {**_budget(LadderConfig()), **json.loads(path.read_text())}
        differing = {k: (saved.get(k), v) for k, v in budget.items() if saved.get(k) != v}
        if differing:
            raise ValueError(
                f"{path.parent} holds a ladder run with other settings {differing} (saved, "
                "asked); use another --output to compare settings."
            )
    else:
        path.write_text(json.dumps(budget, indent=1))


def merge_ladders(sources, output) -> list[dict]:
    """One ladder from several that ran apart (one process per seed or model, or rungs on other
    machines): their rows in `<output>/ladder.csv` and their runs' configs and histories in
    `<output>/runs` (for the learning curves); the models themselves are not copied.

    The sources must share one data and budget rule (their `ladder_config.json`, all but the
    data folder, which may differ between machines) and may not hold the same (model, size,
    seed) twice. Returns the merged rows.
    """
    import json
    import shutil

    sources = [Path(source) for source in sources]
    if len(sources) < 2:
        raise ValueError(f"`sources`: merging needs two or more ladders, got {len(sources)}.")
    settings = {}
    for source in sources:
        path = source / "ladder_config.json"
        if not path.is_file():
            raise ValueError(f"`sources` entry {str(source)!r} holds no ladder (no {path.name}).")
        # A setting added after a ladder was saved held its default there.
        saved = {**_budget(LadderConfig()), **json.loads(path.read_text())}
        settings[source] = {key: value for key, value in saved.items() if key != "data_dir"}
    # A ladder that trained no reference (`reference: None`) joins one that did.
    references = {s["reference"] for s in settings.values()} - {None}
    if len(references) > 1:
        raise ValueError(f"`sources` trained different references {sorted(references)}; keep one.")
    for saved in settings.values():
        saved["reference"] = next(iter(references), None)
    first = sources[0]
    for source in sources[1:]:
        differing = {
            key: (settings[first].get(key), value)
            for key, value in settings[source].items()
            if settings[first].get(key) != value
        }
        if differing:
            raise ValueError(
                f"`sources`: {source} was run under other settings than {first}: {differing}."
            )
    output = Path(output)
    if (output / "ladder.csv").exists():
        raise ValueError(f"`output` {output} already holds a ladder; merge into a new folder.")
    rows, seen = [], {}
    for source in sources:
        for row in read_rows(source / "ladder.csv"):
            key = (row["model"], row["size"], int(row["seed"]), int(row["train_rows"]))
            if key in seen:
                raise ValueError(
                    f"`sources`: {key[:3]} is in both {seen[key]} and {source}; keep one (e.g. "
                    "train the reference in one process only: --reference none in the others)."
                )
            seen[key] = source
            rows.append(row)
    output.mkdir(parents=True, exist_ok=True)
    for source in sources:
        for path in Path(source, "runs").glob("*/*.json"):
            if path.name in ("metrics.json", "config.json"):
                target = output / "runs" / path.parent.name / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
    write_rows(output / "ladder.csv", rows)
    budget = {**settings[first], "data_dir": None}
    (output / "ladder_config.json").write_text(json.dumps(budget, indent=1))
    return read_rows(output / "ladder.csv")


def read_rows(path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    numeric = {
        "seed",
        "num_layers",
        "num_tokens",
        "token_dim",
        "dense_params",
        "embedding_params",
        "flops_per_example",
        "best_epoch",
        "train_rows",
    }
    rows = []
    with open(path) as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                if key in numeric:
                    row[key] = int(value)
                elif key not in ("model", "size"):
                    row[key] = float(value) if value != "" else math.nan
            rows.append(row)
    return rows


def append_row(path, row: dict) -> None:
    """Append `row` to the CSV at `path`; a column the file lacks is added (empty in older
    rows), so that a ladder continued by a newer version keeps one header."""
    path = Path(path)
    header = []
    if path.is_file():
        with open(path, newline="") as handle:
            header = next(csv.reader(handle), [])
    if header and any(key not in header for key in row):
        write_rows(path, read_rows(path) + [row])
        return
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header or list(row), restval="")
        if not header:
            writer.writeheader()
        writer.writerow(row)


def write_rows(path, rows) -> None:
    """The CSV at `path` with `rows`, its header every column any row has (empty where one lacks
    it)."""
    header = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(rows)


def fit_ladder(rows) -> list[dict]:
    """Power-law fits per model, against dense parameters and against FLOPs per example: of
    test AUC itself (`law: "auc"`), and, where the ladder has reference runs, the paper's law of
    the AUC gain over the reference (`law: "gain"`, N in millions of dense parameters), and the
    gain's change per tenfold of N, negative gains included (`law: "gain_trend"`)."""
    references = sorted(
        (row for row in rows if row["size"] == REFERENCE_SIZE), key=lambda r: r["train_rows"]
    )
    # Per seed: the reference on the most rows (the fixed budget's); per (seed, rows): the one on
    # a proportional run's own rows, which `fit_gain_law` prefers where it exists.
    reference = {int(row["seed"]): row["test_auc"] for row in references}
    reference |= {(int(row["seed"]), int(row["train_rows"])): row["test_auc"] for row in references}
    fits = []
    for name in dict.fromkeys(row["model"] for row in rows if row["size"] != REFERENCE_SIZE):
        chosen = [row for row in rows if row["model"] == name and row["size"] != REFERENCE_SIZE]
        if len({row["size"] for row in chosen}) < 2:
            continue
        for x_key in ("dense_params", "flops_per_example"):
            fit = fit_power_law(chosen, x_key=x_key)
            fits.append({"model": name, "against": x_key, "law": "auc", **fit})
            if all(math.isfinite(row.get("test_uauc", math.nan)) for row in chosen):
                fit = fit_power_law(chosen, x_key=x_key, y_key="test_uauc")
                fits.append({"model": name, "against": x_key, "law": "uauc", **fit})
            gain = fit_gain_law(chosen, reference, x_key) if reference else None
            if gain is not None:
                fits.append({"model": name, "against": x_key, "law": "gain", **gain})
            trend = fit_gain_trend(chosen, reference, x_key) if reference else None
            if trend is not None:
                fits.append({"model": name, "against": x_key, "law": "gain_trend", **trend})
    return fits


def ablation_table(rows, size: str | None = None) -> list[dict]:
    """Mean test AUC per model (and variant) at one size, with the difference to the base."""
    rows = [row for row in rows if row["size"] != REFERENCE_SIZE]
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
