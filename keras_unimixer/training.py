"""The training harness behind `python -m keras_unimixer train`.

One function, `train(TrainConfig)`, for every model and dataset: same data pipeline, same early
stopping on validation AUC, TensorBoard logs, a per-epoch checkpoint that `resume=True` continues
from (same final metrics as an uninterrupted run), a metrics JSON and the trained `.keras` model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path

import keras
import numpy as np

from keras_unimixer import datasets, models
from keras_unimixer.callbacks import TemperatureAnnealing, temperature_variables
from keras_unimixer.export.preprocessing import write_serving_spec
from keras_unimixer.scaling import flops_per_example, parameter_counts

logger = logging.getLogger("keras_unimixer.training")

CHECKPOINT_DIR = "checkpoint"


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a run (written to `config.json` in the output directory)."""

    dataset: str = "synthetic"
    model: str = "unimixer_lite"
    data_dir: str | None = None
    split: str = "random"
    tasks: tuple = ("click",)
    num_layers: int = 2
    num_tokens: int = 8
    token_dim: int = 32
    embedding_dim: int = 16
    block_size: int | None = None
    num_heads: int | None = None
    num_basis: int = 4
    rank: int = 4
    ffn_multiplier: int = 2
    norm: str | None = None
    tokenizer_mode: str = "rankmixer"
    hidden_units: tuple = (64,)
    epochs: int = 5
    batch_size: int = 512
    learning_rate: float = 1e-3
    patience: int = 2
    temperature_start: float = 1.0
    temperature_end: float = 0.05
    anneal_temperature: bool = True
    seed: int = 42
    output: str = "runs/default"
    resume: bool = False
    verbose: int | str = "auto"
    max_examples: int | None = None
    mixing_options: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        config = dataclasses.asdict(self)
        config["tasks"] = list(self.tasks)
        config["hidden_units"] = list(self.hidden_units)
        return config


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """`EarlyStopping` whose counters can be restored when a run resumes."""

    def __init__(self, initial_state: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.initial_state = initial_state

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.initial_state:
            self.wait = self.initial_state["wait"]
            self.best = self.initial_state["best"]
            self.best_epoch = self.initial_state["best_epoch"]

    def state(self) -> dict:
        best = None if self.best is None else float(self.best)
        return {"wait": int(self.wait), "best": best, "best_epoch": int(self.best_epoch)}


class RunCheckpoint(keras.callbacks.Callback):
    """At each epoch end: save the model with its optimizer, the best weights and the run state."""

    def __init__(self, directory: Path, early_stopping: ResumableEarlyStopping, history=None):
        super().__init__()
        self.directory = Path(directory)
        self.early_stopping = early_stopping
        self.history = history or {}
        self.epoch_seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.perf_counter() - self._epoch_start)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.early_stopping.best_epoch == epoch:
            self.model.save_weights(self.directory / "best.weights.h5")
        self.model.save(self.directory / "model.keras")
        state = {
            "completed_epochs": epoch + 1,
            "early_stopping": self.early_stopping.state(),
            "history": self.history,
        }
        temporary = self.directory / "state.json.tmp"
        temporary.write_text(json.dumps(state, indent=1))
        os.replace(temporary, self.directory / "state.json")


def load_data(config: TrainConfig):
    kwargs = {}
    if config.dataset == "synthetic" and config.max_examples:
        kwargs["num_examples"] = config.max_examples
    if config.dataset == "criteo" and config.max_examples:
        kwargs["max_rows"] = config.max_examples
    return datasets.load_dataset(
        config.dataset, data_dir=config.data_dir, seed=config.seed, split=config.split, **kwargs
    )


def build(config: TrainConfig, features):
    keras.utils.set_random_seed(config.seed)
    model = models.build_model(
        config.model,
        features,
        tasks=list(config.tasks),
        num_layers=config.num_layers,
        num_tokens=config.num_tokens,
        token_dim=config.token_dim,
        embedding_dim=config.embedding_dim,
        block_size=config.block_size,
        num_heads=config.num_heads,
        num_basis=config.num_basis,
        rank=config.rank,
        ffn_multiplier=config.ffn_multiplier,
        norm=config.norm,
        tokenizer_mode=config.tokenizer_mode,
        hidden_units=tuple(config.hidden_units),
        mixing_options=dict(config.mixing_options),
    )
    models.compile_ranking(model, list(config.tasks), config.learning_rate)
    return model


def monitor_name(tasks) -> str:
    """The validation AUC that early stopping (and tuning) watches: the first task's."""
    return "val_auc" if len(tasks) == 1 else f"val_{tasks[0]}_auc"


def _check_config(config: TrainConfig, data) -> None:
    for task in config.tasks:
        if task not in data.label_names:
            raise ValueError(
                f"`tasks` names label {task!r}, which {data.name} does not have; "
                f"labels: {data.label_names}."
            )
    for name in ("epochs", "batch_size", "patience"):
        value = getattr(config, name)
        if not isinstance(value, int) or value < (0 if name == "patience" else 1):
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    if not config.learning_rate > 0:
        raise ValueError(f"`learning_rate` must be > 0, got {config.learning_rate!r}.")


