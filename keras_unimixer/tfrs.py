"""Train Keras 3 towers with TensorFlow Recommenders (TFRS) task objects (TensorFlow backend).

TFRS is built on `tf.keras` = Keras 2 (`tf-keras`): it imports only when `TF_USE_LEGACY_KERAS=1`
is set before TensorFlow is first imported, and a Keras 3 layer cannot live inside a TFRS
(tf-keras) model. These two models are Keras 3 models that call a TFRS task in `compute_loss`:
- `TFRSRankingModel(tower, tfrs.tasks.Ranking(...))`
- `TFRSRetrievalModel(query_tower, candidate_tower, tfrs.tasks.Retrieval(...), ...)`
The retrieval task is called through a `tf.function` with autograph on (the Keras 3 trainer traces
with autograph off, where TFRS's `len(tf.shape(...))` fails), and the tasks' tf-keras metrics are
added to the `fit`/`evaluate` logs and reset with the model's own metrics.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import keras

from keras_unimixer.tasks.models import TaskModel, TwoTowerModel
from keras_unimixer.utils.types import Tensor

if TYPE_CHECKING:
    import tensorflow_recommenders as tfrs

SETUP_HINT = (
    "keras_unimixer.tfrs needs TensorFlow Recommenders on tf.keras = Keras 2: "
    "`pip install tensorflow-recommenders tf-keras` and set the environment variable "
    "TF_USE_LEGACY_KERAS=1 before TensorFlow is first imported (first line of a notebook: "
    "`import os; os.environ['TF_USE_LEGACY_KERAS'] = '1'`). keras_unimixer's layers and models "
    "stay Keras 3 either way; for the JAX backend use keras_unimixer.tasks instead."
)


def import_tfrs() -> ModuleType:
    """Import `tensorflow_recommenders`, or raise an ImportError that says what to set and why."""
    if keras.backend.backend() != "tensorflow":
        raise ImportError(
            f"TFRS tasks run on TensorFlow; the Keras backend is {keras.backend.backend()!r}. "
            "Use KERAS_BACKEND=tensorflow, or keras_unimixer.tasks (backend-neutral)."
        )
    try:
        import tensorflow_recommenders as tfrs
    except ImportError as error:
        current = os.environ.get("TF_USE_LEGACY_KERAS")
        raise ImportError(f"{SETUP_HINT} (TF_USE_LEGACY_KERAS is {current!r}; {error})") from error
    return tfrs


def _leaf_metrics(task) -> list:
    """The tf-keras metrics a TFRS task updates (FactorizedTopK contributes its top-K means)."""
    return list(task.metrics)


class _TFRSMetricsMixin:
    """Adds the TFRS task's tf-keras metrics to the Keras 3 logs and resets them with the rest."""

    def get_metrics_result(self):
        results = dict(super().get_metrics_result())
        for metric in _leaf_metrics(self.task):
            results[metric.name] = metric.result()
        return results

    def reset_metrics(self):
        super().reset_metrics()
        for metric in _leaf_metrics(self.task):
            metric.reset_state()


class TFRSRankingModel(_TFRSMetricsMixin, TaskModel):
    """A Keras 3 ranking tower trained through `tfrs.tasks.Ranking`.

    Args:
        tower: a Keras 3 model from features to predictions (e.g. a `RankingModel`).
        task: a `tfrs.tasks.Ranking`.
        **kwargs: `keras.Model` arguments.

    Example:
    >>> import os; os.environ["TF_USE_LEGACY_KERAS"] = "1"  # before TensorFlow is imported
    >>> import tensorflow as tf, tensorflow_recommenders as tfrs  # doctest: +SKIP
    >>> task = tfrs.tasks.Ranking(
    ...     loss=tf.keras.losses.MeanSquaredError(),
    ...     metrics=[tf.keras.metrics.RootMeanSquaredError()])  # doctest: +SKIP
    >>> model = TFRSRankingModel(tower, task); model.compile(optimizer="adam")  # doctest: +SKIP
    """

    def __init__(self, tower: keras.Model, task: tfrs.tasks.Ranking, **kwargs: Any) -> None:
        import_tfrs()
        super().__init__(tower, task, **kwargs)


class TFRSRetrievalModel(_TFRSMetricsMixin, TwoTowerModel):
    """A Keras 3 two-tower model trained through `tfrs.tasks.Retrieval` (autograph bridge).

    Args:
        query_tower: Keras 3 model from query features to embeddings.
        candidate_tower: Keras 3 model from candidate features to embeddings.
        task: a `tfrs.tasks.Retrieval` (its `FactorizedTopK` metrics are reported by `evaluate`).
        query_features: names of the query tower's inputs.
        candidate_features: names of the candidate tower's inputs.
        compute_metrics_in_training: also compute the (slow, corpus-wide) factorized metrics in
            `fit`; off by default, as TFRS recommends.
        **kwargs: `keras.Model` arguments.
    """

    def __init__(
        self,
        query_tower: keras.Model,
        candidate_tower: keras.Model,
        task: tfrs.tasks.Retrieval,
        query_features: Sequence[str],
        candidate_features: Sequence[str],
        compute_metrics_in_training: bool = False,
        **kwargs: Any,
    ) -> None:
        import_tfrs()
        import tensorflow as tf

        super().__init__(
            query_tower, candidate_tower, task, query_features, candidate_features, **kwargs
        )
        self.compute_metrics_in_training = compute_metrics_in_training

        def call_with_autograph(query_embeddings, candidate_embeddings, compute_metrics):
            return task(query_embeddings, candidate_embeddings, compute_metrics=compute_metrics)

        self._task_function = tf.function(call_with_autograph, autograph=True)

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: tuple | None = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Tensor:
        query_embeddings, candidate_embeddings = y_pred
        compute_metrics = self.compute_metrics_in_training or not training
        loss = self._task_function(query_embeddings, candidate_embeddings, compute_metrics)
        losses = self.losses
        return loss + (keras.ops.sum(keras.ops.stack(losses)) if losses else 0.0)
