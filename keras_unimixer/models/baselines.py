"""Baselines in the same harness: logistic regression, DeepFM and DCNv2 (keras-rs FeatureCross)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from keras_unimixer.features import FeatureSpec, features_from_config
from keras_unimixer.layers import FeatureTokenizer
from keras_unimixer.models.common import (
    ConfiguredModel,
    check_dropout,
    check_tasks,
    embedding_options,
    feature_inputs,
    mlp,
    task_heads,
)
from keras_unimixer.utils.validation import check_positive_int


def _field_embeddings(features, inputs, embedding_dim: int, name: str, **embedding):
    """`(batch, num_fields, embedding_dim)`: one unprojected embedding per feature."""
    tokenizer = FeatureTokenizer(
        features,
        embedding_dim=embedding_dim,
        token_dim=embedding_dim,
        mode="field",
        project=False,
        name=name,
        **embedding,
    )
    return tokenizer(inputs)


def _deep_config(embedding_dim, hidden_units, dropout, batch_norm, embedding_l2, init_stddev):
    check_positive_int("embedding_dim", embedding_dim)
    return {
        "embedding_dim": embedding_dim,
        "hidden_units": list(hidden_units),
        "dropout": check_dropout(dropout),
        "batch_norm": bool(batch_norm),
        "embedding_l2": float(embedding_l2),
        "embedding_init_stddev": init_stddev,
    }


@keras.saving.register_keras_serializable(package="keras_unimixer")
class LogisticRegression(ConfiguredModel):
    """Logistic regression on one-hot categorical (and multi-hot) features plus numeric features.

    Each feature value has one learned weight (an embedding of size 1; numeric features `w x + b`);
    each task's logit is a weighted sum of them plus a bias.

    Args:
        features: the dataset's `FeatureSpec`s.
        tasks: label names, one logit each.

    Example:
    >>> from keras_unimixer import datasets, models
    >>> data = datasets.make_synthetic(num_examples=500)
    >>> models.LogisticRegression(data.features).predict(data.arrays("test")[0], verbose=0).shape
    (50, 1)
    """

    def __init__(
        self,
        features: Sequence[FeatureSpec | dict],
        tasks: str | Sequence[str] = ("click",),
        **kwargs: Any,
    ) -> None:
        features = features_from_config(features)
        tasks = check_tasks(tasks)
        inputs = feature_inputs(features)
        weights = _field_embeddings(features, inputs, 1, "linear_weights")
        flat = keras.layers.Flatten(name="flatten")(weights)
        super().__init__(inputs=inputs, outputs=task_heads(flat, tasks), **kwargs)
        self.set_init_config(features=features, tasks=tasks)


@keras.saving.register_keras_serializable(package="keras_unimixer")
class DNN(ConfiguredModel):
    """A plain deep network on concatenated field embeddings (BARS's "DNN").

    Args:
        features: the dataset's `FeatureSpec`s.
        embedding_dim: size of the shared field embeddings (BARS: 10).
        hidden_units: sizes of the deep MLP (BARS: 400, 400, 400).
        dropout: dropout after every hidden layer of the MLP.
        batch_norm: batch normalization in every hidden layer (`Dense -> BN -> ReLU -> Dropout`).
        embedding_l2: adds `(embedding_l2 / 2) * ||E||^2` over the embedding tables to the loss.
        embedding_init_stddev: normal embedding initialization (FuxiCTR: 1e-4); `None` for
            Keras' uniform default.
        tasks: label names, one logit each.

    Example:
    >>> from keras_unimixer import datasets, models
    >>> data = datasets.make_synthetic(num_examples=500)
    >>> model = models.DNN(data.features, hidden_units=(32, 32), dropout=0.1, batch_norm=True)
    >>> model.predict(data.arrays("test")[0], verbose=0).shape
    (50, 1)
    """

    def __init__(
        self,
        features: Sequence[FeatureSpec | dict],
        embedding_dim: int = 10,
        hidden_units: Sequence[int] = (400, 400, 400),
        dropout: float = 0.0,
        batch_norm: bool = False,
        embedding_l2: float = 0.0,
        embedding_init_stddev: float | None = None,
        tasks: str | Sequence[str] = ("click",),
        **kwargs: Any,
    ) -> None:
        features = features_from_config(features)
        tasks = check_tasks(tasks)
        config = _deep_config(
            embedding_dim, hidden_units, dropout, batch_norm, embedding_l2, embedding_init_stddev
        )
        inputs = feature_inputs(features)
        embeddings = _field_embeddings(
            features,
            inputs,
            embedding_dim,
            "embeddings",
            **embedding_options(embedding_l2, embedding_init_stddev),
        )
        flat = keras.layers.Flatten(name="flatten")(embeddings)
        deep = mlp(flat, hidden_units, "deep", dropout, batch_norm)
        super().__init__(inputs=inputs, outputs=task_heads(deep, tasks), **kwargs)
        self.set_init_config(features=features, tasks=tasks, **config)


@keras.saving.register_keras_serializable(package="keras_unimixer")
class DeepFM(ConfiguredModel):
    """DeepFM (Guo et al., 2017): first-order + FM second-order + deep MLP on shared embeddings.

    Per task, the logit is a learned combination of the first-order terms, the FM interaction
    `0.5 * sum((sum_f e_f)^2 - sum_f e_f^2)` and the MLP output (a dense head over the three).

    Args:
        features: the dataset's `FeatureSpec`s.
        embedding_dim: size of the shared field embeddings (BARS: 10).
        hidden_units: sizes of the deep MLP (BARS: 400, 400, 400).
        dropout: dropout after every hidden layer of the MLP.
        batch_norm: batch normalization in every hidden layer (`Dense -> BN -> ReLU -> Dropout`).
        embedding_l2: adds `(embedding_l2 / 2) * ||E||^2` over the embedding tables to the loss.
        embedding_init_stddev: normal embedding initialization (FuxiCTR: 1e-4); `None` for
            Keras' uniform default.
        tasks: label names, one logit each.

    References:
        - [DeepFM: A Factorization-Machine based Neural Network for CTR Prediction](https://arxiv.org/abs/1703.04247)
    """

    def __init__(
        self,
        features: Sequence[FeatureSpec | dict],
        embedding_dim: int = 16,
        hidden_units: Sequence[int] = (128, 64),
        dropout: float = 0.0,
        batch_norm: bool = False,
        embedding_l2: float = 0.0,
        embedding_init_stddev: float | None = None,
        tasks: str | Sequence[str] = ("click",),
        **kwargs: Any,
    ) -> None:
        features = features_from_config(features)
        tasks = check_tasks(tasks)
        config = _deep_config(
            embedding_dim, hidden_units, dropout, batch_norm, embedding_l2, embedding_init_stddev
        )
        embedding = embedding_options(embedding_l2, embedding_init_stddev)
        inputs = feature_inputs(features)
        first_order = keras.layers.Flatten(name="first_order")(
            _field_embeddings(features, inputs, 1, "linear_weights", **embedding)
        )
        embeddings = _field_embeddings(features, inputs, embedding_dim, "embeddings", **embedding)
        summed = ops.sum(embeddings, axis=1)
        fm = 0.5 * ops.sum(summed**2 - ops.sum(embeddings**2, axis=1), axis=-1, keepdims=True)
        flat = keras.layers.Flatten(name="flatten")(embeddings)
        deep = mlp(flat, hidden_units, "deep", dropout, batch_norm)
        combined = keras.layers.Concatenate(name="combine")([first_order, fm, deep])
        super().__init__(inputs=inputs, outputs=task_heads(combined, tasks), **kwargs)
        self.set_init_config(features=features, tasks=tasks, **config)


@keras.saving.register_keras_serializable(package="keras_unimixer")
class DCNv2(ConfiguredModel):
    """DCN-V2 (Wang et al., 2021), parallel form, with `keras_rs.layers.FeatureCross`.

    `x0` = concatenated field embeddings; `num_cross_layers` cross layers
    `x_{l+1} = x0 * (W x_l + b) + x_l` (low-rank `W` when `projection_dim` is set) run beside a
    deep MLP; their outputs are concatenated and fed to the task heads.

    Args:
        features: the dataset's `FeatureSpec`s.
        num_cross_layers: number of cross layers (BARS on Frappe: 4).
        projection_dim: rank of the cross layers' weight (None = full rank).
        embedding_dim: size of the shared field embeddings (BARS: 10).
        hidden_units: sizes of the deep MLP (BARS: 400, 400, 400).
        dropout: dropout after every hidden layer of the MLP.
        batch_norm: batch normalization in every hidden layer (`Dense -> BN -> ReLU -> Dropout`).
        embedding_l2: adds `(embedding_l2 / 2) * ||E||^2` over the embedding tables to the loss.
        embedding_init_stddev: normal embedding initialization (FuxiCTR: 1e-4); `None` for
            Keras' uniform default.
        tasks: label names, one logit each.

    References:
        - [DCN V2: Improved Deep & Cross Network and Practical Lessons for Web-scale Learning to
          Rank Systems](https://arxiv.org/abs/2008.13535)
    """

    def __init__(
        self,
        features: Sequence[FeatureSpec | dict],
        embedding_dim: int = 16,
        num_cross_layers: int = 3,
        projection_dim: int | None = None,
        hidden_units: Sequence[int] = (128, 64),
        dropout: float = 0.0,
        batch_norm: bool = False,
        embedding_l2: float = 0.0,
        embedding_init_stddev: float | None = None,
        tasks: str | Sequence[str] = ("click",),
        **kwargs: Any,
    ) -> None:
        import keras_rs

        features = features_from_config(features)
        tasks = check_tasks(tasks)
        check_positive_int("num_cross_layers", num_cross_layers)
        config = _deep_config(
            embedding_dim, hidden_units, dropout, batch_norm, embedding_l2, embedding_init_stddev
        )
        inputs = feature_inputs(features)
        x0 = keras.layers.Flatten(name="flatten")(
            _field_embeddings(
                features,
                inputs,
                embedding_dim,
                "embeddings",
                **embedding_options(embedding_l2, embedding_init_stddev),
            )
        )
        crossed = x0
        for index in range(num_cross_layers):
            crossed = keras_rs.layers.FeatureCross(
                projection_dim=projection_dim, name=f"cross_{index}"
            )(x0, crossed)
        deep = mlp(x0, hidden_units, "deep", dropout, batch_norm)
        combined = keras.layers.Concatenate(name="combine")([crossed, deep])
        super().__init__(inputs=inputs, outputs=task_heads(combined, tasks), **kwargs)
        self.set_init_config(
            features=features,
            num_cross_layers=num_cross_layers,
            projection_dim=projection_dim,
            tasks=tasks,
            **config,
        )
