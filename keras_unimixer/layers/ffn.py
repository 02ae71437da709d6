"""Per-token feed-forward network (RankMixer's PFFN, UniMixer's per-token SwiGLU)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_unimixer.layers.initializers import distinct
from keras_unimixer.utils.types import Shape, Tensor
from keras_unimixer.utils.validation import (
    check_choice,
    check_positive_int,
    check_token_input_shape,
)

_ACTIVATIONS = ("swiglu", "gelu")


def per_token_kernel_initializer(num_tokens: int) -> keras.initializers.Initializer:
    """Glorot-uniform for `(T, fan_in, fan_out)` kernels, with fans counted per token.

    Keras counts the leading axis of a 3-D kernel as a receptive field (fans times `T`); scaling by
    `T` gives each token the variance of an ordinary `(fan_in, fan_out)` Dense kernel.
    """
    return keras.initializers.VarianceScaling(
        scale=float(num_tokens), mode="fan_avg", distribution="uniform"
    )


@keras.saving.register_keras_serializable(package="keras_unimixer")
class PerTokenFFN(keras.layers.Layer):
    """A feed-forward network with separate weights for every token position.

    `"gelu"`: `gelu(x W1[t] + b1[t]) W2[t] + b2[t]` (RankMixer's PFFN). `"swiglu"`:
    `(silu(x W1[t]) * (x W3[t])) W2[t]` (UniMixer). Hidden width is `multiplier * token_dim`.

    Args:
        multiplier: int. Hidden width as a multiple of `token_dim`. Defaults to `4`.
        activation: str. `"swiglu"` or `"gelu"`. Defaults to `"swiglu"`.
        use_bias: bool. Add per-token biases to the hidden and output projections. Defaults to
            `True`.
        kernel_initializer: initializer of the kernels; default Glorot-uniform per token. Defaults
            to `None`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, num_tokens, token_dim)` tensor.

    Example:
    >>> x = keras.random.normal((2, 4, 8))
    >>> keras_unimixer.layers.PerTokenFFN(multiplier=2)(x).shape
    (2, 4, 8)

    References:
        - [RankMixer: Scaling Up Ranking Models in Industrial Recommenders](https://arxiv.org/abs/2507.15551)
        - [GLU Variants Improve Transformer](https://arxiv.org/abs/2002.05202) (SwiGLU)
    """

    def __init__(
        self,
        multiplier: int = 4,
        activation: str = "swiglu",
        use_bias: bool = True,
        kernel_initializer: str | keras.initializers.Initializer | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.multiplier = check_positive_int("multiplier", multiplier)
        self.activation = check_choice("activation", activation, _ACTIVATIONS)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = (
            None if kernel_initializer is None else keras.initializers.get(kernel_initializer)
        )

    def build(self, input_shape: Shape) -> None:
        num_tokens, token_dim = check_token_input_shape(type(self).__name__, input_shape)
        hidden_dim = self.multiplier * token_dim
        initializer = self.kernel_initializer or per_token_kernel_initializer(num_tokens)
        self.hidden_kernel = self.add_weight(
            name="hidden_kernel", shape=(num_tokens, token_dim, hidden_dim), initializer=initializer
        )
        if self.activation == "swiglu":
            self.gate_kernel = self.add_weight(
                name="gate_kernel",
                shape=(num_tokens, token_dim, hidden_dim),
                initializer=distinct(initializer, 1),
            )
        self.output_kernel = self.add_weight(
            name="output_kernel",
            shape=(num_tokens, hidden_dim, token_dim),
            initializer=distinct(initializer, 2),
        )
        if self.use_bias:
            self.hidden_bias = self.add_weight(
                name="hidden_bias", shape=(num_tokens, hidden_dim), initializer="zeros"
            )
            self.output_bias = self.add_weight(
                name="output_bias", shape=(num_tokens, token_dim), initializer="zeros"
            )

    def call(self, inputs: Tensor) -> Tensor:
        hidden = ops.einsum("btd,tdf->btf", inputs, self.hidden_kernel)
        if self.use_bias:
            hidden = hidden + self.hidden_bias
        if self.activation == "swiglu":
            gate = ops.einsum("btd,tdf->btf", inputs, self.gate_kernel)
            hidden = ops.silu(hidden) * gate
        else:
            hidden = ops.gelu(hidden, approximate=False)
        outputs = ops.einsum("btf,tfd->btd", hidden, self.output_kernel)
        if self.use_bias:
            outputs = outputs + self.output_bias
        return outputs

    def call_token_major(self, inputs: Tensor) -> Tensor:
        """The same network on token-major `(T, batch, D)` inputs, returning `(T, batch, D)`: each
        projection is then one batched matmul over tokens, with no transposes (the einsums of
        `call` transpose to that layout and back)."""
        hidden = ops.matmul(inputs, self.hidden_kernel)
        if self.use_bias:
            hidden = hidden + ops.expand_dims(self.hidden_bias, 1)
        if self.activation == "swiglu":
            hidden = ops.silu(hidden) * ops.matmul(inputs, self.gate_kernel)
        else:
            hidden = ops.gelu(hidden, approximate=False)
        outputs = ops.matmul(hidden, self.output_kernel)
        if self.use_bias:
            outputs = outputs + ops.expand_dims(self.output_bias, 1)
        return outputs

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "multiplier": self.multiplier,
                "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_initializer": None
                if self.kernel_initializer is None
                else keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
