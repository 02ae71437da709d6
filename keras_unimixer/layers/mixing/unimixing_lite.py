"""UniMixing-Lite: local matrices composed from a shared basis and a low-rank global matrix."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_unimixer.layers.initializers import (
    CircularFactor,
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
    check_positive_int,
)

BASIS_COEFFICIENTS = ("softmax", "raw")


@keras.saving.register_keras_serializable(package="keras_unimixer")
class UniMixingLite(ConstrainedMixing):
    """UniMixing-Lite: basis-composed local weights and a low-rank global weight.

    `W_B[i] = C(sum_j softmax(omega_i)_j * E_j)` with `num_basis` shared basis matrices `E_j`
    `(b, b)` and per-block coefficients `omega` `(n, num_basis)`; `W_G = C(A @ B^T)` with `A, B`
    `(n, rank)`. `C` is the same constraint pipeline as `UniMixing` (symmetry, temperature,
    Sinkhorn). Trainable parameters: `num_basis * b^2 + n * num_basis + 2 * n * rank`.

    Args:
        block_size: int. Size `b` of each block; must divide `T * D`.
        num_basis: int. Number of shared local basis matrices. Defaults to `4`.
        rank: int or `"full"`. Rank of the global factorization, at most the number of blocks; or
            `"full"`: one unfactorized `(n, n)` global matrix (`n^2` parameters instead of
            `2 n r`). Defaults to `4`.
        symmetric: bool. Symmetrize both matrices before the other constraints. Defaults to `True`.
        temperature: float or `None`. Initial temperature (see `UniMixing`), or `None` to use raw
            matrices. Defaults to `1.0`.
        sinkhorn_iterations: int. Sinkhorn-Knopp rounds; 0 turns the constraint off. Defaults to
            `10`.
        constrain_local: bool. Apply the constraints to the local matrices as well as the global
            one. Defaults to `True`.
        local_init: str. `"identity"` (every basis matrix starts as `init_scale * I` plus its own
            noise of `init_stddev`: identical bases would give the coefficients `omega` no gradient)
            or `"random"`. Defaults to `"identity"`.
        global_init: str. `"random"` (`A`, `B` normal), `"identity"` or `"permutation"` (RankMixer's
            `Pi`): low-rank factors whose product peaks on the target (`circular_factors`, needs
            `rank >= 2`), plus noise of `init_stddev`; with `rank="full"`, the matrix itself
            (`"identity"` plus that noise, `"permutation"` exact). Defaults to `"random"`.
        init_stddev: float. Standard deviation of the random initializations (`A`, `B`, `omega`).
            Defaults to `0.1`.
        init_scale: float. Logit value of the identity / permutation starts, as in `UniMixing`.
            Defaults to `1.0`.
        sinkhorn_tolerance: float. As in `UniMixing`. Defaults to `1e-3`.
        sinkhorn_max_iterations: int. As in `UniMixing`. Defaults to `300`.
        normalization: str. As in `UniMixing`. Defaults to `"sinkhorn"`.
        normalize_across_blocks: bool. As in `UniMixing`. Defaults to `False`.
        basis_coefficients: str. How `omega` combines the basis: `"softmax"` (a convex
            combination) or `"raw"` (the raw coefficients, a signed linear combination). Defaults
            to `"softmax"`.
        transpose_tokens: bool. As in `UniMixing`. Defaults to `False`.
        learning_rate_multiplier: float. As in `UniMixing`. Defaults to `1.0`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, num_tokens, token_dim)` tensor.

    Example:
    >>> x = keras.random.normal((2, 4, 8))
    >>> keras_unimixer.layers.UniMixingLite(block_size=4, num_basis=2, rank=2)(x).shape
    (2, 4, 8)

    References:
        - [UniMixer: A Unified Architecture for Scaling Laws in Recommendation Systems](https://arxiv.org/abs/2604.00590)
    """

    def __init__(
        self,
        block_size: int,
        num_basis: int = 4,
        rank: int | str = 4,
        symmetric: bool = True,
        temperature: float | None = 1.0,
        sinkhorn_iterations: int = 10,
        constrain_local: bool = True,
        local_init: str = "identity",
        init_stddev: float = 0.1,
        global_init: str = "random",
        init_scale: float = 1.0,
        sinkhorn_tolerance: float = 1e-3,
        sinkhorn_max_iterations: int = 300,
        normalization: str = "sinkhorn",
        normalize_across_blocks: bool = False,
        transpose_tokens: bool = False,
        learning_rate_multiplier: float = 1.0,
        basis_coefficients: str = "softmax",
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
        self.num_basis = check_positive_int("num_basis", num_basis)
        self.rank = "full" if rank == "full" else check_positive_int("rank", rank)
        self.basis_coefficients = check_choice(
            "basis_coefficients", basis_coefficients, BASIS_COEFFICIENTS
        )
        self.local_init = check_choice("local_init", local_init, LOCAL_INITS)
        self.global_init = check_choice("global_init", global_init, GLOBAL_INITS)
        self.init_stddev = check_positive_float("init_stddev", init_stddev)
        self.init_scale = check_positive_float("init_scale", init_scale)
        if self.global_init != "random" and self.rank != "full" and self.rank < 2:
            raise ValueError(
                f"`global_init`={global_init!r} needs `rank` >= 2 (a rank-1 logit matrix cannot "
                f"peak on a permutation), got rank={rank}."
            )

    def build_mixing_weights(self) -> None:
        if self.rank != "full" and self.rank > self.num_blocks:
            raise ValueError(
                f"`rank`={self.rank} must be at most the number of blocks "
                f"n = T * D / block_size = {self.num_blocks}; valid values: 1..{self.num_blocks}."
            )
        random_init = keras.initializers.RandomNormal(stddev=self.init_stddev)
        basis_init = (
            StackedIdentity(self.init_scale, noise_stddev=self.init_stddev)
            if self.local_init == "identity"
            else random_init
        )
        self.local_basis = self.add_mixing_weight(
            name="local_basis",
            shape=(self.num_basis, self.block_size, self.block_size),
            initializer=basis_init,
        )
        self.local_coefficients = self.add_mixing_weight(
            name="local_coefficients",
            shape=(self.num_blocks, self.num_basis),
            initializer=random_init,
        )
        if self.rank == "full":
            self.global_kernel = self.add_mixing_weight(
                name="global_kernel",
                shape=(self.num_blocks, self.num_blocks),
                initializer=self._full_global_initializer(random_init),
            )
            return
        left_init = right_init = random_init
        if self.global_init != "random":
            target = self._target_permutation() if self.global_init == "permutation" else None
            left_init, right_init = (
                CircularFactor(side, self.init_scale, target, noise_stddev=self.init_stddev)
                for side in ("left", "right")
            )
        self.global_left = self.add_mixing_weight(
            name="global_left",
            shape=(self.num_blocks, self.rank),
            initializer=left_init,
        )
        self.global_right = self.add_mixing_weight(
            name="global_right",
            shape=(self.num_blocks, self.rank),
            initializer=right_init,
        )

    def _full_global_initializer(self, random_init):
        if self.global_init == "identity":
            return StackedIdentity(self.init_scale, noise_stddev=self.init_stddev)
        if self.global_init == "permutation":
            return TokenMixingPermutation(*self._target_permutation(), scale=self.init_scale)
        return random_init

    def global_logits(self) -> Tensor:
        if self.rank == "full":
            return self.mixing_parameter(self.global_kernel)
        return ops.matmul(
            self.mixing_parameter(self.global_left),
            ops.transpose(self.mixing_parameter(self.global_right)),
        )

    def local_logits(self) -> Tensor:
        mixture = self.mixing_parameter(self.local_coefficients)
        if self.basis_coefficients == "softmax":
            mixture = ops.softmax(mixture, axis=-1)
        return ops.einsum("nk,kij->nij", mixture, self.mixing_parameter(self.local_basis))

    @staticmethod
    def closed_form_params(
        num_tokens: int, token_dim: int, block_size: int, num_basis: int, rank: int
    ) -> int:
        """Trainable parameters: `nb * b^2 + n * nb + 2 * n * r` (`n^2` for the global part
        with `rank="full"`)."""
        num_blocks = num_tokens * token_dim // block_size
        global_params = num_blocks**2 if rank == "full" else 2 * num_blocks * rank
        return num_basis * block_size**2 + num_blocks * num_basis + global_params

    def num_params(self) -> int:
        self._require_built()
        return self.closed_form_params(
            self.num_tokens, self.token_dim, self.block_size, self.num_basis, self.rank
        )

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "num_basis": self.num_basis,
                "rank": self.rank,
                "local_init": self.local_init,
                "global_init": self.global_init,
                "init_stddev": self.init_stddev,
                "init_scale": self.init_scale,
                "basis_coefficients": self.basis_coefficients,
            }
        )
        return config


def _build_unimixing_lite(
    num_tokens,
    token_dim,
    block_size=None,
    num_basis=4,
    rank=4,
    temperature=1.0,
    sinkhorn_iterations=10,
    mixing_options=None,
):
    block_size = block_size or default_block_size(num_tokens, token_dim)
    num_blocks = num_tokens * token_dim // block_size if block_size else 0
    options = checked_options(UniMixingLite, mixing_options)
    temperature, sinkhorn_iterations = resolved_constraints(
        temperature, sinkhorn_iterations, options
    )
    return UniMixingLite(
        block_size=block_size,
        num_basis=num_basis,
        rank=rank if rank == "full" else min(rank, max(num_blocks, 1)),  # capped at n
        temperature=temperature,
        sinkhorn_iterations=sinkhorn_iterations,
        **options,
    )


register_mixer(
    "unimixer_lite",
    _build_unimixing_lite,
    options=CONSTRAINED_OPTIONS + ("num_basis", "rank"),
    norm="siamese",
    space={"block_size": None, "num_basis": [2, 4, 8], "rank": [2, 4, 8]},
    annealed=True,
    description="UniMixer-Lite: basis-composed W_B, low-rank W_G, SiameseNorm",
)
