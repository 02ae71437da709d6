"""Training callbacks: UniMixing temperature schedules and exact validation metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence

import keras
import numpy as np

from keras_unimixer.evaluation import task_metrics
from keras_unimixer.layers.mixing import mixing_layers, mixing_statistics
from keras_unimixer.utils.types import ArrayLike
from keras_unimixer.utils.validation import check_positive_float, check_positive_int


def temperature_layers(model: keras.Model) -> list:
    """Every UniMixing / UniMixingLite layer inside `model` that has a temperature, built or not."""
    return [layer for layer in mixing_layers(model) if layer.temperature is not None]


def temperature_variables(model: keras.Model) -> list:
    """The `temperature` variables of every layer inside `model` that has one (UniMixing,
    UniMixingLite, or a layer of your own with a `temperature_variable`; only built layers
    have one)."""
    found = []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        variable = getattr(layer, "temperature_variable", None)
        if variable is not None and all(variable is not seen for seen in found):
            found.append(variable)
    return found


def mark_temperature_scheduled(model: keras.Model) -> None:
    """Tell `model`'s temperature layers that their temperature is set on purpose (by a schedule,
    or held constant), so that training them does not warn that nothing anneals it."""
    for layer in temperature_layers(model):
        layer.temperature_scheduled = True


@keras.saving.register_keras_serializable(package="keras_unimixer")
class TemperatureAnnealing(keras.callbacks.Callback):
    """Anneals the temperature of every UniMixing layer linearly over the training steps.

    At optimizer step `s` (counted from 0) the temperature is
    `start + (end - start) * min(s / (total_steps - 1), 1)`: the last step of the schedule runs
    at `end`, so a run that stops right after it has been trained at the final temperature. The
    step is read from the optimizer at the start of training, so a resumed run continues the
    schedule where it stopped. Works under the TensorFlow and JAX backends, for any model that
    contains such layers (functional, `Sequential` or subclassed; a model that `fit` builds only
    in its first step starts its layers' temperature at `start` and is annealed from then on).

    Args:
        start: temperature at step 0 (spec: 1.0).
        end: temperature reached at `total_steps` and kept after (spec: 0.05).
        total_steps: length of the schedule in optimizer steps. Default: `epochs * steps_per_epoch`
            of the `fit` call (which must then know its steps per epoch).

    Example:
    >>> callback = keras_unimixer.callbacks.TemperatureAnnealing(start=1.0, end=0.05)
    >>> model.fit(x, y, epochs=3, callbacks=[callback])  # doctest: +SKIP
    """

    def __init__(self, start: float = 1.0, end: float = 0.05, total_steps: int | None = None):
        super().__init__()
        self.start = check_positive_float("start", start)
        self.end = check_positive_float("end", end)
        self.total_steps = (
            None if total_steps is None else check_positive_int("total_steps", total_steps)
        )
        self.current_temperature = self.start

    def temperature_at(self, step: int) -> float:
        fraction = min(max(step, 0) / max(self._schedule_steps - 1, 1), 1.0)
        return self.start + (self.end - self.start) * fraction

    def on_train_begin(self, logs: dict | None = None) -> None:
        layers = temperature_layers(self.model)
        self._variables = temperature_variables(self.model)
        if not layers and not self._variables:
            raise ValueError(
                "TemperatureAnnealing found no layer with a temperature in the model; it anneals "
                "UniMixing / UniMixingLite layers built with temperature != None (and any layer "
                "with a `temperature_variable`)."
            )
        for layer in layers:
            layer.temperature_scheduled = True
            if getattr(layer, "temperature_variable", None) is None:
                layer.temperature = self.start  # not built yet: its variable will start here
        built = sum(getattr(layer, "temperature_variable", None) is not None for layer in layers)
        # Variables still to appear: those of the layers `fit` builds in its first step.
        self._num_layers = len(self._variables) + len(layers) - built
        steps_per_epoch = self.params.get("steps")
        epochs = self.params.get("epochs")
        if self.total_steps is not None:
            self._schedule_steps = self.total_steps
        elif steps_per_epoch and epochs:
            self._schedule_steps = int(steps_per_epoch) * int(epochs)
        else:
            raise ValueError(
                "TemperatureAnnealing needs `total_steps` when fit() does not know its steps per "
                "epoch (e.g. a dataset of unknown cardinality): pass total_steps=..."
            )
        optimizer = getattr(self.model, "optimizer", None)
        self._step = int(keras.ops.convert_to_numpy(optimizer.iterations)) if optimizer else 0

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if len(self._variables) < self._num_layers:
            self._variables = temperature_variables(self.model)  # built by the previous step
        self._assign(self.temperature_at(self._step))

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._step += 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["temperature"] = self.current_temperature

    def _assign(self, value: float):
        jax_trainer = keras.backend.backend() == "jax" and hasattr(self.model, "jax_state_sync")
        if jax_trainer:
            # The JAX trainer carries variables as state between steps; pull that state into the
            # variables, change them, then ask the trainer to read them back before the next step.
            self.model.jax_state_sync()
        for variable in self._variables:
            variable.assign(value)
        if jax_trainer:
            self.model._jax_state_synced = True
        self.current_temperature = value

    def get_config(self) -> dict:
        return {"start": self.start, "end": self.end, "total_steps": self.total_steps}


class MixingStatistics(keras.callbacks.Callback):
    """Adds what the model's UniMixing / UniMixing-Lite layers have become to each epoch's logs
    (so to `fit`'s history): `mixing_global_logit_std`, `mixing_local_logit_std`,
    `mixing_global_entropy`, `mixing_local_entropy` and `mixing_local_diagonal`, as
    `keras_unimixer.layers.mixing.mixing_statistics` defines them. A model without such layers
    logs nothing.

    Example:
    >>> from keras_unimixer import callbacks, datasets, models
    >>> data = datasets.make_synthetic(num_examples=300)
    >>> model = models.build_model("unimixer_lite", data.features, num_layers=1)
    >>> _ = models.compile_ranking(model, ["click"])
    >>> features, labels = data.arrays("train")
    >>> clicks = labels.get("click").reshape(-1, 1)
    >>> history = model.fit(features, clicks, epochs=1, verbose=0,
    ...                     callbacks=[callbacks.MixingStatistics(),
    ...                                callbacks.TemperatureAnnealing(1.0, 0.5)])
    >>> entropy = history.history.get("mixing_global_entropy")
    >>> 0.0 <= entropy.pop() <= 1.0
    True
    """

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        for key, value in mixing_statistics(self.model).items():
            logs[f"mixing_{key}"] = value


def predict_logits(
    model: keras.Model,
    features: dict[str, np.ndarray],
    tasks: Sequence[str],
    batch_size: int = 8192,
) -> dict:
    """Logits of every task, `{task: (N,) float64}`, from a model with one output per task."""
    outputs = model.predict(features, batch_size=batch_size, verbose=0)
    if not isinstance(outputs, dict):
        outputs = {tasks[0]: outputs}
    return {task: np.asarray(outputs[task], dtype="float64").reshape(-1) for task in tasks}


class ExactValidationMetrics(keras.callbacks.Callback):
    """Exact validation AUC and log loss (and UAUC / GAUC) at every epoch end, written to `logs`.

    Keras' `AUC` metric is a 200-threshold approximation; this callback predicts the whole
    validation split and computes the exact values (`keras_unimixer.evaluation`), under the names
    `val_auc`, `val_logloss`, `val_uauc`, `val_gauc` for one task and `val_<task>_auc`, ... for
    several. Put it first in the callback list, so that early stopping, learning-rate schedules,
    checkpoints and TensorBoard see the exact values. Use it instead of `fit(validation_data=...)`.

    A rating task (`kinds[task] == "rating"`) gets `val_rmse` and `val_mae` instead.

    Args:
        features: dict of validation feature arrays.
        labels: dict task -> `(N,)` label array (the tasks the model predicts, in order).
        users: optional `(N,)` user ids for UAUC / GAUC.
        batch_size: prediction batch size.
        kinds: optional dict task -> `"binary"` (default) or `"rating"`.
    """

    def __init__(
        self,
        features: dict,
        labels: dict,
        users: ArrayLike | None = None,
        batch_size: int = 8192,
        kinds: dict | None = None,
    ) -> None:
        super().__init__()
        self.features = features
        self.labels = labels
        self.users = users
        self.batch_size = batch_size
        self.kinds = dict(kinds or {})

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        logs.update(self.compute(self.model))

    def compute(self, model: keras.Model) -> dict:
        """The exact validation metrics of `model` now, keyed as in `logs`."""
        tasks = list(self.labels)
        logits = predict_logits(model, self.features, tasks, self.batch_size)
        values = {}
        for task in tasks:
            prefix = "val_" if len(tasks) == 1 else f"val_{task}_"
            kind = self.kinds.get(task, "binary")
            results = task_metrics(kind, self.labels[task], logits[task], self.users)
            values.update({prefix + name: value for name, value in results.items()})
        return values


class ValidationCurve(keras.callbacks.Callback):
    """Exact validation metrics every `every_steps` training batches: a learning curve inside an
    epoch, for runs of one pass over a stream (whose per-epoch history has a single point).

    Each point is appended to `history` (a dict of lists, e.g. a run checkpoint's, so that it is
    saved and resumed with the run): `curve_examples` (training examples seen, counted from
    `first_step`) and `curve_<metric>` for every metric of `validation.compute`. Under JAX the
    trainer's state is synced to the model's variables before each evaluation (otherwise a
    callback inside `fit` would read the weights of the epoch's start).

    Args:
        validation: the run's `ExactValidationMetrics` (its data and metrics).
        every_steps: evaluate after every this many batches.
        batch_size: examples per batch (to count examples seen).
        history: dict the points are appended to.
        steps_per_epoch: batches per epoch (to count across epochs).
        first_step: batches done before this `fit` (stages or runs before it).
    """

    def __init__(
        self,
        validation: ExactValidationMetrics,
        every_steps: int,
        batch_size: int,
        history: dict,
        steps_per_epoch: int,
        first_step: int = 0,
    ) -> None:
        super().__init__()
        if every_steps < 1:
            raise ValueError(f"`every_steps` must be >= 1, got {every_steps}.")
        self.validation, self.every_steps, self.batch_size = validation, every_steps, batch_size
        self.history, self.steps_per_epoch, self.first_step = history, steps_per_epoch, first_step
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        step = self.first_step + self._epoch * self.steps_per_epoch + batch + 1
        if step % self.every_steps:
            return
        if keras.backend.backend() == "jax":
            self.model.jax_state_sync()
        self.history.setdefault("curve_examples", []).append(step * self.batch_size)
        for name, value in self.validation.compute(self.model).items():
            self.history.setdefault(f"curve_{name}", []).append(float(value))


class EpochLine(keras.callbacks.Callback):
    """One plain line per epoch on standard output (`epoch 3/10 - 12.4s - loss: 0.41 - val_auc:
    0.78`), for logs that are not a terminal; Keras' `verbose=2` prints two (a header and the
    metrics). Put it after the callbacks that add metrics to `logs`."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self._started
        values = " - ".join(f"{name}: {_format(value)}" for name, value in (logs or {}).items())
        line = f"epoch {epoch + 1}/{self.epochs} - {seconds:.1f}s" + (
            f" - {values}" if values else ""
        )
        print(line, flush=True)


def _format(value) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)
