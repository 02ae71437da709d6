"""The training harness behind `python -m keras_unimixer train`.

One function, `train(TrainConfig)`, for every model and dataset: same data pipeline, same early
stopping on validation AUC, TensorBoard logs, a per-epoch checkpoint that `resume=True` continues
from (same final metrics as an uninterrupted run), a metrics JSON and the trained `.keras` model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np

from keras_unimixer import datasets, models
from keras_unimixer.callbacks import (
    EpochLine,
    ExactValidationMetrics,
    MixingStatistics,
    TemperatureAnnealing,
    ValidationCurve,
    mark_temperature_scheduled,
    predict_logits,
    temperature_variables,
)
from keras_unimixer.datasets import Dataset, check_dataset
from keras_unimixer.datasets.serving_spec import (
    PREPROCESSING_FILE,
    encoding_differences,
    write_serving_spec,
)
from keras_unimixer.evaluation import task_metrics
from keras_unimixer.experiments import artifacts
from keras_unimixer.experiments.protocols import model_protocol
from keras_unimixer.layers.mixing import mixer_names, mixing_layers
from keras_unimixer.models.config import ModelConfig
from keras_unimixer.optimizers import ROW_SPARSE_TABLE_OPTIMIZERS, make_optimizer
from keras_unimixer.saving import load_model
from keras_unimixer.table_optimizer import enable_row_sparse_steps
from keras_unimixer.utils.accounting import flops_per_example, parameter_counts
from keras_unimixer.utils.allocator import allocator_setting

logger = logging.getLogger("keras_unimixer.experiments.training")

CHECKPOINT_DIR = "checkpoint"


@dataclasses.dataclass
class TrainConfig(ModelConfig):
    """Everything that defines a run (written to `config.json` in the output directory): the
    model's options (`keras_unimixer.models.ModelConfig`, inherited) and the data and training
    options."""

    dataset: str = "synthetic"
    data_dir: str | None = None
    split: str = "random"
    tasks: tuple = ("click",)
    epochs: int = 5
    batch_size: int = 512
    learning_rate: float = 1e-3
    # Embedding tables trained by their own optimizer (e.g. "adagrad", as in RankMixer), at
    # `embedding_learning_rate` (default: `learning_rate`); None: Adam for every variable.
    embedding_optimizer: str | None = None
    embedding_learning_rate: float | None = None
    # Decoupled weight decay (AdamW) of the dense variables, and of the tables (None: the same);
    # global gradient-norm clipping (None: off).
    weight_decay: float = 0.0
    embedding_weight_decay: float | None = None
    gradient_clip_norm: float | None = None
    patience: int = 2
    reduce_lr_on_plateau: bool = False
    temperature_start: float = 1.0
    temperature_end: float = 0.05
    temperature_schedule: str = "anneal"
    # Annealing horizon in epochs (capped at the budget; None: the whole budget). Early stopping
    # waits for its end, so a horizon as long as the budget disables early stopping: on MovieLens
    # 100K (seed 1, validation AUC) 2 epochs gave 0.7746, 4 gave 0.7698, the whole 10 gave 0.7531.
    anneal_epochs: float | None = 2.0
    seed: int = 42
    mixed_precision: bool = False
    # Exact validation metrics every this many training examples too (a learning curve inside an
    # epoch, e.g. for one pass over a stream; `history["curve_*"]` in metrics.json). None: off.
    eval_every_examples: int | None = None
    negatives: int = 0
    negative_sampling: str = "uniform"
    overwrite: bool = False
    output: str = "runs/default"
    resume: bool = False
    verbose: int | str = "auto"
    max_examples: int | None = None

    def to_dict(self) -> dict:
        config = dataclasses.asdict(self)
        config["tasks"] = list(self.tasks)
        config["hidden_units"] = list(self.hidden_units)
        return config

    @classmethod
    def from_protocol(cls, **values) -> TrainConfig:
        """A config with the dataset's benchmark protocol for the model
        (`keras_unimixer.experiments.protocols`) under `values`: what `train --dataset frappe_x1
        --model M` runs when nothing else is set."""
        dataset = values.get("dataset", cls.dataset)
        model = values.get("model", cls.model)
        return cls(**{**model_protocol(dataset, model), **values})

    def stages(self) -> list[float | None]:
        """The temperature each training stage holds fixed (`None`: annealed or constant).

        `"warmup"` is the paper's two-stage model warm-up: train at `temperature_start` until early
        stopping, then again at `temperature_end` from the best weights, with a fresh optimizer.
        """
        if self.temperature_schedule == "warmup":
            return [self.temperature_start, self.temperature_end]
        return [None]


TEMPERATURE_SCHEDULES = ("anneal", "warmup", "constant")


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


class ResumableReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """`ReduceLROnPlateau` that restores its counters on resume and starts watching at
    `start_from_epoch` (so that it does not act while the temperature is still annealed)."""

    def __init__(self, initial_state: dict | None = None, start_from_epoch: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.initial_state = initial_state
        self.start_from_epoch = start_from_epoch

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.initial_state:
            self.wait = self.initial_state["wait"]
            self.best = self.initial_state["best"]
            self.cooldown_counter = self.initial_state["cooldown_counter"]

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.start_from_epoch:
            super().on_epoch_end(epoch, logs)

    def state(self) -> dict:
        return {
            "wait": int(self.wait),
            "best": None if self.best is None else float(self.best),
            "cooldown_counter": int(self.cooldown_counter),
        }


class RunCheckpoint(keras.callbacks.Callback):
    """At each epoch end: one whole checkpoint folder (`keras_unimixer.experiments.artifacts`) with
    the model and its optimizer, the run state and, when the epoch is the best so far, the best
    weights; older folders are pruned to the latest one and the best one."""

    def __init__(
        self,
        directory: Path,
        early_stopping: ResumableEarlyStopping,
        history=None,
        stage: int = 0,
        lr_schedule: ResumableReduceLROnPlateau | None = None,
        best_checkpoint: str | None = None,
        run_id: str = "",
    ):
        super().__init__()
        self.directory = Path(directory)
        self.early_stopping = early_stopping
        self.history = history or {}
        self.stage = stage
        self.lr_schedule = lr_schedule
        self.best_checkpoint = best_checkpoint
        self.run_id = run_id
        self.epoch_seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.perf_counter() - self._epoch_start)
        logs = dict(logs or {})
        logs["stage"] = self.stage
        logs["learning_rate"] = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        sequence = len(self.history["stage"])
        is_best = self.early_stopping.best_epoch == epoch
        if is_best:
            self.best_checkpoint = artifacts.checkpoint_name(sequence)
        state = {
            "run_id": self.run_id,
            "stage": self.stage,
            "completed_epochs": epoch + 1,
            "early_stopping": self.early_stopping.state(),
            "lr_schedule": self.lr_schedule.state() if self.lr_schedule else None,
            "best_checkpoint": self.best_checkpoint,
            "history": self.history,
        }
        written = artifacts.write_checkpoint(self.directory, sequence, self.model, state, is_best)
        artifacts.prune_checkpoints(self.directory, keep={written.name, self.best_checkpoint})


def load_data(config: TrainConfig) -> Dataset:
    kwargs = {}
    if config.dataset == "synthetic" and config.max_examples:
        kwargs["num_examples"] = config.max_examples
    if config.dataset == "criteo" and config.max_examples:
        kwargs["max_rows"] = config.max_examples
    if config.dataset.partition(":")[0] == "synthetic_stream" and config.max_examples:
        kwargs["train_rows"] = config.max_examples
    data = datasets.load_dataset(
        config.dataset, data_dir=config.data_dir, seed=config.seed, split=config.split, **kwargs
    )
    if config.negatives:
        # Implicit feedback: the first task's positives, plus sampled negatives per positive.
        data = datasets.sample_negatives(
            data,
            config.negatives,
            config.negative_sampling,
            label=config.tasks[0],
            seed=config.seed,
        )
    return data


def build(config: TrainConfig, features, kinds=None):
    """The compiled model of a run; under `mixed_precision`, its layers are built with the
    `mixed_bfloat16` policy (float32 weights, bfloat16 compute, float32 UniMixing constraints)."""
    keras.utils.set_random_seed(config.seed)
    with _dtype_policy(config):
        model = models.build_model(
            config.model, features, tasks=list(config.tasks), **_model_options(config)
        )
    models.compile_ranking(model, list(config.tasks), optimizer=_optimizer(config), kinds=kinds)
    return model


def _row_sparse_l2(config: TrainConfig) -> bool:
    """Whether the run's `embedding_l2` takes its row-sparse meaning: with a row-sparse table
    optimizer, the L2 acts on the rows each step looks up, in the optimizer, instead of on whole
    tables in the loss (whose gradient would touch every row, every step)."""
    return config.embedding_optimizer in ROW_SPARSE_TABLE_OPTIMIZERS and bool(config.embedding_l2)


def _model_options(config: TrainConfig) -> dict:
    options = config.model_options()
    if _row_sparse_l2(config):
        options["embedding_l2"] = 0.0  # applied to the looked-up rows by the table optimizer
    return options


def _optimizer(config: TrainConfig):
    """The run's optimizer (`keras_unimixer.optimizers.make_optimizer`)."""
    return make_optimizer(
        config.learning_rate,
        config.embedding_optimizer,
        config.embedding_learning_rate,
        weight_decay=config.weight_decay,
        table_weight_decay=config.embedding_weight_decay,
        clip_norm=config.gradient_clip_norm,
        table_l2=config.embedding_l2 if _row_sparse_l2(config) else 0.0,
    )


