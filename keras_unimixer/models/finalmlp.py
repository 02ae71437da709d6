"""FinalMLP (Mao et al., AAAI 2023): two gated MLP streams fused by a multi-head bilinear layer.

The best model of the BARS Frappe_x1 table. Each stream sees the flattened field embeddings
multiplied by a feature gate `2 * sigmoid(MLP(context))`, where the context is the embeddings of one
feature group (stream 1: `"user"`, stream 2: `"item"` by default) or a learned constant. The two
streams' outputs are fused per task by `InteractionAggregation`:
`w_x^T x + w_y^T y + b + sum_h x_h^T W_h y_h`.
"""

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
)
from keras_unimixer.utils.types import Shape, Tensor
from keras_unimixer.utils.validation import check_positive_int, divisors


@keras.saving.register_keras_serializable(package="keras_unimixer")
class InteractionAggregation(keras.layers.Layer):
    """FinalMLP's fusion of two vectors into one logit: linear terms plus multi-head bilinear.

    `out = x W_x + y W_y + b + sum_h x_h W_h y_h^T`, where `x_h` and `y_h` are the `h`-th of
    `num_heads` equal chunks of `x` and `y`.

    Args:
        num_heads: number of bilinear heads; must divide both input widths.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a list `[x, y]` of `(batch, dx)` and `(batch, dy)` tensors.

    Example:
    >>> layer = keras_unimixer.models.InteractionAggregation(num_heads=2)
    >>> layer([keras.random.normal((3, 8)), keras.random.normal((3, 4))]).shape
    (3, 1)
    """

    def __init__(self, num_heads: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)

    def build(self, input_shape: tuple[Shape, Shape]) -> None:
        (_, x_dim), (_, y_dim) = input_shape
        valid = sorted(set(divisors(x_dim)) & set(divisors(y_dim)))
        for name, width in (("x", x_dim), ("y", y_dim)):
            if width % self.num_heads:
                raise ValueError(
                    f"`num_heads`={self.num_heads} must divide the width of input {name} "
                    f"({width}); valid values: {valid}."
                )
        glorot = "glorot_uniform"
        self.x_kernel = self.add_weight(name="x_kernel", shape=(x_dim, 1), initializer=glorot)
        self.y_kernel = self.add_weight(name="y_kernel", shape=(y_dim, 1), initializer=glorot)
        self.bias = self.add_weight(name="bias", shape=(1,), initializer="zeros")
        self.bilinear_kernel = self.add_weight(
            name="bilinear_kernel",
            shape=(self.num_heads, x_dim // self.num_heads, y_dim // self.num_heads),
            initializer="glorot_normal",
        )

    def call(self, inputs: tuple[Tensor, Tensor]) -> Tensor:
        x, y = inputs
        linear = ops.matmul(x, self.x_kernel) + ops.matmul(y, self.y_kernel) + self.bias
        x_heads = ops.reshape(x, (-1, self.num_heads, self.bilinear_kernel.shape[1]))
        y_heads = ops.reshape(y, (-1, self.num_heads, self.bilinear_kernel.shape[2]))
        bilinear = ops.einsum("bhi,hij,bhj->b", x_heads, self.bilinear_kernel, y_heads)
        return linear + bilinear[:, None]

    def compute_output_shape(self, input_shape: tuple[Shape, Shape]) -> Shape:
        return (input_shape[0][0], 1)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"num_heads": self.num_heads})
        return config


@keras.saving.register_keras_serializable(package="keras_unimixer")
class LearnedContext(keras.layers.Layer):
    """A trainable vector (initialized to zeros) repeated over the batch of its input.

    FinalMLP's gate context when a stream has no context features.

    Args:
        units: width of the vector.
        **kwargs: base `keras.layers.Layer` arguments.
    """

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)

    def build(self, input_shape: Shape) -> None:
        self.context = self.add_weight(name="context", shape=(1, self.units), initializer="zeros")

    def call(self, inputs: Tensor) -> Tensor:
        return ops.zeros_like(inputs[:, :1]) + self.context

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], self.units)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"units": self.units})
        return config


def _gate_context(features, inputs, flat, group, embedding_dim, name, embedding):
    members = [spec for spec in features if spec.group == group] if group else []
    if group and not members:
        groups = sorted({spec.group for spec in features})
        raise ValueError(
            f"FinalMLP gate context group {group!r} has no features; groups: {groups}, or None "
            "for a learned constant context."
        )
    if not members:
        return LearnedContext(embedding_dim, name=f"{name}_context")(flat)
    tokenizer = FeatureTokenizer(
        members,
        embedding_dim=embedding_dim,
        token_dim=embedding_dim,
        mode="field",
        project=False,
        name=f"{name}_context_embeddings",
        **embedding,
    )
    return keras.layers.Flatten(name=f"{name}_context")(
        tokenizer({spec.name: inputs[spec.name] for spec in members})
    )


