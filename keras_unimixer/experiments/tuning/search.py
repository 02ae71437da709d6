"""`python -m keras_unimixer tune`: a Keras Tuner search from YAML, its table, its best model.

A config names the data, the tuner (Keras Tuner's RandomSearch, Hyperband or
BayesianOptimization oracle), the search space (overrides of `DEFAULT_SPACE`) and the training
budget. The search is resumable: running the same command again continues it (`overwrite=False`);
completed trials are neither lost nor repeated. Each finished trial appends a line to
`<output>/<name>/trial_runs.jsonl` (trial id, which tuner process ran it, seconds), which also
makes Keras Tuner's chief/worker mode (`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`,
`KERASTUNER_ORACLE_PORT`) auditable.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import time
from pathlib import Path

import keras
import keras_tuner

from keras_unimixer import datasets
from keras_unimixer.experiments.training import monitor_name, validation_callback
from keras_unimixer.experiments.tuning.hypermodel import DEFAULT_SPACE, UniMixerHyperModel
from keras_unimixer.utils.accounting import flops_per_example, parameter_counts

logger = logging.getLogger("keras_unimixer.experiments.tuning")

TUNERS = {
    "random_search": keras_tuner.RandomSearch,
    "hyperband": keras_tuner.Hyperband,
    "bayesian": keras_tuner.BayesianOptimization,
}
RUN_LOG = "trial_runs.jsonl"
RESULTS_FILE = "results.csv"


@dataclasses.dataclass
class TuneConfig:
    """A search, as written in a YAML file under `tuning/` (every key optional except `name`)."""

    name: str
    dataset: str = "synthetic"
    dataset_options: dict = dataclasses.field(default_factory=dict)
    data_dir: str | None = None
    tasks: tuple = ("click",)
    tuner: str = "random_search"
    tuner_options: dict = dataclasses.field(default_factory=dict)
    space: dict = dataclasses.field(default_factory=dict)
    epochs: int = 3
    batch_size: int = 512
    patience: int = 1
    embedding_dim: int = 16
    hidden_units: tuple = (64,)
    seed: int = 42

    def __post_init__(self):
        if self.tuner not in TUNERS:
            raise ValueError(f"`tuner` must be one of {sorted(TUNERS)}, got {self.tuner!r}.")
        if self.dataset not in datasets.DATASETS:
            raise ValueError(f"`dataset` must be one of {datasets.DATASETS}, got {self.dataset!r}.")
        unknown = set(self.space) - set(DEFAULT_SPACE)
        if unknown:
            raise ValueError(
                f"`space` has unknown keys {sorted(unknown)}; valid: {sorted(DEFAULT_SPACE)}."
            )
        for key in ("epochs", "batch_size", "embedding_dim"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{key}` must be a positive integer, got {value!r}.")
        self.tasks = tuple(self.tasks)
        self.hidden_units = tuple(self.hidden_units)

    @classmethod
    def from_yaml(cls, path) -> TuneConfig:
        import yaml

        values = yaml.safe_load(Path(path).read_text()) or {}
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - fields
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}; valid: {sorted(fields)}.")
        if "name" not in values:
            values["name"] = Path(path).stem
        return cls(**values)


def _record_runs(tuner_class):
    """`tuner_class` whose every finished trial is appended to the run log, with its time."""

    class RecordedTuner(tuner_class):
        def run_trial(self, trial, *args, **kwargs):
            start = time.perf_counter()
            result = super().run_trial(trial, *args, **kwargs)
            record = {
                "trial_id": trial.trial_id,
                "tuner_id": os.environ.get("KERASTUNER_TUNER_ID", "local"),
                "seconds": round(time.perf_counter() - start, 3),
                "finished": time.time(),
            }
            with open(Path(self.project_dir) / RUN_LOG, "a") as log:
                log.write(json.dumps(record) + "\n")
            return result

    RecordedTuner.__name__ = tuner_class.__name__
    return RecordedTuner


def make_tuner(config: TuneConfig, hypermodel, output) -> keras_tuner.Tuner:
    options = {"seed": config.seed, **config.tuner_options}
    if config.tuner == "hyperband":
        options.setdefault("max_epochs", config.epochs)
    else:
        options.setdefault("max_trials", 4)
    return _record_runs(TUNERS[config.tuner])(
        hypermodel,
        objective=keras_tuner.Objective(monitor_name(config.tasks), "max"),
        directory=str(output),
        project_name=config.name,
        overwrite=False,
        **options,
    )


def load_data(config: TuneConfig):
    return datasets.load_dataset(
        config.dataset, data_dir=config.data_dir, seed=config.seed, **config.dataset_options
    )


def run_search(config: TuneConfig, output, data=None, verbose=0):
    """Run (or continue) the search; returns the tuner. Workers return when the chief says so."""
    data = data or load_data(config)
    hypermodel = UniMixerHyperModel(
        data.features,
        tasks=config.tasks,
        space=config.space,
        embedding_dim=config.embedding_dim,
        hidden_units=config.hidden_units,
    )
    tuner = make_tuner(config, hypermodel, output)
    tasks = list(config.tasks)
    # Each epoch has its own order (as in `train`); every trial restarts it at its first epoch.
    train = data.batches("train", config.batch_size, labels=tasks, shuffle=True, seed=config.seed)
    # Exact validation AUC (not Keras' 200-threshold estimate) as the objective, as in `train`.
    validation = validation_callback(data, tasks)
    stop = keras.callbacks.EarlyStopping(
        monitor=monitor_name(tasks), mode="max", patience=config.patience
    )
    search_options = dict(
        callbacks=[validation, stop],
        shuffle=False,  # the batches order each epoch themselves
        verbose=verbose,
    )
    if config.tuner != "hyperband":
        search_options["epochs"] = config.epochs
    tuner.search(train, **search_options)
    return tuner


def is_worker() -> bool:
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID")
    return bool(tuner_id) and tuner_id != "chief"


def read_run_log(project_dir) -> list[dict]:
    path = Path(project_dir) / RUN_LOG
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def results_table(tuner, hypermodel=None) -> list[dict]:
    """One row per trial: id, status, objective, hyperparameters, parameters, FLOPs, seconds."""
    runs = {}
    for record in read_run_log(tuner.project_dir):
        runs[record["trial_id"]] = record
    hypermodel = hypermodel or tuner.hypermodel
    rows = []
    for trial in sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id)):
        row = {"trial": trial.trial_id, "status": trial.status}
        row[tuner.oracle.objective.name] = None if trial.score is None else round(trial.score, 5)
        row.update(trial.hyperparameters.values)
        model = hypermodel.build(trial.hyperparameters)
        counts = parameter_counts(model)
        row["dense_params"] = counts["dense"]
        row["embedding_params"] = counts["embedding"]
        row["flops_per_example"] = flops_per_example(model)
        row["seconds"] = runs.get(trial.trial_id, {}).get("seconds")
        row["tuner_id"] = runs.get(trial.trial_id, {}).get("tuner_id")
        rows.append(row)
        keras.utils.clear_session()
    return rows


def _columns(rows) -> list[str]:
    """Every key of `rows`, in first-seen order (trials of different mixers have other hps)."""
    return list(dict.fromkeys(key for row in rows for key in row))


def write_results(rows, path) -> Path:
    columns = _columns(rows)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def format_table(rows) -> str:
    if not rows:
        return "(no trials)"
    columns = _columns(rows)
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def best_train_config(config: TuneConfig, best_hp, output) -> object:
    """The `TrainConfig` that retrains the best trial's model on the same data and budget."""
    from keras_unimixer.experiments.training import TrainConfig

    values = best_hp.values
    mixer = values["mixer"]
    return TrainConfig(
        dataset=config.dataset,
        data_dir=config.data_dir,
        model=mixer,
        tasks=tuple(config.tasks),
        num_layers=values["num_layers"],
        num_tokens=values["num_tokens"],
        token_dim=values["token_dim"],
        embedding_dim=config.embedding_dim,
        block_size=values.get("block_size"),
        num_heads=values.get("num_heads"),
        num_basis=values.get("num_basis", TrainConfig.num_basis),
        rank=values.get("rank", TrainConfig.rank),
        ffn_multiplier=values["ffn_multiplier"],
        norm=values.get("norm"),
        hidden_units=tuple(config.hidden_units),
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=values["learning_rate"],
        patience=config.patience,
        temperature_end=values.get("temperature_end", TrainConfig.temperature_end),
        temperature_schedule="anneal" if values.get("temperature_end") is not None else "constant",
        seed=config.seed,
        output=str(output),
        verbose=0,
    )