@contextlib.contextmanager
def _dtype_policy(config: TrainConfig):
    """The run's global dtype policy while its model is built or reloaded (restored after)."""
    previous = keras.config.dtype_policy()
    if config.mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def monitor_name(tasks, kinds=None) -> str:
    """What early stopping (and tuning) watches: the first task's validation AUC (its RMSE for
    a rating)."""
    metric = "rmse" if (kinds or {}).get(tasks[0]) == "rating" else "auc"
    return f"val_{metric}" if len(tasks) == 1 else f"val_{tasks[0]}_{metric}"


def monitor_mode(tasks, kinds=None) -> str:
    return "min" if (kinds or {}).get(tasks[0]) == "rating" else "max"


def _task_kinds(data: Dataset, tasks) -> dict:
    return {task: data.label_kind(task) for task in tasks}


def _check_config(config: TrainConfig, data: Dataset) -> None:
    for task in config.tasks:
        if task not in data.label_names:
            raise ValueError(
                f"`tasks` names label {task!r}, which {data.name} does not have; "
                f"labels: {data.label_names}."
            )
    data.check_labels(config.tasks)
    if config.eval_every_examples is not None and config.eval_every_examples < config.batch_size:
        raise ValueError(
            f"`eval_every_examples` must be at least `batch_size` ({config.batch_size}), got "
            f"{config.eval_every_examples}."
        )
    check_fits_in_memory(config, data.features)


