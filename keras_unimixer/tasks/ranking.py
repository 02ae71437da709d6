"""Backend-neutral ranking task with the TFRS `tfrs.tasks.Ranking` arguments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras

from keras_unimixer.utils.types import Tensor

if TYPE_CHECKING:
    from typing import Self  # Python 3.11+; annotations only


@keras.saving.register_keras_serializable(package="keras_unimixer")
class Ranking(keras.layers.Layer):
    """Loss and metrics of a ranking model, as `tfrs.tasks.Ranking`, for any Keras backend.

    Call it from a model's `compute_loss`; its metrics are Keras 3 metrics tracked by the layer, so
    `fit`/`evaluate` report them under both TensorFlow and JAX.

    Args:
        loss: a Keras loss (default: `keras.losses.BinaryCrossentropy()`, as in TFRS).
        metrics: metrics updated with `(labels, predictions)`.
        prediction_metrics: metrics updated with the predictions alone.
        label_metrics: metrics updated with the labels alone.
        loss_metrics: metrics updated with the loss value.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        labels: the targets.
        predictions: the model's outputs.
        sample_weight: optional per-example weights.
        training: unused (TFRS signature).
        compute_metrics: update the metrics (set False to skip them).

    Example:
    >>> task = keras_unimixer.tasks.Ranking(
    ...     loss=keras.losses.MeanSquaredError(),
    ...     metrics=[keras.metrics.RootMeanSquaredError()])
    >>> float(task(np.array([[4.0]]), np.array([[3.0]])))
    1.0
    """

    def __init__(
        self,
        loss: str | keras.losses.Loss | None = None,
        metrics: Sequence[keras.metrics.Metric] | None = None,
        prediction_metrics: Sequence[keras.metrics.Metric] | None = None,
        label_metrics: Sequence[keras.metrics.Metric] | None = None,
        loss_metrics: Sequence[keras.metrics.Metric] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.loss_fn = keras.losses.get(loss) if loss is not None else None
        if self.loss_fn is None:
            self.loss_fn = keras.losses.BinaryCrossentropy()
        self.ranking_metrics = list(metrics or [])
        self.prediction_metrics = list(prediction_metrics or [])
        self.label_metrics = list(label_metrics or [])
        self.loss_metrics = list(loss_metrics or [])

    def call(
        self,
        labels: Tensor,
        predictions: Tensor,
        sample_weight: Tensor | None = None,
        training: bool = False,
        compute_metrics: bool = True,
    ) -> Tensor:
        loss = self.loss_fn(labels, predictions, sample_weight=sample_weight)
        if compute_metrics:
            for metric in self.ranking_metrics:
                metric.update_state(labels, predictions, sample_weight=sample_weight)
            for metric in self.prediction_metrics:
                metric.update_state(predictions, sample_weight=sample_weight)
            for metric in self.label_metrics:
                metric.update_state(labels, sample_weight=sample_weight)
            for metric in self.loss_metrics:
                metric.update_state(loss)
        return loss

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "loss": keras.saving.serialize_keras_object(self.loss_fn),
                **{
                    name: [keras.saving.serialize_keras_object(m) for m in metrics]
                    for name, metrics in self._metric_lists().items()
                },
            }
        )
        return config

    def _metric_lists(self) -> dict:
        return {
            "metrics": self.ranking_metrics,
            "prediction_metrics": self.prediction_metrics,
            "label_metrics": self.label_metrics,
            "loss_metrics": self.loss_metrics,
        }

    @classmethod
    def from_config(cls, config: dict) -> Self:
        return cls(**deserialize_task_objects(config))


def deserialize_task_objects(config: dict) -> dict:
    """A task config with its serialized loss and metric lists turned back into objects."""
    config = dict(config)
    if isinstance(config.get("loss"), dict):
        config["loss"] = keras.saving.deserialize_keras_object(config["loss"])
    for name, value in config.items():
        if name.endswith("metrics") and isinstance(value, list):
            config[name] = [keras.saving.deserialize_keras_object(m) for m in value]
    return config
