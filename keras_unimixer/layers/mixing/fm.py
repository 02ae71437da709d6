"""Factorization-machine mixing: `X X^T` as a per-sample global matrix."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_unimixer.layers.mixing.base import MixingLayer, register_mixer
from keras_unimixer.utils.types import Shape, Tensor


@keras.saving.register_keras_serializable(package="keras_unimixer")
class FMMixing(MixingLayer):
    """Wukong-style factorization-machine mixing: the FM member of the family;
    registered as `"fm"` (Wukong's full interaction layer is `WukongMixing`).

    The per-sample interaction matrix `F = X X^T / D` (`(T, T)`, all pairwise dot products of the
    tokens) is the global matrix; a learned projection `Y` `(D, D)` is the shared local map, so
    `out = F @ (X @ Y)`: every output token is a sum of tokens weighted by their interactions, the
    "X X^T then project back to (T, D)" of Wukong's FM block. (Scaling by `1 / D` is our choice: it
    keeps the cubic term at the input's scale.)

    Args:
        kernel_initializer: str. Initializer of the projection `Y`. Defaults to `"glorot_uniform"`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, num_tokens, token_dim)` tensor.

    Example:
    >>> x = keras.random.normal((2, 4, 8))
    >>> keras_unimixer.layers.FMMixing()(x).shape
    (2, 4, 8)

    References:
        - [Wukong: Towards a Scaling Law for Large-Scale Recommendation](https://arxiv.org/abs/2403.02545)
        - [UniMixer: A Unified Architecture for Scaling Laws in Recommendation Systems](https://arxiv.org/abs/2604.00590)
    """

    def __init__(
        self,
        kernel_initializer: str | keras.initializers.Initializer | None = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape: Shape) -> None:
        self.set_token_shape(input_shape)
        self.projection_kernel = self.add_weight(
            name="projection_kernel",
            shape=(self.token_dim, self.token_dim),
            initializer=self.kernel_initializer,
        )

    def interaction_matrix(self, inputs: Tensor) -> Tensor:
        """Per-sample global matrices `X X^T / D`, `(batch, T, T)`."""
        return ops.einsum("btd,bsd->bts", inputs, inputs) / float(self.token_dim)

    def call(self, inputs: Tensor) -> Tensor:
        projected = ops.matmul(inputs, self.projection_kernel)
        return ops.matmul(self.interaction_matrix(inputs), projected)

    def num_params(self) -> int:
        return self.token_dim**2

    def flops_per_example(self) -> int:
        tokens, dim = self.num_tokens, self.token_dim
        return 2 * tokens * dim * dim + 2 * 2 * tokens * tokens * dim

    def mixing_matrix(self, inputs: Tensor) -> Tensor:
        """Per-sample `(batch, L, L)` matrices `M` with `flat(out) = M @ flat(x)`."""
        interactions = self.interaction_matrix(inputs)
        blocks = ops.einsum("bts,lk->btksl", interactions, self.projection_kernel)
        size = self.num_tokens * self.token_dim
        return ops.reshape(blocks, (-1, size, size))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"kernel_initializer": keras.initializers.serialize(self.kernel_initializer)})
        return config


register_mixer(
    "fm",
    lambda num_tokens, token_dim: FMMixing(),
    description="FM mixing: (X X^T / D) X Y, pre-norm",
)
