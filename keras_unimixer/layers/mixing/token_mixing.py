"""RankMixer's TokenMixing: a fixed permutation of token heads."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_unimixer.layers.initializers import token_mixing_permutation
from keras_unimixer.layers.mixing.base import MixingLayer, register_mixer
from keras_unimixer.utils.types import Shape, Tensor
from keras_unimixer.utils.validation import (
    check_head_dim,
    check_positive_int,
    check_token_input_shape,
)


def transpose_heads(inputs: Tensor, num_tokens: int, num_heads: int, head_dim: int) -> Tensor:
    """`(batch, T, H * d)` -> `(batch, H, T * d)`: output token `h` is head `h` of every token."""
    heads = ops.reshape(inputs, (-1, num_tokens, num_heads, head_dim))
    heads = ops.transpose(heads, (0, 2, 1, 3))
    return ops.reshape(heads, (-1, num_heads, num_tokens * head_dim))


def transpose_heads_matrix(num_tokens: int, num_heads: int, head_dim: int) -> Tensor:
    """The `(L, L)` permutation `kron(Pi, I_d)` that `transpose_heads` applies to a flattened
    sample (float32)."""
    permutation = token_mixing_permutation(num_tokens, num_heads)
    identity = ops.eye(head_dim, dtype="float32")
    return ops.kron(ops.convert_to_tensor(permutation), identity)


@keras.saving.register_keras_serializable(package="keras_unimixer")
class TokenMixing(MixingLayer):
    """RankMixer's parameter-free token mixing; registered as `"rankmixer"`.

    Each token is split into `num_heads` heads of size `d = token_dim / num_heads`; output token `h`
    is the concatenation of head `h` of tokens `1..T`. With `num_heads == T` the output has the
    input's shape `(batch, T, token_dim)`; otherwise it is `(batch, num_heads, T * d)`.

    Args:
        num_heads: int. Number of heads `H` per token; must divide `token_dim`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(batch, num_tokens, token_dim)` tensor.

    Example:
    >>> x = keras.random.normal((2, 4, 8))
    >>> keras_unimixer.layers.TokenMixing(num_heads=4)(x).shape
    (2, 4, 8)

    References:
        - [RankMixer: Scaling Up Ranking Models in Industrial Recommenders](https://arxiv.org/abs/2507.15551)
        - [UniMixer: A Unified Architecture for Scaling Laws in Recommendation Systems](https://arxiv.org/abs/2604.00590)
    """

    default_norm = "post"
    default_ffn_activation = "gelu"
    # Token-major, the head transpose spans the whole batch; TensorFlow+XLA ran it slower than the
    # per-example one of batch-major (benchmarks/results/mixer_speed_tensorflow.md), JAX faster.
    token_major_backends = ("jax",)

    def __init__(self, num_heads: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)

    def build(self, input_shape: Shape) -> None:
        self.set_token_shape(input_shape)
        self.head_dim = check_head_dim(self.num_heads, self.token_dim)

    def call(self, inputs: Tensor) -> Tensor:
        return transpose_heads(inputs, self.num_tokens, self.num_heads, self.head_dim)

    def call_token_major(self, inputs: Tensor) -> Tensor:
        """`(T, batch, D)` -> `(H, batch, T * d)`: one transpose, as in `call`."""
        heads = ops.reshape(inputs, (self.num_tokens, -1, self.num_heads, self.head_dim))
        heads = ops.transpose(heads, (2, 1, 0, 3))
        return ops.reshape(heads, (self.num_heads, -1, self.num_tokens * self.head_dim))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        num_tokens, token_dim = check_token_input_shape(type(self).__name__, input_shape)
        return (input_shape[0], self.num_heads, num_tokens * token_dim // self.num_heads)

    def mixing_matrix(self) -> Tensor:
        """The `(L, L)` permutation `kron(Pi, I_d)` this layer applies to a flattened sample."""
        self._require_built()
        return transpose_heads_matrix(self.num_tokens, self.num_heads, self.head_dim)

    def num_params(self) -> int:
        return 0

    def flops_per_example(self) -> int:
        return 0  # a permutation: copies, no arithmetic

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"num_heads": self.num_heads})
        return config


def _build_rankmixer(num_tokens: int, token_dim: int):
    if token_dim % num_tokens:
        raise ValueError(
            f"mixer='rankmixer' splits each token into num_heads = num_tokens = {num_tokens} "
            f"heads, so `token_dim`={token_dim} must be a multiple of {num_tokens}."
        )
    return TokenMixing(num_heads=num_tokens)


register_mixer(
    "rankmixer",
    _build_rankmixer,
    norm="post",
    ffn_activation="gelu",
    description="RankMixer: TokenMixing(T) (a fixed permutation), post-norm, GELU FFN",
)
