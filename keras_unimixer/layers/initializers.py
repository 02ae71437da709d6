"""Initializers for mixing matrices: identities and RankMixer's token-mixing permutation."""

from __future__ import annotations

import keras
import numpy as np

from keras_unimixer.layers.validation import check_positive_int


def token_mixing_permutation(num_tokens: int, num_heads: int) -> np.ndarray:
    """RankMixer's TokenMixing as a block permutation `Pi` (spec section 3).

    Cut a flattened `(num_tokens, token_dim)` sample into `num_tokens * num_heads` blocks of size
    `token_dim / num_heads`. Input block `t * num_heads + h` (head `h` of token `t`) goes to output
    block `h * num_tokens + t`, so `flat_out = kron(Pi, I_d) @ flat_in`.

    Args:
        num_tokens: number of tokens `T`.
        num_heads: number of heads `H` each token is split into.

    Returns:
        A float32 array of shape `(T * H, T * H)` with exactly one 1 in every row and column.

    Example:
    >>> token_mixing_permutation(2, 2)
    array([[1., 0., 0., 0.],
           [0., 0., 1., 0.],
           [0., 1., 0., 0.],
           [0., 0., 0., 1.]], dtype=float32)
    """
    check_positive_int("num_tokens", num_tokens)
    check_positive_int("num_heads", num_heads)
    size = num_tokens * num_heads
    permutation = np.zeros((size, size), dtype="float32")
    for token in range(num_tokens):
        for head in range(num_heads):
            permutation[head * num_tokens + token, token * num_heads + head] = 1.0
    return permutation


@keras.saving.register_keras_serializable(package="keras_unimixer")
class StackedIdentity(keras.initializers.Initializer):
    """Identity matrices over the last two axes, stacked over the leading ones (`(..., n, n)`)."""

    def __call__(self, shape, dtype=None):
        if len(shape) < 2 or shape[-1] != shape[-2]:
            raise ValueError(
                f"StackedIdentity needs a shape ending in two equal axes (..., n, n), got {shape}."
            )
        eye = np.broadcast_to(np.eye(shape[-1], dtype="float32"), tuple(shape))
        return keras.ops.cast(np.array(eye), dtype or "float32")

    def get_config(self):
        return {}


@keras.saving.register_keras_serializable(package="keras_unimixer")
class TokenMixingPermutation(keras.initializers.Initializer):
    """Initializes an `(T*H, T*H)` matrix to `token_mixing_permutation(num_tokens, num_heads)`."""

    def __init__(self, num_tokens: int, num_heads: int):
        self.num_tokens = check_positive_int("num_tokens", num_tokens)
        self.num_heads = check_positive_int("num_heads", num_heads)

    def __call__(self, shape, dtype=None):
        size = self.num_tokens * self.num_heads
        if tuple(shape) != (size, size):
            raise ValueError(
                f"TokenMixingPermutation(num_tokens={self.num_tokens}, num_heads={self.num_heads}) "
                f"initializes shape ({size}, {size}), got {tuple(shape)}."
            )
        matrix = token_mixing_permutation(self.num_tokens, self.num_heads)
        return keras.ops.cast(matrix, dtype or "float32")

    def get_config(self):
        return {"num_tokens": self.num_tokens, "num_heads": self.num_heads}
