"""Wukong's interaction layer: a factorization-machine block beside a linear compression block.

Zhang et al., "Wukong: Towards a Scaling Law for Large-Scale Recommendation" (2024), a baseline of
the UniMixer paper. For tokens `X` (`T x D`):
- FMB: `FM(X) = X (X^T Y)` (the optimized FM, `Y`: `T x k`), flattened, layer-normalized, through
  an MLP and reshaped to `n_F` tokens;
- LCB: `W_L X` (`W_L`: `n_L x T`), a linear recombination of the tokens into `n_L` tokens;
the layer's output is the `n_F + n_L = T` tokens. Wukong's own residual and LayerNorm around the
layer are the block's (`UniMixerBlock`, post-norm by default for this mixer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from keras_unimixer.layers.mixing.base import MixingLayer, register_mixer
from keras_unimixer.utils.types import Shape, Tensor
from keras_unimixer.utils.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_unimixer")
class WukongMixing(MixingLayer):
    """Wukong's FM block and linear compression block, as a shape-keeping mixing layer.

    Registered as `"wukong"`. With `T` tokens, `fm_tokens` (`n_F`) come from the FM block and the
    other `T - n_F` from the linear compression block.

    Args:
        fm_tokens: tokens produced by the FM block (default `ceil(T / 2)`); `1..T-1`. Defaults to
            `None`.
        fm_rank: rank `k` of the optimized FM projection `Y` (default `min(T, 8)`). Defaults to
            `None`.
        hidden_units: width of the FM block's hidden layer (default `n_F * D`). Defaults to `None`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, num_tokens, token_dim)` tensor, `num_tokens >= 2`.

    Example:
    >>> x = keras.random.normal((2, 4, 8))
    >>> keras_unimixer.layers.WukongMixing()(x).shape
    (2, 4, 8)

    References:
        - [Wukong: Towards a Scaling Law for Large-Scale Recommendation](https://arxiv.org/abs/2403.02545)
    """

    default_norm = "post"

    def __init__(
        self,
        fm_tokens: int | None = None,
        fm_rank: int | None = None,
        hidden_units: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.fm_tokens = None if fm_tokens is None else check_positive_int("fm_tokens", fm_tokens)
        self.fm_rank = None if fm_rank is None else check_positive_int("fm_rank", fm_rank)
        self.hidden_units = (
            None if hidden_units is None else check_positive_int("hidden_units", hidden_units)
        )

    def build(self, input_shape: Shape) -> None:
        tokens, dim = self.set_token_shape(input_shape)
        if tokens < 2:
            raise ValueError(f"WukongMixing needs at least 2 tokens (FM and LCB), got {tokens}.")
        self.num_fm_tokens = self.fm_tokens or (tokens + 1) // 2
        if not 1 <= self.num_fm_tokens < tokens:
            raise ValueError(
                f"`fm_tokens`={self.fm_tokens} must be in 1..{tokens - 1} (T = {tokens})."
            )
        self.num_compressed_tokens = tokens - self.num_fm_tokens
        self.rank = self.fm_rank or min(tokens, 8)
        self.hidden = self.hidden_units or self.num_fm_tokens * dim
        fm_width = tokens * self.rank
        self.fm_projection = self.add_weight(
            name="fm_projection", shape=(tokens, self.rank), initializer="glorot_uniform"
        )
        self.fm_norm = keras.layers.LayerNormalization(name="fm_norm", dtype=self.dtype_policy)
        self.fm_norm.build((None, fm_width))
        self.fm_hidden = keras.layers.Dense(
            self.hidden, activation="relu", name="fm_hidden", dtype=self.dtype_policy
        )
        self.fm_hidden.build((None, fm_width))
        self.fm_output = keras.layers.Dense(
            self.num_fm_tokens * dim, name="fm_output", dtype=self.dtype_policy
        )
        self.fm_output.build((None, self.hidden))
        self.compression = self.add_weight(
            name="compression",
            shape=(self.num_compressed_tokens, tokens),
            initializer="glorot_uniform",
        )

    def call(self, inputs: Tensor) -> Tensor:
        projected = ops.einsum("btd,tk->bdk", inputs, self.fm_projection)  # X^T Y
        interactions = ops.einsum("btd,bdk->btk", inputs, projected)  # X (X^T Y)
        flat = ops.reshape(interactions, (-1, self.num_tokens * self.rank))
        fm_tokens = self.fm_output(self.fm_hidden(self.fm_norm(flat)))
        fm_tokens = ops.reshape(fm_tokens, (-1, self.num_fm_tokens, self.token_dim))
        compressed = ops.einsum("lt,btd->bld", self.compression, inputs)
        return ops.concatenate([fm_tokens, compressed], axis=1)

    def num_params(self) -> int:
        tokens, dim = self.num_tokens, self.token_dim
        fm_width = tokens * self.rank
        return (
            tokens * self.rank  # Y
            + 2 * fm_width  # LayerNorm
            + fm_width * self.hidden
            + self.hidden  # hidden layer
            + self.hidden * self.num_fm_tokens * dim
            + self.num_fm_tokens * dim  # output layer
            + self.num_compressed_tokens * tokens  # W_L
        )

    def flops_per_example(self) -> int:
        tokens, dim = self.num_tokens, self.token_dim
        fm = 2 * 2 * tokens * dim * self.rank
        mlp = 2 * tokens * self.rank * self.hidden + 2 * self.hidden * self.num_fm_tokens * dim
        return fm + mlp + 2 * self.num_compressed_tokens * tokens * dim

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "fm_tokens": self.fm_tokens,
                "fm_rank": self.fm_rank,
                "hidden_units": self.hidden_units,
            }
        )
        return config


register_mixer(
    "wukong",
    lambda num_tokens, token_dim: WukongMixing(),
    norm="post",
    description="Wukong: FM block (X X^T Y -> MLP) beside a linear compression block, post-norm",
)