@keras.saving.register_keras_serializable(package="keras_unimixer")
class FinalMLP(ConfiguredModel):
    """FinalMLP (Mao et al., AAAI 2023) with feature gating and multi-head bilinear fusion.

    Defaults are BARS's best Frappe_x1 configuration.

    Args:
        features: the dataset's `FeatureSpec`s.
        embedding_dim: size of the field embeddings.
        stream1_units: hidden sizes of the first MLP stream.
        stream2_units: hidden sizes of the second MLP stream.
        dropout: dropout in both streams.
        batch_norm: batch normalization in both streams.
        gate_units: hidden sizes of the feature-gate MLPs (no gating when empty).
        gate_contexts: feature groups whose embeddings drive stream 1's and stream 2's gates
            (`None` for a learned constant).
        num_heads: heads of the bilinear fusion; must divide both streams' output widths.
        embedding_l2: adds `(embedding_l2 / 2) * ||E||^2` over the embedding tables to the loss.
        embedding_init_stddev: normal embedding initialization; `None` for Keras' uniform.
        tasks: label names, one logit each.

    Example:
    >>> from keras_unimixer import datasets, models
    >>> data = datasets.make_synthetic(num_examples=500)
    >>> model = models.FinalMLP(data.features, stream1_units=(16,), stream2_units=(8,),
    ...                         gate_units=(16,), num_heads=2)
    >>> model.predict(data.arrays("test")[0], verbose=0).shape
    (50, 1)

    References:
        - [FinalMLP: An Enhanced Two-Stream MLP Model for CTR Prediction](https://arxiv.org/abs/2304.00902)
    """

    def __init__(
        self,
        features: Sequence[FeatureSpec | dict],
        embedding_dim: int = 10,
        stream1_units: Sequence[int] = (400,),
        stream2_units: Sequence[int] = (100,),
        dropout: float = 0.4,
        batch_norm: bool = True,
        gate_units: Sequence[int] = (400,),
        gate_contexts: Sequence[str] = ("user", "item"),
        num_heads: int = 5,
        embedding_l2: float = 0.0,
        embedding_init_stddev: float | None = None,
        tasks: str | Sequence[str] = ("click",),
        **kwargs: Any,
    ) -> None:
        features = features_from_config(features)
        tasks = check_tasks(tasks)
        check_positive_int("embedding_dim", embedding_dim)
        check_dropout(dropout)
        if not stream1_units or not stream2_units:
            raise ValueError("`stream1_units` and `stream2_units` need at least one layer each.")
        gate_contexts = list(gate_contexts)
        if len(gate_contexts) != 2:
            raise ValueError(f"`gate_contexts` must name 2 groups (or None), got {gate_contexts}.")
        embedding = embedding_options(embedding_l2, embedding_init_stddev)
        inputs = feature_inputs(features)
        tokenizer = FeatureTokenizer(
            features,
            embedding_dim=embedding_dim,
            token_dim=embedding_dim,
            mode="field",
            project=False,
            name="embeddings",
            **embedding,
        )
        flat = keras.layers.Flatten(name="flatten")(tokenizer(inputs))
        streams = []
        for index, (units, group) in enumerate(
            zip((stream1_units, stream2_units), gate_contexts, strict=True), start=1
        ):
            stream_input = flat
            if gate_units:
                name = f"gate{index}"
                context = _gate_context(
                    features, inputs, flat, group, embedding_dim, name, embedding
                )
                hidden = mlp(context, gate_units, f"{name}_hidden")
                gate = keras.layers.Dense(flat.shape[-1], activation="sigmoid", name=name)(hidden)
                stream_input = keras.layers.Multiply(name=f"{name}_apply")([flat, 2.0 * gate])
            streams.append(mlp(stream_input, units, f"stream{index}", dropout, batch_norm))
        logits = {task: InteractionAggregation(num_heads, name=task)(streams) for task in tasks}
        outputs = logits[tasks[0]] if len(tasks) == 1 else logits
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.set_init_config(
            features=features,
            embedding_dim=embedding_dim,
            stream1_units=list(stream1_units),
            stream2_units=list(stream2_units),
            dropout=float(dropout),
            batch_norm=bool(batch_norm),
            gate_units=list(gate_units),
            gate_contexts=gate_contexts,
            num_heads=num_heads,
            embedding_l2=float(embedding_l2),
            embedding_init_stddev=embedding_init_stddev,
            tasks=tasks,
        )