def tune(
    config: TuneConfig,
    output,
    export_to=None,
    retrain: bool = True,
    mixed_precision: bool = False,
    verbose: int = 0,
) -> dict:
    """Search, write `results.csv`, retrain the best configuration, optionally export it.

    Args:
        config: the search.
        output: directory for Keras Tuner's state (`<output>/<name>/`), the results and `best/`.
        export_to: a SavedModel base directory (e.g. `saved_models/x`) for the retrained model.
        retrain: retrain the best configuration with `train` (model.keras, preprocessing.json).
        mixed_precision: use the `mixed_bfloat16` policy (for GPUs with bf16 units).
        verbose: Keras verbosity of the trials.
    """
    if mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
    output = Path(output)
    data = load_data(config)
    start = time.perf_counter()
    tuner = run_search(config, output, data=data, verbose=verbose)
    search_seconds = time.perf_counter() - start
    summary = {"search_seconds": round(search_seconds, 1), "devices": _devices()}
    if is_worker():
        return summary
    rows = results_table(tuner)
    project = Path(tuner.project_dir)
    summary["results"] = str(write_results(rows, project / RESULTS_FILE))
    print(format_table(rows))
    best_hp = tuner.get_best_hyperparameters(1)[0]
    summary["best_hyperparameters"] = best_hp.values
    summary["best_trial_score"] = tuner.oracle.get_best_trials(1)[0].score
    if retrain or export_to:
        from keras_unimixer.experiments.training import train

        train_config = best_train_config(config, best_hp, project / "best")
        metrics = train(train_config, data=data)
        summary["best_model"] = str(project / "best" / "model.keras")
        summary["best_test"] = metrics["test"]
        if export_to:
            from keras_unimixer import export

            spec = export.read_serving_spec(project / "best")
            summary["exported"] = str(
                export.export_savedmodel(project / "best" / "model.keras", spec, export_to)
            )
    (project / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def _devices() -> list[str]:
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return [str(device) for device in jax.devices()]
    import tensorflow as tf

    return [device.name for device in tf.config.list_logical_devices()]
