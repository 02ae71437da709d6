"""HiFormer-style heterogeneous attention: every token position has its own projections.

Gui et al., "Hiformer: Heterogeneous Feature Interactions Learning with Transformers for
Recommender Systems" (2023), the heterogeneous-attention baseline of the UniMixer paper (spec
section 8). Features are not interchangeable like words, so the query, key, value and output maps
of token `t` are its own: `Q_t = x_t W_Q[t]`, `K_s = x_s W_K[s]`, `V_s = x_s W_V[s]`,
`out_t = sum_h (sum_s softmax_s(Q_t K_s^T / sqrt(d))_h V_s,h) W_O[t]_h`.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from keras_unimixer.layers.ffn import per_token_kernel_initializer
from keras_unimixer.layers.initializers import distinct
from keras_unimixer.layers.mixing.attention import default_heads
from keras_unimixer.layers.mixing.base import MixingLayer, register_mixer
from keras_unimixer.utils.types import Shape, Tensor
from keras_unimixer.utils.validation import check_head_dim, check_positive_int

_PROJECTIONS = ("query", "key", "value", "output")


@keras.saving.register_keras_serializable(package="keras_unimixer")
class HeterogeneousAttention(MixingLayer):
    """Multi-head self-attention with token-specific Q, K, V and output projections (HiFormer).

    Registered as `"hiformer"`. Trainable parameters: `4 T D^2`; the global matrix is
    `softmax(Q K^T / sqrt(d))` per sample and head, the local map of the pair `(t, s)` is
    `W_V[s] W_O[t]` (`mixing_matrix(inputs)` gives the whole `(L, L)` matrix per sample).

    Args:
        num_heads: int. Number of heads; must divide `token_dim`.
        kernel_initializer: initializer of the `(T, D, D)` projections (default: Glorot per token).
            Defaults to `None`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, num_tokens, token_dim)` tensor.

    Example:
    >>> x = keras.random.normal((2, 4, 8))
    >>> keras_unimixer.layers.HeterogeneousAttention(num_heads=2)(x).shape
    (2, 4, 8)

    References:
        - [Hiformer: Heterogeneous Feature Interactions Learning with Transformers for Recommender Systems](https://arxiv.org/abs/2311.05884)
    """

    def __init__(
        self,
        num_heads: int,
        kernel_initializer: str | keras.initializers.Initializer | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.kernel_initializer = (
            None if kernel_initializer is None else keras.initializers.get(kernel_initializer)
        )

    def build(self, input_shape: Shape) -> None:
        tokens, dim = self.set_token_shape(input_shape)
        self.head_dim = check_head_dim(self.num_heads, dim)
        initializer = self.kernel_initializer or per_token_kernel_initializer(tokens)
        for index, name in enumerate(_PROJECTIONS):
            kernel = self.add_weight(
                name=f"{name}_kernel",
                shape=(tokens, dim, dim),
                initializer=distinct(initializer, index),
            )
            setattr(self, f"{name}_kernel", kernel)

    def _heads(self, inputs, kernel):
        projected = ops.einsum("btd,tde->bte", inputs, kernel)
        return ops.reshape(projected, (-1, self.num_tokens, self.num_heads, self.head_dim))

    def attention_weights(self, inputs: Tensor) -> Tensor:
        """Per-sample `(batch, heads, T, T)` attention of every token over every token."""
        query = self._heads(inputs, self.query_kernel)
        key = self._heads(inputs, self.key_kernel)
        scores = ops.einsum("bthd,bshd->bhts", query, key) / math.sqrt(self.head_dim)
        return ops.softmax(scores, axis=-1)

    def call(self, inputs: Tensor) -> Tensor:
        weights = self.attention_weights(inputs)
        value = self._heads(inputs, self.value_kernel)
        context = ops.einsum("bhts,bshd->bthd", weights, value)
        context = ops.reshape(context, (-1, self.num_tokens, self.token_dim))
        return ops.einsum("btd,tde->bte", context, self.output_kernel)

    def mixing_matrix(self, inputs: Tensor) -> Tensor:
        """Per-sample `(batch, L, L)` matrices `M` with `flat(out) = M @ flat(x)`.

        Block `(t, s)` is `sum_h A[h, t, s] * (W_V[s][:, h] W_O[t][h, :])^T`.
        """
        weights = self.attention_weights(inputs)
        shape = (self.num_tokens, self.token_dim, self.num_heads, self.head_dim)
        value = ops.reshape(self.value_kernel, shape)  # (s, D_in, h, d)
        output = ops.reshape(
            self.output_kernel, (self.num_tokens, self.num_heads, self.head_dim, self.token_dim)
        )  # (t, h, d, D_out)
        local = ops.einsum("slhd,thdk->htslk", value, output)
        blocks = ops.einsum("bhts,htslk->btksl", weights, local)
        size = self.num_tokens * self.token_dim
        return ops.reshape(blocks, (-1, size, size))

    def num_params(self) -> int:
        return 4 * self.num_tokens * self.token_dim**2

    def flops_per_example(self) -> int:
        tokens, dim = self.num_tokens, self.token_dim
        return 4 * 2 * tokens * dim * dim + 2 * 2 * tokens * tokens * dim

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "kernel_initializer": None
                if self.kernel_initializer is None
                else keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


def _build_hiformer(num_tokens: int, token_dim: int, num_heads: int | None = None):
    return HeterogeneousAttention(num_heads=num_heads or default_heads(token_dim))


register_mixer(
    "hiformer",
    _build_hiformer,
    options=("num_heads",),
    space={"num_heads": None},
    description="HiFormer: attention with token-specific Q, K, V, O projections, pre-norm",
)