def train(config: TrainConfig, data=None) -> dict:
    """Train, evaluate on the test split, and write the run's artefacts to `config.output`.

    Writes `config.json`, `preprocessing.json` (what `export` needs to serve raw features),
    `checkpoint/` (resumable state), `logs/` (TensorBoard), `model.keras` (best validation epoch)
    and `metrics.json`; returns the metrics.
    """
    output = Path(config.output)
    checkpoint_dir = output / CHECKPOINT_DIR
    data = data or load_data(config)
    _check_config(config, data)
    tasks = list(config.tasks)
    monitor = monitor_name(tasks)

    state = None
    if config.resume and (checkpoint_dir / "state.json").is_file():
        state = json.loads((checkpoint_dir / "state.json").read_text())
        saved = json.loads((output / "config.json").read_text())
        differing = {
            k: (saved.get(k), v)
            for k, v in config.to_dict().items()
            if k not in ("resume", "verbose") and saved.get(k) != v
        }
        if differing:
            raise ValueError(
                f"--resume with different settings than the checkpointed run: {differing}."
            )
        model = keras.saving.load_model(checkpoint_dir / "model.keras")
        logger.info("Resuming after epoch %d from %s", state["completed_epochs"], checkpoint_dir)
    else:
        if config.resume:
            logger.info("No checkpoint in %s: starting from scratch.", checkpoint_dir)
        model = build(config, data.features)
    start_epoch = state["completed_epochs"] if state else 0
    output.mkdir(parents=True, exist_ok=True)
    (output / "config.json").write_text(json.dumps(config.to_dict(), indent=1))
    write_serving_spec(data, output)

    steps_per_epoch = data.steps_per_epoch("train", config.batch_size)
    train_data = data.tf_dataset(
        "train",
        config.batch_size,
        labels=tasks,
        shuffle=True,
        seed=config.seed,
        epochs=config.epochs,
        start_epoch=start_epoch,
    )
    validation_data = data.tf_dataset("validation", 4096, labels=tasks)
    early_stopping = ResumableEarlyStopping(
        initial_state=state["early_stopping"] if state else None,
        monitor=monitor,
        mode="max",
        patience=config.patience,
    )
    checkpoint = RunCheckpoint(checkpoint_dir, early_stopping, state["history"] if state else None)
    callbacks = [
        early_stopping,
        checkpoint,
        keras.callbacks.TensorBoard(log_dir=str(output / "logs")),
    ]
    if config.anneal_temperature and temperature_variables(model):
        callbacks.insert(
            0, TemperatureAnnealing(start=config.temperature_start, end=config.temperature_end)
        )

    fit_start = time.perf_counter()
    if start_epoch < config.epochs and not _stopped_early(state, config):
        model.fit(
            train_data,
            validation_data=validation_data,
            epochs=config.epochs,
            initial_epoch=start_epoch,
            steps_per_epoch=steps_per_epoch,
            shuffle=False,  # the dataset orders each epoch itself, by (seed, epoch)
            callbacks=callbacks,
            verbose=config.verbose,
        )
    fit_seconds = time.perf_counter() - fit_start

    model.load_weights(checkpoint_dir / "best.weights.h5")
    model.save(output / "model.keras")
    test_metrics = model.evaluate(
        data.tf_dataset("test", 4096, labels=tasks), verbose=0, return_dict=True
    )
    metrics = {
        "dataset": data.name,
        "model": config.model,
        "backend": keras.backend.backend(),
        "seed": config.seed,
        "test": {key: float(value) for key, value in test_metrics.items()},
        "best_epoch": int(early_stopping.best_epoch) + 1,
        "best_validation": float(early_stopping.best),
        "epochs_run": len(checkpoint.history.get("loss", [])),
        "parameters": parameter_counts(model),
        "flops_per_example": flops_per_example(model),
        "train_examples_per_second": _examples_per_second(
            checkpoint.epoch_seconds, data.num_examples("train")
        ),
        "fit_seconds": fit_seconds,
        "history": checkpoint.history,
        "data_report": {k: v for k, v in data.report.items() if v},
    }
    (output / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def _stopped_early(state, config) -> bool:
    return bool(state) and state["early_stopping"]["wait"] >= config.patience


def _examples_per_second(epoch_seconds, num_examples) -> float | None:
    """Steady-state throughput: the median epoch after the first (which includes compilation).

    Epoch time includes the validation pass, so this slightly understates pure training speed.
    """
    if not epoch_seconds:
        return None
    steady = epoch_seconds[1:] or epoch_seconds
    return float(num_examples / float(np.median(steady)))


__all__ = ["ResumableEarlyStopping", "RunCheckpoint", "TrainConfig", "build", "train"]
