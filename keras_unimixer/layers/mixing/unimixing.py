"""UniMixing: learned, constrained block mixing with a local matrix per block."""

from __future__ import annotations

from typing import Any

import keras

from keras_unimixer.layers.initializers import (
    StackedIdentity,
    TokenMixingPermutation,
)
from keras_unimixer.layers.mixing.base import register_mixer
from keras_unimixer.layers.mixing.constrained import (
    CONSTRAINED_OPTIONS,
    GLOBAL_INITS,
    LOCAL_INITS,
    ConstrainedMixing,
    checked_options,
    default_block_size,
    resolved_constraints,
)
from keras_unimixer.utils.types import Tensor
from keras_unimixer.utils.validation import (
    check_choice,
    check_positive_float,
)


@keras.saving.register_keras_serializable(package="keras_unimixer")
class UniMixing(ConstrainedMixing):
    """Generalized parameterized feature mixing.

    The flattened sample (length `L = T * D`) is cut into `n = L / block_size` blocks `x_i`. Each
    block gets its own local matrix (`h_i = x_i @ W_B[i]`), then a global matrix mixes the blocks
    (`y = W_G @ [h_1; ...; h_n]`). Both are learned under the constraints, applied to the raw
    parameters at every call: symmetry `(M + M^T) / 2`, temperature `exp(M / tau)` and Sinkhorn
    normalization (doubly stochastic). `block_size` is free, so the number of mixed blocks is not
    tied to the number of tokens.

    With `block_size = D / H`, identity local weights and `W_G = Pi` (see
    `token_mixing_permutation`) and no constraints, it computes `TokenMixing(H)` exactly.

    Args:
        block_size: int. Size `b` of each block; must divide `T * D`.
        symmetric: bool. Symmetrize both matrices before the other constraints. Defaults to `True`.
        temperature: float or `None`. Initial value of the temperature `tau` (a non-trainable
            variable, annealed by `keras_unimixer.callbacks.TemperatureAnnealing`), or `None` for no
            temperature and no `exp`: the raw matrices are used (then `sinkhorn_iterations` must be
            0). Defaults to `1.0`.
        sinkhorn_iterations: int. Differentiable Sinkhorn-Knopp rounds (the gradient flows through
            them); 0 turns the doubly-stochastic constraint off. Defaults to `10`.
        block_specific: bool. One local matrix per block (`True`) or one shared by all blocks.
            Defaults to `True`.
        constrain_local: bool. Apply the constraints to the local matrices as well as the global
            one. Defaults to `True`.
        global_init: str. `"random"`, `"identity"` or `"permutation"` (RankMixer's `Pi`, which needs
            `block_size` to divide `D`, and `symmetric=False` unless `T == H`) for the raw global
            parameters: `"permutation"` starts the layer AS RankMixer's TokenMixing (sharply so for
            a large `init_scale`). Defaults to `"random"`.
        local_init: str. `"identity"` or `"random"` for the raw local parameters. Defaults to
            `"identity"`.
        init_stddev: float. Standard deviation of the `"random"` initializations. Defaults to `0.1`.
        init_scale: float. Logit value of the `"identity"` / `"permutation"` starts (`scale * I`):
            at temperature 1 a block keeps `e^s / (e^s + n - 1)` of itself, so a small scale starts
            near the uniform (averaging) matrix and a large one near the target. Defaults to `1.0`.
        sinkhorn_tolerance: float. Before the differentiable rounds, the logits are balanced
            without gradient until every row sums to 1 within this tolerance (columns are exact),
            or for at most `sinkhorn_max_iterations` rounds. Defaults to `1e-3`.
        sinkhorn_max_iterations: int. The most rounds of that balancing phase; 0: no such phase,
            only the fixed rounds (then rows are off by 0.06 at temperature 0.05 and logit std
            0.3). Defaults to `300`.
        normalization: str. `"sinkhorn"` (symmetry, temperature, Sinkhorn: doubly stochastic,
            positive matrices) or `"l2"` (signed matrices, each row divided by its L2 norm after
            the symmetry; then `temperature` must be `None` and `sinkhorn_iterations` 0).
            Defaults to `"sinkhorn"`.
        normalize_across_blocks: bool. Standardize each coordinate over the blocks between the
            local and the global step (a parameter-free LayerNorm across blocks; the layer is
            then no longer linear and has no `mixing_matrix`). Defaults to `False`.
        transpose_tokens: bool. Apply RankMixer's fixed token transpose (`T` heads per token,
            so `T` must divide `D`) to the input before the learned mixing. Defaults to `False`.
        learning_rate_multiplier: float. The mixing parameters are stored divided by it and
            multiplied back when read: under Adam (whose steps do not depend on the gradient's
            scale) they then learn this many times faster than the rest of the model, at the same
            start. Defaults to `1.0`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, num_tokens, token_dim)` tensor.

    Example:
    >>> x = keras.random.normal((2, 4, 8))
    >>> keras_unimixer.layers.UniMixing(block_size=16)(x).shape  # 32 / 16 = 2 blocks, 4 tokens
    (2, 4, 8)

    References:
        - [UniMixer: A Unified Architecture for Scaling Laws in Recommendation Systems](https://arxiv.org/abs/2604.00590)
        - Sinkhorn-Knopp balancing: [Sinkhorn distances: lightspeed computation of optimal
          transport](https://arxiv.org/abs/1306.0895)
    """

    def __init__(
        self,
        block_size: int,
        symmetric: bool = True,
        temperature: float | None = 1.0,
        sinkhorn_iterations: int = 10,
        block_specific: bool = True,
        constrain_local: bool = True,
        global_init: str = "random",
        local_init: str = "identity",
        init_stddev: float = 0.1,
        init_scale: float = 1.0,
        sinkhorn_tolerance: float = 1e-3,
        sinkhorn_max_iterations: int = 300,
        normalization: str = "sinkhorn",
        normalize_across_blocks: bool = False,
        transpose_tokens: bool = False,
        learning_rate_multiplier: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            block_size=block_size,
            symmetric=symmetric,
            temperature=temperature,
            sinkhorn_iterations=sinkhorn_iterations,
            constrain_local=constrain_local,
            sinkhorn_tolerance=sinkhorn_tolerance,
            sinkhorn_max_iterations=sinkhorn_max_iterations,
            normalization=normalization,
            normalize_across_blocks=normalize_across_blocks,
            transpose_tokens=transpose_tokens,
            learning_rate_multiplier=learning_rate_multiplier,
            **kwargs,
        )
        self.block_specific = bool(block_specific)
        self.global_init = check_choice("global_init", global_init, GLOBAL_INITS)
        self.local_init = check_choice("local_init", local_init, LOCAL_INITS)
        self.init_stddev = check_positive_float("init_stddev", init_stddev)
        self.init_scale = check_positive_float("init_scale", init_scale)

    def _global_initializer(self):
        if self.global_init == "identity":
            return StackedIdentity(self.init_scale)
        if self.global_init == "permutation":
            return TokenMixingPermutation(*self._target_permutation(), scale=self.init_scale)
        return keras.initializers.RandomNormal(stddev=self.init_stddev)

    def _local_initializer(self):
        if self.local_init == "identity":
            return StackedIdentity(self.init_scale)
        return keras.initializers.RandomNormal(stddev=self.init_stddev)

    def build_mixing_weights(self) -> None:
        num_blocks, block_size = self.num_blocks, self.block_size
        self.global_kernel = self.add_mixing_weight(
            name="global_kernel",
            shape=(num_blocks, num_blocks),
            initializer=self._global_initializer(),
        )
        local_shape = (
            (num_blocks, block_size, block_size)
            if self.block_specific
            else (
                block_size,
                block_size,
            )
        )
        self.local_kernel = self.add_mixing_weight(
            name="local_kernel",
            shape=local_shape,
            initializer=self._local_initializer(),
        )

    def global_logits(self) -> Tensor:
        return self.mixing_parameter(self.global_kernel)

    def local_logits(self) -> Tensor:
        return self.mixing_parameter(self.local_kernel)

    @staticmethod
    def closed_form_params(
        num_tokens: int, token_dim: int, block_size: int, block_specific: bool = True
    ) -> int:
        """Trainable parameters: `n^2 + n * b^2` (`n^2 + b^2` when the local matrix is shared)."""
        num_blocks = num_tokens * token_dim // block_size
        local = block_size**2 * (num_blocks if block_specific else 1)
        return num_blocks**2 + local

    def num_params(self) -> int:
        self._require_built()
        return self.closed_form_params(
            self.num_tokens, self.token_dim, self.block_size, self.block_specific
        )

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "block_specific": self.block_specific,
                "global_init": self.global_init,
                "local_init": self.local_init,
                "init_stddev": self.init_stddev,
                "init_scale": self.init_scale,
            }
        )
        return config


def _build_unimixing(
    num_tokens,
    token_dim,
    block_size=None,
    temperature=1.0,
    sinkhorn_iterations=10,
    mixing_options=None,
):
    options = checked_options(UniMixing, mixing_options)
    temperature, sinkhorn_iterations = resolved_constraints(
        temperature, sinkhorn_iterations, options
    )
    return UniMixing(
        block_size=block_size or default_block_size(num_tokens, token_dim),
        temperature=temperature,
        sinkhorn_iterations=sinkhorn_iterations,
        **options,
    )


register_mixer(
    "unimixer",
    _build_unimixing,
    options=CONSTRAINED_OPTIONS,
    norm="siamese",
    space={"block_size": None},
    annealed=True,
    description="UniMixer: UniMixing (learned W_G, block-specific W_B), SiameseNorm",
)
