"""Baselines in the same harness: logistic regression, DeepFM and DCNv2 (keras-rs FeatureCross)."""

from __future__ import annotations

import keras
from keras import ops

from keras_unimixer.datasets.schema import features_from_config
from keras_unimixer.layers import FeatureTokenizer
from keras_unimixer.layers.validation import check_positive_int
from keras_unimixer.models.common import (
    ConfiguredModel,
    check_tasks,
    feature_inputs,
    mlp,
    task_heads,
)


def _field_embeddings(features, inputs, embedding_dim: int, name: str):
    """`(batch, num_fields, embedding_dim)`: one unprojected embedding per feature."""
    tokenizer = FeatureTokenizer(
        features,
        embedding_dim=embedding_dim,
        token_dim=embedding_dim,
        mode="field",
        project=False,
        name=name,
    )
    return tokenizer(inputs)


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

    def __init__(self, features, tasks=("click",), **kwargs):
        features = features_from_config(features)
        tasks = check_tasks(tasks)
        inputs = feature_inputs(features)
        weights = _field_embeddings(features, inputs, 1, "linear_weights")
        flat = keras.layers.Flatten(name="flatten")(weights)
        super().__init__(inputs=inputs, outputs=task_heads(flat, tasks), **kwargs)
        self.set_init_config(features=features, tasks=tasks)


@keras.saving.register_keras_serializable(package="keras_unimixer")
class DeepFM(ConfiguredModel):
    """DeepFM (Guo et al., 2017): first-order + FM second-order + deep MLP on shared embeddings.

    Per task, the logit is a learned combination of the first-order terms, the FM interaction
    `0.5 * sum((sum_f e_f)^2 - sum_f e_f^2)` and the MLP output (a dense head over the three).

    Args:
        features: the dataset's `FeatureSpec`s.
        embedding_dim: size of the shared field embeddings.
        hidden_units: sizes of the deep MLP.
        tasks: label names, one logit each.
    """

    def __init__(
        self, features, embedding_dim=16, hidden_units=(128, 64), tasks=("click",), **kwargs
    ):
        features = features_from_config(features)
        tasks = check_tasks(tasks)
        check_positive_int("embedding_dim", embedding_dim)
        inputs = feature_inputs(features)
        first_order = keras.layers.Flatten(name="first_order")(
            _field_embeddings(features, inputs, 1, "linear_weights")
        )
        embeddings = _field_embeddings(features, inputs, embedding_dim, "embeddings")
        summed = ops.sum(embeddings, axis=1)
        fm = 0.5 * ops.sum(summed**2 - ops.sum(embeddings**2, axis=1), axis=-1, keepdims=True)
        deep = mlp(keras.layers.Flatten(name="flatten")(embeddings), hidden_units, "deep")
        combined = keras.layers.Concatenate(name="combine")([first_order, fm, deep])
        super().__init__(inputs=inputs, outputs=task_heads(combined, tasks), **kwargs)
        self.set_init_config(
            features=features,
            embedding_dim=embedding_dim,
            hidden_units=list(hidden_units),
            tasks=tasks,
        )


@keras.saving.register_keras_serializable(package="keras_unimixer")
class DCNv2(ConfiguredModel):
    """DCN-V2 (Wang et al., 2021), parallel form, with `keras_rs.layers.FeatureCross`.

    `x0` = concatenated field embeddings; `num_cross_layers` cross layers
    `x_{l+1} = x0 * (W x_l + b) + x_l` (low-rank `W` when `projection_dim` is set) run beside a
    deep MLP; their outputs are concatenated and fed to the task heads.

    Args:
        features: the dataset's `FeatureSpec`s.
        embedding_dim: size of the field embeddings.
        num_cross_layers: number of cross layers.
        projection_dim: rank of the cross layers' weight (None = full rank).
        hidden_units: sizes of the deep MLP.
        tasks: label names, one logit each.
    """

    def __init__(
        self,
        features,
        embedding_dim=16,
        num_cross_layers=3,
        projection_dim=None,
        hidden_units=(128, 64),
        tasks=("click",),
        **kwargs,
    ):
        import keras_rs

        features = features_from_config(features)
        tasks = check_tasks(tasks)
        check_positive_int("num_cross_layers", num_cross_layers)
        inputs = feature_inputs(features)
        x0 = keras.layers.Flatten(name="flatten")(
            _field_embeddings(features, inputs, embedding_dim, "embeddings")
        )
        crossed = x0
        for index in range(num_cross_layers):
            crossed = keras_rs.layers.FeatureCross(
                projection_dim=projection_dim, name=f"cross_{index}"
            )(x0, crossed)
        deep = mlp(x0, hidden_units, "deep")
        combined = keras.layers.Concatenate(name="combine")([crossed, deep])
        super().__init__(inputs=inputs, outputs=task_heads(combined, tasks), **kwargs)
        self.set_init_config(
            features=features,
            embedding_dim=embedding_dim,
            num_cross_layers=num_cross_layers,
            projection_dim=projection_dim,
            hidden_units=list(hidden_units),
            tasks=tasks,
        )
