"""Keras 3 models that train towers through task objects (`Ranking`, `Retrieval`, or TFRS's)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from keras_unimixer.utils.types import Tensor


def select_inputs(
    tower: keras.Model, features: dict[str, Tensor] | Tensor
) -> dict[str, Tensor] | Tensor:
    """The entries of a feature dict that `tower` takes, by name.

    A functional Keras 3 model with dict inputs, called with a dict holding extra keys, does not
    reliably pick its inputs by name (measured: outputs change), so towers that read a subset of a
    dataset's features get exactly their own inputs here.
    """
    expected = getattr(tower, "input", None)
    if not isinstance(features, dict) or not isinstance(expected, dict):
        return features
    missing = [name for name in expected if name not in features]
    if missing:
        raise ValueError(
            f"{tower.name} needs features {missing}, which the inputs lack; got {sorted(features)}."
        )
    return {name: features[name] for name in expected}


def _regularization(model):
    losses = model.losses
    return keras.ops.sum(keras.ops.stack(losses)) if losses else 0.0


class TaskModel(keras.Model):
    """A ranking tower trained through a task: `fit(x, y)` minimizes `task(y, tower(x))`.

    The task's metrics appear in `fit`/`evaluate` logs and in `History`. Compile it with an
    optimizer only (`model.compile(optimizer=...)`); the task is the loss.

    Args:
        tower: a Keras 3 model mapping features to predictions.
        task: a `keras_unimixer.tasks.Ranking` (or anything with its call signature).
        **kwargs: `keras.Model` arguments.
    """

    def __init__(self, tower: keras.Model, task: keras.Layer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tower = tower
        self.task = task

    def call(self, features: dict[str, Tensor], training: bool = False) -> Tensor:
        return self.tower(select_inputs(self.tower, features), training=training)

    def call_task(
        self, labels: Tensor, predictions: Tensor, sample_weight: Tensor | None
    ) -> Tensor:
        return self.task(labels, predictions, sample_weight=sample_weight)

    def compute_loss(
        self,
        x: object = None,
        y: Tensor | None = None,
        y_pred: Tensor | None = None,
        sample_weight: Tensor | None = None,
        training: bool = True,
    ) -> Tensor:
        return self.call_task(y, y_pred, sample_weight) + _regularization(self)


class TwoTowerModel(keras.Model):
    """A two-tower retrieval model trained through a retrieval task (in-batch negatives).

    `fit` takes batches of feature dicts (no labels); each row is a (query, positive candidate)
    pair. The query tower reads `query_features`, the candidate tower `candidate_features`.

    Args:
        query_tower: Keras 3 model from query features to embeddings.
        candidate_tower: Keras 3 model from candidate features to embeddings.
        task: a `keras_unimixer.tasks.Retrieval` (or anything with its call signature).
        query_features: names of the query tower's inputs.
        candidate_features: names of the candidate tower's inputs.
        **kwargs: `keras.Model` arguments.
    """

    def __init__(
        self,
        query_tower: keras.Model,
        candidate_tower: keras.Model,
        task: keras.Layer,
        query_features: Sequence[str],
        candidate_features: Sequence[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.query_tower = query_tower
        self.candidate_tower = candidate_tower
        self.task = task
        self.query_features = list(query_features)
        self.candidate_features = list(candidate_features)

    def _select(self, features, names):
        missing = [name for name in names if name not in features]
        if missing:
            raise ValueError(f"{type(self).__name__} inputs lack features {missing}.")
        return {name: features[name] for name in names}

    def call(self, features: dict[str, Tensor], training: bool = False) -> tuple[Tensor, Tensor]:
        queries = self.query_tower(self._select(features, self.query_features), training=training)
        candidates = self.candidate_tower(
            self._select(features, self.candidate_features), training=training
        )
        return queries, candidates

    def call_task(
        self,
        query_embeddings: Tensor,
        candidate_embeddings: Tensor,
        sample_weight: Tensor | None,
    ) -> Tensor:
        return self.task(query_embeddings, candidate_embeddings, sample_weight=sample_weight)

    def compute_loss(
        self,
        x: object = None,
        y: object = None,
        y_pred: tuple[Tensor, Tensor] | None = None,
        sample_weight: Tensor | None = None,
        training: bool = True,
    ) -> Tensor:
        query_embeddings, candidate_embeddings = y_pred
        loss = self.call_task(query_embeddings, candidate_embeddings, sample_weight)
        return loss + _regularization(self)
