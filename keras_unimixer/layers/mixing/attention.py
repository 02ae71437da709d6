"""Multi-head self-attention over feature tokens."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from keras_unimixer.layers.initializers import distinct
from keras_unimixer.layers.mixing.base import MixingLayer, register_mixer
from keras_unimixer.utils.types import Shape, Tensor
from keras_unimixer.utils.validation import check_head_dim, check_positive_int, divisors


@keras.saving.register_keras_serializable(package="keras_unimixer")
class AttentionMixing(MixingLayer):
    """Multi-head self-attention over tokens: the attention member of the family;
    registered as `"attention"`.

    `W_G = softmax(Q K^T / sqrt(d))` is computed per sample and per head; the local map is
    `W_V W_O`, shared by all tokens. No biases, so `mixing_matrix(inputs)` is exact.

    Args:
        num_heads: int. Number of heads; must divide `token_dim`.
        kernel_initializer: str. Initializer of the Q, K, V and output projections. Defaults to
            `"glorot_uniform"`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, num_tokens, token_dim)` tensor.

    Example:
    >>> x = keras.random.normal((2, 4, 8))
    >>> keras_unimixer.layers.AttentionMixing(num_heads=2)(x).shape
    (2, 4, 8)

    References:
        - [Attention Is All You Need](https://arxiv.org/abs/1706.03762)
        - [AutoInt: Automatic Feature Interaction Learning via Self-Attentive Neural Networks](https://arxiv.org/abs/1810.11921)
        - [UniMixer: A Unified Architecture for Scaling Laws in Recommendation Systems](https://arxiv.org/abs/2604.00590)
    """

    def __init__(
        self,
        num_heads: int,
        kernel_initializer: str | keras.initializers.Initializer | None = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape: Shape) -> None:
        self.set_token_shape(input_shape)
        self.head_dim = check_head_dim(self.num_heads, self.token_dim)
        for index, name in enumerate(("query", "key", "value", "output")):
            kernel = self.add_weight(
                name=f"{name}_kernel",
                shape=(self.token_dim, self.token_dim),
                initializer=distinct(self.kernel_initializer, index),
            )
            setattr(self, f"{name}_kernel", kernel)

    def _split_heads(self, tensor):
        return ops.reshape(tensor, (-1, self.num_tokens, self.num_heads, self.head_dim))

    def attention_weights(self, inputs: Tensor) -> Tensor:
        """Per-sample global matrices `softmax(Q K^T / sqrt(d))`, `(batch, heads, T, T)`."""
        query = self._split_heads(ops.matmul(inputs, self.query_kernel))
        key = self._split_heads(ops.matmul(inputs, self.key_kernel))
        scores = ops.einsum("bthd,bshd->bhts", query, key) / math.sqrt(self.head_dim)
        return ops.softmax(scores, axis=-1)

    def call(self, inputs: Tensor) -> Tensor:
        weights = self.attention_weights(inputs)
        value = self._split_heads(ops.matmul(inputs, self.value_kernel))
        context = ops.einsum("bhts,bshd->bthd", weights, value)
        context = ops.reshape(context, (-1, self.num_tokens, self.token_dim))
        return ops.matmul(context, self.output_kernel)

    def num_params(self) -> int:
        return 4 * self.token_dim**2

    def flops_per_example(self) -> int:
        tokens, dim = self.num_tokens, self.token_dim
        # Q, K, V and output projections; scores Q K^T and the weighted sum of values.
        return 4 * 2 * tokens * dim * dim + 2 * 2 * tokens * tokens * dim

    def mixing_matrix(self, inputs: Tensor) -> Tensor:
        """Per-sample `(batch, L, L)` matrices `M` with `flat(out) = M @ flat(x)`.

        Block `(t, s)` is `sum_h A[h, t, s] * (W_V[:, h] W_O[h, :])^T`.
        """
        weights = self.attention_weights(inputs)
        value = ops.reshape(self.value_kernel, (self.token_dim, self.num_heads, self.head_dim))
        output = ops.reshape(self.output_kernel, (self.num_heads, self.head_dim, self.token_dim))
        per_head_local = ops.einsum("lhd,hdk->hlk", value, output)
        blocks = ops.einsum("bhts,hlk->btksl", weights, per_head_local)
        size = self.num_tokens * self.token_dim
        return ops.reshape(blocks, (-1, size, size))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


def default_heads(token_dim: int) -> int:
    """The largest divisor of `token_dim` up to 4."""
    return max(h for h in divisors(token_dim) if h <= 4)


def _build_attention(num_tokens: int, token_dim: int, num_heads: int | None = None):
    return AttentionMixing(num_heads=num_heads or default_heads(token_dim))


register_mixer(
    "attention",
    _build_attention,
    options=("num_heads",),
    space={"num_heads": None},
    description="Transformer over feature tokens: softmax(Q K^T) W_V W_O, pre-norm",
)
