"""Pieces shared by every ranking model: typed inputs, task heads, compile settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras

from keras_unimixer.features import (
    BINARY,
    MULTI_CATEGORICAL,
    NUMERIC,
    RATING,
    FeatureSpec,
    features_from_config,
)
from keras_unimixer.utils.types import Tensor
from keras_unimixer.utils.validation import check_rate

if TYPE_CHECKING:
    from typing import Self  # Python 3.11+; annotations only


def feature_inputs(features: Sequence[FeatureSpec | dict]) -> dict[str, keras.KerasTensor]:
    """One named `keras.Input` per feature: int32 ids, or float32 values for numeric features."""
    inputs = {}
    for spec in features_from_config(features):
        if spec.kind == NUMERIC:
            inputs[spec.name] = keras.Input(shape=(), dtype="float32", name=spec.name)
        elif spec.kind == MULTI_CATEGORICAL:
            inputs[spec.name] = keras.Input(shape=(spec.max_length,), dtype="int32", name=spec.name)
        else:
            inputs[spec.name] = keras.Input(shape=(), dtype="int32", name=spec.name)
    return inputs


def check_tasks(tasks: str | Sequence[str]) -> list[str]:
    if isinstance(tasks, str):
        tasks = [tasks]
    tasks = list(tasks)
    if not tasks or not all(isinstance(t, str) and t for t in tasks):
        raise ValueError(f"`tasks` must be a non-empty list of label names, got {tasks!r}.")
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"`tasks` has duplicates: {tasks}.")
    return tasks


def mlp(
    hidden: Tensor,
    hidden_units: Sequence[int],
    name: str,
    dropout: float = 0.0,
    batch_norm: bool = False,
) -> Tensor:
    """ReLU layers `Dense -> [BatchNorm] -> ReLU -> [Dropout]` (FuxiCTR's MLP block order)."""
    check_dropout(dropout)
    for index, units in enumerate(hidden_units):
        layer_name = f"{name}_{index}"
        if batch_norm:
            hidden = keras.layers.Dense(units, name=layer_name)(hidden)
            hidden = keras.layers.BatchNormalization(
                momentum=0.9, epsilon=1e-5, name=f"{layer_name}_batch_norm"
            )(hidden)
            hidden = keras.layers.Activation("relu", name=f"{layer_name}_relu")(hidden)
        else:
            hidden = keras.layers.Dense(units, activation="relu", name=layer_name)(hidden)
        if dropout:
            hidden = keras.layers.Dropout(dropout, name=f"{layer_name}_dropout")(hidden)
    return hidden


def check_dropout(dropout: float) -> float:
    return check_rate("dropout", dropout)


def embedding_options(
    embedding_l2: float = 0.0, embedding_init_stddev: float | None = None
) -> dict:
    """`FeatureTokenizer` arguments for the embedding recipe of BARS / FuxiCTR.

    Args:
        embedding_l2: `lambda`: adds `(lambda / 2) * ||E||^2` over the whole embedding tables to the
            loss at every step (FuxiCTR's `embedding_regularizer`; BARS uses 0.05 on Frappe).
        embedding_init_stddev: normal initialization with this standard deviation (FuxiCTR: 1e-4);
            `None` keeps Keras' default uniform(-0.05, 0.05).
    """
    if embedding_l2 < 0:
        raise ValueError(f"`embedding_l2` must be >= 0, got {embedding_l2!r}.")
    if embedding_init_stddev is not None and not embedding_init_stddev > 0:
        raise ValueError(f"`embedding_init_stddev` must be > 0, got {embedding_init_stddev!r}.")
    return {
        "embeddings_initializer": "uniform"
        if embedding_init_stddev is None
        else keras.initializers.RandomNormal(stddev=embedding_init_stddev),
        "embeddings_regularizer": keras.regularizers.L2(embedding_l2 / 2.0)
        if embedding_l2
        else None,
    }


def task_heads(hidden: Tensor, tasks: list[str]) -> Tensor | dict[str, Tensor]:
    """One logit per task: a tensor for a single task, else a dict keyed by task name."""
    logits = {task: keras.layers.Dense(1, name=task)(hidden) for task in tasks}
    return logits[tasks[0]] if len(tasks) == 1 else logits


def compile_ranking(
    model: keras.Model,
    tasks: str | Sequence[str],
    learning_rate: float = 1e-3,
    optimizer: keras.optimizers.Optimizer | None = None,
    kinds: dict[str, str] | None = None,
) -> keras.Model:
    """Per task: binary cross-entropy on logits with AUC and log loss (binary labels), or squared
    error with RMSE (`kinds[task] == "rating"`: the output is the predicted rating)."""
    tasks = check_tasks(tasks)
    kinds = dict(kinds or {})
    optimizer = optimizer or keras.optimizers.Adam(learning_rate=learning_rate)

    def task_loss(task):
        if kinds.get(task, BINARY) == RATING:
            return keras.losses.MeanSquaredError()
        return keras.losses.BinaryCrossentropy(from_logits=True)

    def task_metrics(task):
        if kinds.get(task, BINARY) == RATING:
            return [keras.metrics.RootMeanSquaredError(name="rmse")]
        return [
            keras.metrics.AUC(from_logits=True, name="auc"),
            keras.metrics.BinaryCrossentropy(from_logits=True, name="logloss"),
        ]

    if len(tasks) == 1:
        loss, metrics = task_loss(tasks[0]), task_metrics(tasks[0])
    else:
        loss = {task: task_loss(task) for task in tasks}
        metrics = {task: task_metrics(task) for task in tasks}
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return model


class ConfiguredModel(keras.Model):
    """A functional `keras.Model` built in `__init__` whose config is its constructor arguments.

    Subclasses build their graph, call `super().__init__(inputs=..., outputs=..., **kwargs)`, then
    `self.set_init_config(...)` with their arguments; saving and loading then rebuild them (the
    keras-hub pattern).
    """

    def set_init_config(self, **config: Any) -> None:
        if "features" in config:
            config["features"] = [
                spec.to_dict() for spec in features_from_config(config["features"])
            ]
        self.init_config = config
        for key, value in config.items():
            if not hasattr(self, key):
                setattr(self, key, value)

    def get_config(self) -> dict:
        return {"name": self.name, **self.init_config}

    @classmethod
    def from_config(cls, config: dict) -> Self:
        return cls(**config)