def estimated_training_bytes(config: TrainConfig, features) -> int:
    """A rough upper estimate of training memory: weights with gradients and Adam's two moments
    (16 bytes a parameter) plus the activations a batch keeps for the backward pass."""
    embedding_dim = config.embedding_dim
    tables = sum(f.vocabulary_size for f in features if f.kind != "numeric") * embedding_dim
    if config.model not in mixer_names():
        width = len(features) * embedding_dim
        units = [width, *config.hidden_units]
        dense = sum(a * b for a, b in zip(units, units[1:], strict=False)) + 4 * width * width
        activations = config.batch_size * sum(units) * 4 * 4
        return 16 * (tables + dense) + activations
    tokens = {"field": len(features), "group": len({f.group for f in features})}.get(
        config.tokenizer_mode, config.num_tokens
    )
    flat = tokens * config.token_dim
    ffn = 3 * tokens * config.token_dim * config.ffn_multiplier * config.token_dim
    mixing = flat * (flat // max(config.block_size or 1, 1)) if config.model == "unimixer" else 0
    pooled = flat if config.pooling == "flatten" else config.token_dim
    units = [pooled, *config.hidden_units]
    head = sum(a * b for a, b in zip(units, units[1:], strict=False))
    dense = config.num_layers * (ffn + min(mixing, flat * flat)) + head + flat * embedding_dim
    per_example = config.num_layers * flat * (3 * config.ffn_multiplier + 8) + sum(units)
    return 16 * (tables + dense) + 4 * config.batch_size * per_example


def check_fits_in_memory(config: TrainConfig, features, fraction: float = 0.8) -> None:
    """Refuse, before building anything, a model whose training needs more than `fraction` of the
    machine's memory (instead of allocating until the backend runs out of memory)."""
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    needed = estimated_training_bytes(config, features)
    if needed > fraction * available:
        raise ValueError(
            f"Model {config.model!r} with these sizes needs about {needed / 2**30:.1f} GiB to "
            f"train (weights, gradients, Adam moments and activations of a batch of "
            f"{config.batch_size}); this machine has {available / 2**30:.1f} GiB. Reduce "
            "--token-dim, --num-layers, --ffn-multiplier, --embedding-dim or --batch-size."
        )
    for name in ("epochs", "batch_size", "patience"):
        value = getattr(config, name)
        if not isinstance(value, int) or value < (0 if name == "patience" else 1):
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    if not config.learning_rate > 0:
        raise ValueError(f"`learning_rate` must be > 0, got {config.learning_rate!r}.")
    if config.embedding_learning_rate is not None and config.embedding_optimizer is None:
        raise ValueError("`embedding_learning_rate` needs `embedding_optimizer`.")
    _optimizer(config)  # refuses bad optimizer settings before any data is read
    if config.temperature_schedule not in TEMPERATURE_SCHEDULES:
        raise ValueError(
            f"`temperature_schedule` must be one of {TEMPERATURE_SCHEDULES}, "
            f"got {config.temperature_schedule!r}."
        )
    if config.anneal_epochs is not None and not config.anneal_epochs > 0:
        raise ValueError(f"`anneal_epochs` must be > 0, got {config.anneal_epochs!r}.")


def train(config: TrainConfig, data: Dataset | None = None) -> dict:
    """Train, evaluate on the test split, and write the run's artefacts to `config.output`.

    Writes `config.json`, `preprocessing.json` (what `export` needs to serve raw features),
    `checkpoint/` (resumable state), `logs/` (TensorBoard), `model.keras` (best validation epoch)
    and `metrics.json`; returns the metrics. Validation and test metrics are exact
    (`keras_unimixer.evaluation`): AUC and log loss, plus UAUC and GAUC where the data names a user
    feature; early stopping and the learning-rate schedule watch the exact validation AUC.

    One process at a time writes to `config.output` (`artifacts.run_lock`): a second `train` on
    the same folder is refused with `artifacts.RunLocked` naming the first one's process id.
    """
    with artifacts.run_lock(config.output):
        return _train(config, data)


def _train(config: TrainConfig, data: Dataset) -> dict:
    output = Path(config.output)
    checkpoint_dir = output / CHECKPOINT_DIR
    data = load_data(config) if data is None else check_dataset(data)
    _check_config(config, data)
    tasks = list(config.tasks)

    found = artifacts.latest_checkpoint(checkpoint_dir) if config.resume else None
    if found is None:
        _make_room_for_a_new_run(output, config)
    state = None
    if found is not None:
        checkpoint_path, state = found
        _check_same_settings(config, json.loads((output / "config.json").read_text()))
        _check_same_encoding(output, data)
        with _dtype_policy(config):
            model = load_model(checkpoint_path / "model.keras")
        logger.info(
            "Resuming from %s (stage %d, %d epochs done).",
            checkpoint_path,
            state.get("stage", 0),
            state["completed_epochs"],
        )
    else:
        if config.resume:
            logger.info("No complete checkpoint in %s: starting from scratch.", checkpoint_dir)
        model = build(config, data.features, _task_kinds(data, tasks))
    run_id = state["run_id"] if state else artifacts.new_run_id()
    output.mkdir(parents=True, exist_ok=True)
    artifacts.atomic_write_json(output / "config.json", config.to_dict())
    write_serving_spec(data, output)

    validation = validation_callback(data, tasks)
    history = state["history"] if state else {}
    epoch_seconds: list[float] = []
    fit_start = time.perf_counter()
    first_stage = state.get("stage", 0) if state else 0
    for stage, stage_temperature in enumerate(config.stages()):
        if stage < first_stage:
            continue
        resumed = state if stage == first_stage else None
        if resumed is None:
            if stage > 0:
                _start_next_stage(
                    model, config, checkpoint_dir, stage_temperature, _task_kinds(data, tasks)
                )
            elif stage_temperature is not None:
                _set_temperature(model, stage_temperature)
        elif _stage_finished(resumed, config):
            continue
        checkpoint = _fit_stage(
            model, config, data, tasks, validation, checkpoint_dir, stage, resumed, history, run_id
        )
        history = checkpoint.history
        epoch_seconds += checkpoint.epoch_seconds
    fit_seconds = time.perf_counter() - fit_start
    _, final_state = artifacts.latest_checkpoint(checkpoint_dir)

    model.load_weights(_best_weights(checkpoint_dir, final_state))
    artifacts.atomic_save(output / "model.keras", model.save)
    metrics = {
        "dataset": data.name,
        "model": config.model,
        "backend": keras.backend.backend(),
        "allocator": allocator_setting(),
        "seed": config.seed,
        "test": exact_metrics(model, data, "test", tasks),
        "validation": exact_metrics(model, data, "validation", tasks),
        "best_epoch": int(final_state["early_stopping"]["best_epoch"]) + 1,
        "best_validation": float(final_state["early_stopping"]["best"]),
        "monitor": monitor_name(tasks, _task_kinds(data, tasks)),
        "epochs_run": len(history.get("loss", [])),
        "parameters": parameter_counts(model),
        "flops_per_example": flops_per_example(model),
        "train_examples_per_second": _examples_per_second(
            epoch_seconds, data.num_examples("train")
        ),
        "fit_seconds": fit_seconds,
        "history": history,
        "data_report": {k: v for k, v in data.report.items() if v},
        "run_id": run_id,
    }
    artifacts.atomic_write_json(output / "metrics.json", metrics)
    artifacts.write_manifest(output, run_id)
    return metrics


FINISHED_RUN_FILES = ("model.keras", "metrics.json", artifacts.MANIFEST_FILE, CHECKPOINT_DIR)
RUN_FILES = FINISHED_RUN_FILES + ("config.json", "preprocessing.json", "logs")


def _make_room_for_a_new_run(output: Path, config: TrainConfig) -> None:
    """Refuse an output folder that holds a run, unless `overwrite` (then clear its files)."""
    present = [name for name in FINISHED_RUN_FILES if (output / name).exists()]
    if not present:
        return
    if not config.overwrite:
        raise RunExists(
            f"--output {output} already holds a run ({', '.join(present)}). Pass --resume to "
            "continue it, --overwrite to replace it, or choose another --output."
        )
    for name in RUN_FILES:
        path = output / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


class RunExists(ValueError):
    """`train` was pointed at an output folder that holds a run."""


def _comparable(values: dict) -> dict:
    ignored = ("resume", "verbose", "overwrite")
    # Through JSON, as config.json stores them: a tuple and the list it was saved as compare equal.
    values = json.loads(json.dumps({k: v for k, v in values.items() if k not in ignored}))
    if values.get("output") is not None:
        values["output"] = str(Path(values["output"]).resolve())
    return values


def _check_same_settings(config: TrainConfig, saved: dict) -> None:
    # A setting that a run saved by an earlier version did not have yet had its default.
    defaults = _comparable(TrainConfig().to_dict())
    current, saved = _comparable(config.to_dict()), {**defaults, **_comparable(saved)}
    differing = {k: (saved.get(k), v) for k, v in current.items() if saved.get(k) != v}
    if differing:
        raise ValueError(
            f"--resume with different settings than the checkpointed run (saved, now): {differing}."
        )


def _check_same_encoding(output: Path, data: Dataset) -> None:
    """Refuse to resume on data whose ids mean other values than the checkpointed run's."""
    path = output / PREPROCESSING_FILE
    if not path.is_file():
        return
    differing = encoding_differences(json.loads(path.read_text()), data)
    if differing:
        raise ValueError(
            f"--resume: the data now encodes {differing} otherwise than the checkpointed run did "
            f"(its {path}), so the model's ids would mean other values. Resume on the data the "
            "run was trained on, or start again with --overwrite."
        )


def _best_weights(checkpoint_dir: Path, state: dict) -> Path:
    return checkpoint_dir / state["best_checkpoint"] / "best.weights.h5"


def validation_callback(data: Dataset, tasks) -> ExactValidationMetrics:
    features, labels = data.arrays("validation", tasks)
    users = features[data.user_feature] if data.user_feature else None
    return ExactValidationMetrics(features, labels, users=users, kinds=_task_kinds(data, tasks))


def exact_metrics(model, data: Dataset, split: str, tasks) -> dict:
    """Exact AUC and log loss (and UAUC, GAUC) of every task on `split`; several tasks are keyed
    `<task>_<metric>`."""
    features, labels = data.arrays(split, tasks)
    users = features[data.user_feature] if data.user_feature else None
    logits = predict_logits(model, features, tasks)
    results = {}
    for task in tasks:
        kind = data.label_kind(task)
        for name, value in task_metrics(kind, labels[task], logits[task], users).items():
            results[name if len(tasks) == 1 else f"{task}_{name}"] = value
    return results


def _anneal_epochs(config: TrainConfig) -> float:
    if config.anneal_epochs is None:
        return float(config.epochs)
    return min(config.anneal_epochs, float(config.epochs))


def _watch_from_epoch(config: TrainConfig, model) -> int:
    """First epoch whose end early stopping and the LR schedule look at: the end of annealing."""
    if config.temperature_schedule != "anneal" or not temperature_variables(model):
        return 0
    return max(0, min(math.ceil(_anneal_epochs(config)), config.epochs) - 1)


def _fit_stage(
    model, config, data, tasks, validation, checkpoint_dir, stage, state, history, run_id
):
    """One `fit` call: a whole run, or one stage of a warm-up run; returns its callbacks."""
    start_epoch = state["completed_epochs"] if state else 0
    steps_per_epoch = data.steps_per_epoch("train", config.batch_size)
    # Epoch e of stage s is shuffled by (seed, s * epochs + e), so stages see fresh orders.
    offset = stage * config.epochs
    train_data = data.batches(
        "train",
        config.batch_size,
        labels=tasks,
        shuffle=True,
        seed=config.seed,
        start_epoch=offset + start_epoch,
    )
    watch_from = _watch_from_epoch(config, model)
    kinds = _task_kinds(data, tasks)
    monitor, mode = monitor_name(tasks, kinds), monitor_mode(tasks, kinds)
    early_stopping = ResumableEarlyStopping(
        initial_state=state["early_stopping"] if state else None,
        monitor=monitor,
        mode=mode,
        patience=config.patience,
        start_from_epoch=watch_from,
    )
    lr_schedule = None
    if config.reduce_lr_on_plateau:
        lr_schedule = ResumableReduceLROnPlateau(
            initial_state=state.get("lr_schedule") if state else None,
            start_from_epoch=watch_from,
            monitor=monitor,
            mode=mode,
            factor=0.1,
            patience=1,
            min_lr=1e-6,
            min_delta=1e-6,
        )
    checkpoint = RunCheckpoint(
        checkpoint_dir,
        early_stopping,
        history,
        stage,
        lr_schedule,
        best_checkpoint=state.get("best_checkpoint") if state else None,
        run_id=run_id,
    )
    callbacks = [validation, early_stopping]
    if mixing_layers(model):  # what the mixing matrices became, in every run's history
        callbacks.insert(0, MixingStatistics())
    if config.eval_every_examples:
        callbacks.insert(
            1,
            ValidationCurve(
                validation,
                every_steps=config.eval_every_examples // config.batch_size,
                batch_size=config.batch_size,
                history=checkpoint.history,
                steps_per_epoch=steps_per_epoch,
                first_step=offset * steps_per_epoch,
            ),
        )
    if lr_schedule is not None:
        callbacks.append(lr_schedule)
    callbacks += [checkpoint, *tensorboard_callbacks(Path(config.output) / "logs")]
    if config.temperature_schedule == "anneal" and temperature_variables(model):
        callbacks.insert(
            0,
            TemperatureAnnealing(
                start=config.temperature_start,
                end=config.temperature_end,
                total_steps=max(1, round(_anneal_epochs(config) * steps_per_epoch)),
            ),
        )
    mark_temperature_scheduled(model)  # annealed above, or held on purpose by the stage
    enable_row_sparse_steps(model)  # JAX: tables with a row-sparse optimizer get row gradients
    verbose = _fit_verbosity(config.verbose)
    if verbose == "one_line":
        callbacks.append(EpochLine(config.epochs))
        verbose = 0
    if start_epoch < config.epochs and not _stopped_early(state, config):
        model.fit(
            train_data,
            epochs=config.epochs,
            initial_epoch=start_epoch,
            shuffle=False,  # the batches order each epoch themselves, by (seed, epoch)
            callbacks=callbacks,
            verbose=verbose,
        )
    return checkpoint


def tensorboard_callbacks(log_dir: Path) -> list:
    """Keras' TensorBoard callback where TensorFlow can be imported (it writes through
    `tf.summary`); none elsewhere, e.g. on a JAX machine without TensorFlow."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        logger.info("TensorFlow is not installed: no TensorBoard logs (metrics.json has them).")
        return []
    return [keras.callbacks.TensorBoard(log_dir=str(log_dir))]


def _fit_verbosity(verbose):
    """`"auto"`: Keras' progress bar on a terminal, one plain line per epoch otherwise (logs)."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else "one_line"
    return verbose


def _stage_finished(state, config) -> bool:
    return state["completed_epochs"] >= config.epochs or _stopped_early(state, config)


def _set_temperature(model, value: float) -> None:
    for variable in temperature_variables(model):
        variable.assign(value)


def _start_next_stage(model, config, checkpoint_dir, temperature: float, kinds) -> None:
    """Warm-up stage 2: the best weights of stage 1, the final temperature, a fresh optimizer."""
    _, state = artifacts.latest_checkpoint(checkpoint_dir)
    model.load_weights(_best_weights(checkpoint_dir, state))
    _set_temperature(model, temperature)
    models.compile_ranking(model, list(config.tasks), optimizer=_optimizer(config), kinds=kinds)


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
