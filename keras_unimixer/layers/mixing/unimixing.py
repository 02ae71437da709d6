"""UniMixing and UniMixing-Lite: learned, Sinkhorn-constrained block mixing (spec sections 4, 6)."""

from __future__ import annotations

import contextlib
import inspect
import math
import warnings

import keras
import numpy as np
from keras import ops
from keras.src.backend.common import global_state  # the layer call context (`training`)

from keras_unimixer.layers.constraints import constrain_matrix
from keras_unimixer.layers.initializers import (
    CircularFactor,
    StackedIdentity,
    TokenMixingPermutation,
    token_mixing_permutation,
)
from keras_unimixer.layers.mixing.base import MixingLayer, register_mixer
from keras_unimixer.layers.validation import (
    check_choice,
    check_non_negative_int,
    check_positive_float,
    check_positive_int,
    divisors,
)


def _block_matrix(global_matrix, local_matrices):
    """The `(L, L)` matrix of `out_i = sum_j W_G[i, j] * (x_j @ W_B[j])`.

    Block `(i, j)` is `W_G[i, j] * W_B[j]^T`. `global_matrix` is `(..., n, n)`, `local_matrices` is
    `(..., n, b, b)`; leading axes (a batch) are carried through.
    """
    num_blocks = global_matrix.shape[-1]
    block_size = local_matrices.shape[-1]
    blocks = ops.einsum("...ij,...jlk->...ikjl", global_matrix, local_matrices)
    size = num_blocks * block_size
    return ops.reshape(blocks, tuple(blocks.shape[:-4]) + (size, size))


_warned_unscheduled = False


def _in_training_call() -> bool:
    """Whether the current Keras layer call runs with `training=True` (e.g. inside `fit`)."""
    context = global_state.get_global_attribute("current_call_ctx")
    return bool(context is not None and context.training)


class _ConstrainedMixing(MixingLayer):
    """Shared machinery of `UniMixing` and `UniMixingLite`: blocks, constraints, temperature."""

    default_norm = "siamese"
    token_major_backends = ("jax", "tensorflow")

    def __init__(
        self,
        block_size: int,
        symmetric: bool = True,
        temperature: float | None = 1.0,
        sinkhorn_iterations: int = 10,
        constrain_local: bool = True,
        sinkhorn_tolerance: float = 1e-3,
        sinkhorn_max_iterations: int = 300,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.block_size = check_positive_int("block_size", block_size)
        self.symmetric = bool(symmetric)
        self.temperature = (
            None if temperature is None else check_positive_float("temperature", temperature)
        )
        self.sinkhorn_iterations = check_non_negative_int(
            "sinkhorn_iterations", sinkhorn_iterations
        )
        if self.temperature is None and self.sinkhorn_iterations:
            raise ValueError(
                f"`sinkhorn_iterations`={sinkhorn_iterations} needs a `temperature` (Sinkhorn "
                "balances exp(M / temperature), which is positive); pass temperature=1.0, or "
                "sinkhorn_iterations=0 to use the raw matrices unconstrained."
            )
        self.constrain_local = bool(constrain_local)
        self.sinkhorn_tolerance = check_positive_float("sinkhorn_tolerance", sinkhorn_tolerance)
        self.sinkhorn_max_iterations = check_non_negative_int(
            "sinkhorn_max_iterations", sinkhorn_max_iterations
        )
        self._frozen_weights = None
        # Set by `callbacks.TemperatureAnnealing` (or `mark_temperature_scheduled`); training
        # without it warns once, since the temperature then stays at its initial value.
        self.temperature_scheduled = False

    def build(self, input_shape):
        self.set_token_shape(input_shape)
        flat_size = self.num_tokens * self.token_dim
        if flat_size % self.block_size:
            raise ValueError(
                f"`block_size`={self.block_size} must divide num_tokens * token_dim = "
                f"{self.num_tokens} * {self.token_dim} = {flat_size}; valid values: "
                f"{divisors(flat_size)}."
            )
        self.num_blocks = flat_size // self.block_size
        if self.temperature is None:
            self.temperature_variable = None
        else:
            self.temperature_variable = self.add_weight(
                name="temperature",
                shape=(),
                initializer=keras.initializers.Constant(self.temperature),
                trainable=False,
                autocast=False,
            )
        self.build_mixing_weights()

    def build_mixing_weights(self):
        raise NotImplementedError

    def global_logits(self):
        """Raw `(n, n)` global parameters, before the constraints."""
        raise NotImplementedError

    def local_logits(self):
        """Raw `(n, b, b)` (or shared `(b, b)`) local parameters, before the constraints."""
        raise NotImplementedError

    def _constrain(self, logits, apply: bool = True):
        if not apply:
            return ops.cast(logits, "float32")
        temperature = None if self.temperature_variable is None else self.temperature_variable
        return constrain_matrix(
            logits,
            symmetric=self.symmetric,
            temperature=temperature,
            sinkhorn_iterations=self.sinkhorn_iterations,
            sinkhorn_tolerance=self.sinkhorn_tolerance,
            sinkhorn_max_iterations=self.sinkhorn_max_iterations,
        )

    def _warn_if_unscheduled(self):
        global _warned_unscheduled
        if _warned_unscheduled or self.temperature is None or self.temperature_scheduled:
            return
        if not _in_training_call():
            return
        _warned_unscheduled = True
        warnings.warn(
            f"{type(self).__name__} layer {self.name!r} is being trained at a constant temperature "
            f"{self.temperature:g}: nothing anneals it. Pass "
            "keras_unimixer.callbacks.TemperatureAnnealing(start, end) to fit(), or call "
            "keras_unimixer.callbacks.mark_temperature_scheduled(model) if the constant "
            "temperature is intended. (Warned once per process.)",
            stacklevel=2,
        )

    def _target_permutation(self):
        """RankMixer's `Pi` for this layer's blocks (`block_size` must divide `token_dim`);
        refused with `symmetric=True` unless `Pi` is symmetric (`T == H`): a symmetrized matrix can
        only represent `(Pi + Pi^T) / 2`, not `Pi`."""
        if self.token_dim % self.block_size:
            raise ValueError(
                f"`global_init`='permutation' needs `block_size` to divide token_dim="
                f"{self.token_dim} (so each token splits into heads); got block_size="
                f"{self.block_size}; valid values: {divisors(self.token_dim)}."
            )
        num_heads = self.token_dim // self.block_size
        permutation = token_mixing_permutation(self.num_tokens, num_heads)
        if self.symmetric and not np.array_equal(permutation, permutation.T):
            raise ValueError(
                f"`global_init`='permutation' with `symmetric`=True: RankMixer's permutation for "
                f"T={self.num_tokens} tokens and H={num_heads} heads is not symmetric (T != H), "
                "and the symmetry constraint can only represent (Pi + Pi^T) / 2. Pass "
                f"symmetric=False, or block_size = token_dim / T = "
                f"{self.token_dim / self.num_tokens:g} so that H == T."
            )
        return self.num_tokens, num_heads

    def global_weights(self):
        """The effective global matrix `W_G`, `(n, n)`, float32."""
        return self._constrain(self.global_logits())

    def local_weights(self):
        """The effective local matrices `W_B`, `(n, b, b)` or shared `(b, b)`, float32."""
        return self._constrain(self.local_logits(), apply=self.constrain_local)

    def _mix_blocks(self, blocks):
        """`(n, batch, b)` blocks -> mixed `(n, batch, b)` blocks: the local step is one batched
        matmul over blocks, the global step one plain `(n, n) @ (n, batch * b)` matmul. (Einsums
        over a batch-major layout were ~15x slower on CPU: they broadcast W_G over the batch.)"""
        if self._frozen_weights is None:
            self._warn_if_unscheduled()
            global_weights, local_weights = self.global_weights(), self.local_weights()
        else:
            global_weights, local_weights = self._frozen_weights
        global_weights = ops.cast(global_weights, self.compute_dtype)
        local_weights = ops.cast(local_weights, self.compute_dtype)
        local_out = ops.matmul(blocks, local_weights)
        mixed = ops.matmul(global_weights, ops.reshape(local_out, (self.num_blocks, -1)))
        return ops.reshape(mixed, (self.num_blocks, -1, self.block_size))

    def call(self, inputs):
        blocks = ops.reshape(inputs, (-1, self.num_blocks, self.block_size))
        mixed = self._mix_blocks(ops.transpose(blocks, (1, 0, 2)))
        return ops.reshape(ops.transpose(mixed, (1, 0, 2)), (-1, self.num_tokens, self.token_dim))

    def call_token_major(self, inputs):
        """`(T, batch, D)` in and out. A block lies inside one token (`b` divides `D`: `D / b`
        blocks per token) or spans whole tokens (`D` divides `b`); the blocks-first layout is then
        a reshape, plus a transpose of the batch with the blocks-per-token (or tokens-per-block)
        axis only where that axis is longer than 1. Otherwise (blocks straddle tokens) this
        transposes to `(batch, T, D)` and back."""
        num_tokens, token_dim, block_size = self.num_tokens, self.token_dim, self.block_size
        if token_dim % block_size == 0:  # (T, batch, D / b, b) <-> (T, D / b, batch, b)
            group = token_dim // block_size
            grouped = (num_tokens, -1, group, block_size)
        elif block_size % token_dim == 0:  # (n, b / D, batch, D) <-> (n, batch, b / D, D)
            group = block_size // token_dim
            grouped = (self.num_blocks, group, -1, token_dim)
        else:
            return super().call_token_major(inputs)
        blocks = ops.reshape(inputs, grouped)
        if group > 1:
            blocks = ops.transpose(blocks, (0, 2, 1, 3))
        mixed = self._mix_blocks(ops.reshape(blocks, (self.num_blocks, -1, block_size)))
        if group > 1:
            swapped = (grouped[0], grouped[2], grouped[1], grouped[3])
            mixed = ops.transpose(ops.reshape(mixed, swapped), (0, 2, 1, 3))
        return ops.reshape(mixed, (num_tokens, -1, token_dim))

    def flops_per_example(self) -> int:
        """`2 L b` (local) + `2 L n` (global); the constraints' per-batch cost is left out."""
        flat_size = self.num_tokens * self.token_dim
        return 2 * flat_size * self.block_size + 2 * flat_size * self.num_blocks

    def mixing_matrix(self):
        """The effective `(L, L)` matrix `M` with `flat(out) = M @ flat(x)` (float32)."""
        local_weights = self.local_weights()
        if len(local_weights.shape) == 2:
            local_weights = ops.broadcast_to(
                local_weights, (self.num_blocks, self.block_size, self.block_size)
            )
        return _block_matrix(self.global_weights(), local_weights)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "block_size": self.block_size,
                "symmetric": self.symmetric,
                "temperature": self.temperature,
                "sinkhorn_iterations": self.sinkhorn_iterations,
                "constrain_local": self.constrain_local,
                "sinkhorn_tolerance": self.sinkhorn_tolerance,
                "sinkhorn_max_iterations": self.sinkhorn_max_iterations,
            }
        )
        return config


def mixing_layers(model) -> list:
    """Every `UniMixing` / `UniMixingLite` layer of `model` (a model or a layer), nested ones
    included, in order."""
    found = []

    def visit(layer):
        if isinstance(layer, _ConstrainedMixing):
            found.append(layer)
        for child in getattr(layer, "_layers", None) or []:
            visit(child)

    visit(model)
    return list(dict.fromkeys(found))


@contextlib.contextmanager
def frozen_mixing_weights(model):
    """Inside this block, UniMixing layers use their constrained matrices as constants.

    On entry, `W_G` and `W_B` of every `UniMixing` / `UniMixingLite` layer in `model` (a model or
    a layer, searched recursively) are computed once (symmetry, temperature, Sinkhorn) and held as
    NumPy arrays; calls inside the block use them instead of recomputing the constraints from the
    raw parameters at every call. The outputs are the same; what changes is that a graph traced
    inside the block (e.g. by `model.export`) holds the two matrices as constants, so serving pays
    nothing for the constraints, whose cost does not shrink with the batch. Not for training:
    gradients do not reach the raw parameters inside the block. On exit the layers compute the
    matrices from their live weights again. When `model` is a `keras.Model`, its compiled
    `predict` / `evaluate` / `fit` functions are dropped on entry and on exit, so none traced
    inside the block (with the frozen matrices baked in) outlives it; pass the outermost model.

    Args:
        model: a `keras.Model` or `keras.layers.Layer`.

    Example:
    >>> layer = keras_unimixer.layers.UniMixing(block_size=8)
    >>> x = keras.random.normal((2, 4, 8))
    >>> with keras_unimixer.layers.frozen_mixing_weights(layer):
    ...     frozen = layer(x)
    >>> bool(keras.ops.all(keras.ops.isclose(frozen, layer(x), atol=1e-6)))
    True
    """
    built_layers = [layer for layer in mixing_layers(model) if layer.built]
    for layer in built_layers:
        layer._frozen_weights = (
            ops.convert_to_numpy(layer.global_weights()),
            ops.convert_to_numpy(layer.local_weights()),
        )
    _drop_compiled_functions(model)
    try:
        yield model
    finally:
        for layer in built_layers:
            layer._frozen_weights = None
        _drop_compiled_functions(model)


def _drop_compiled_functions(model):
    """Make Keras trace `predict`, `evaluate` and `fit` again at their next call."""
    if isinstance(model, keras.Model):
        for name in ("predict_function", "test_function", "train_function"):
            if getattr(model, name, None) is not None:
                setattr(model, name, None)


_GLOBAL_INITS = ("random", "identity", "permutation")
_LOCAL_INITS = ("random", "identity")


@keras.saving.register_keras_serializable(package="keras_unimixer")
class UniMixing(_ConstrainedMixing):
    """Generalized parameterized feature mixing (spec section 4).

    The flattened sample (length `L = T * D`) is cut into `n = L / block_size` blocks `x_i`. Each
    block gets its own local matrix (`h_i = x_i @ W_B[i]`), then a global matrix mixes the blocks
    (`y = W_G @ [h_1; ...; h_n]`). Both are learned under the constraints, applied to the raw
    parameters at every call: symmetry `(M + M^T) / 2`, temperature `exp(M / tau)` and Sinkhorn
    normalization (doubly stochastic). `block_size` is free, so the number of mixed blocks is not
    tied to the number of tokens.

    With `block_size = D / H`, identity local weights and `W_G = Pi` (see
    `token_mixing_permutation`) and no constraints, it computes `TokenMixing(H)` exactly.

    Args:
        block_size: size `b` of each block; must divide `T * D`.
        symmetric: symmetrize both matrices before the other constraints.
        temperature: initial value of the temperature `tau` (a non-trainable variable, annealed by
            `keras_unimixer.callbacks.TemperatureAnnealing`), or `None` for no temperature and no
            `exp`: the raw matrices are used (then `sinkhorn_iterations` must be 0).
        sinkhorn_iterations: differentiable Sinkhorn-Knopp rounds (the gradient flows through
            them); 0 turns the doubly-stochastic constraint off.
        block_specific: one local matrix per block (`True`) or one shared by all blocks.
        constrain_local: apply the constraints to the local matrices as well as the global one.
        global_init: `"random"`, `"identity"` or `"permutation"` (RankMixer's `Pi`, which needs
            `block_size` to divide `D`, and `symmetric=False` unless `T == H`) for the raw global
            parameters: `"permutation"` starts the layer AS RankMixer's TokenMixing (sharply so
            for a large `init_scale`).
        local_init: `"identity"` or `"random"` for the raw local parameters.
        init_stddev: standard deviation of the `"random"` initializations.
        init_scale: logit value of the `"identity"` / `"permutation"` starts (`scale * I`): at
            temperature 1 a block keeps `e^s / (e^s + n - 1)` of itself, so a small scale starts
            near the uniform (averaging) matrix and a large one near the target.
        sinkhorn_tolerance: before the differentiable rounds, the logits are balanced without
            gradient until every row sums to 1 within this tolerance (columns are exact)...
        sinkhorn_max_iterations: ...or for at most this many rounds (0: no such phase, only the
            fixed rounds: then rows are off by 0.06 at temperature 0.05 and logit std 0.3).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, num_tokens, token_dim)` tensor.

    Example:
    >>> x = keras.random.normal((2, 4, 8))
    >>> keras_unimixer.layers.UniMixing(block_size=16)(x).shape  # 32 / 16 = 2 blocks, 4 tokens
    (2, 4, 8)
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
        **kwargs,
    ):
        super().__init__(
            block_size=block_size,
            symmetric=symmetric,
            temperature=temperature,
            sinkhorn_iterations=sinkhorn_iterations,
            constrain_local=constrain_local,
            sinkhorn_tolerance=sinkhorn_tolerance,
            sinkhorn_max_iterations=sinkhorn_max_iterations,
            **kwargs,
        )
        self.block_specific = bool(block_specific)
        self.global_init = check_choice("global_init", global_init, _GLOBAL_INITS)
        self.local_init = check_choice("local_init", local_init, _LOCAL_INITS)
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

    def build_mixing_weights(self):
        num_blocks, block_size = self.num_blocks, self.block_size
        self.global_kernel = self.add_weight(
            name="global_kernel",
            shape=(num_blocks, num_blocks),
            initializer=self._global_initializer(),
            autocast=False,
        )
        local_shape = (
            (num_blocks, block_size, block_size)
            if self.block_specific
            else (
                block_size,
                block_size,
            )
        )
        self.local_kernel = self.add_weight(
            name="local_kernel",
            shape=local_shape,
            initializer=self._local_initializer(),
            autocast=False,
        )

    def global_logits(self):
        return self.global_kernel

    def local_logits(self):
        return self.local_kernel

    @staticmethod
    def closed_form_params(num_tokens, token_dim, block_size, block_specific=True):
        """Trainable parameters: `n^2 + n * b^2` (`n^2 + b^2` when the local matrix is shared)."""
        num_blocks = num_tokens * token_dim // block_size
        local = block_size**2 * (num_blocks if block_specific else 1)
        return num_blocks**2 + local

    def num_params(self) -> int:
        self._require_built()
        return self.closed_form_params(
            self.num_tokens, self.token_dim, self.block_size, self.block_specific
        )

    def get_config(self):
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


@keras.saving.register_keras_serializable(package="keras_unimixer")
class UniMixingLite(_ConstrainedMixing):
    """UniMixing-Lite: basis-composed local weights and a low-rank global weight (spec section 6).

    `W_B[i] = C(sum_j softmax(omega_i)_j * E_j)` with `num_basis` shared basis matrices `E_j`
    `(b, b)` and per-block coefficients `omega` `(n, num_basis)`; `W_G = C(A @ B^T)` with `A, B`
    `(n, rank)`. `C` is the same constraint pipeline as `UniMixing` (symmetry, temperature,
    Sinkhorn). Trainable parameters: `num_basis * b^2 + n * num_basis + 2 * n * rank`.

    Args:
        block_size: size `b` of each block; must divide `T * D`.
        num_basis: number of shared local basis matrices.
        rank: rank of the global factorization; at most the number of blocks.
        symmetric: symmetrize both matrices before the other constraints.
        temperature: initial temperature (see `UniMixing`), or `None` to use raw matrices.
        sinkhorn_iterations: Sinkhorn-Knopp rounds; 0 turns the constraint off.
        constrain_local: apply the constraints to the local matrices as well as the global one.
        local_init: `"identity"` (every basis matrix starts as `init_scale * I` plus its own
            noise of `init_stddev`: identical bases would give the coefficients `omega` no
            gradient) or `"random"`.
        global_init: `"random"` (`A`, `B` normal), `"identity"` or `"permutation"` (RankMixer's
            `Pi`): low-rank factors whose product peaks on the target (`circular_factors`,
            needs `rank >= 2`), plus noise of `init_stddev`.
        init_stddev: standard deviation of the random initializations (`A`, `B`, `omega`).
        init_scale: logit value of the identity / permutation starts, as in `UniMixing`.
        sinkhorn_tolerance: as in `UniMixing`.
        sinkhorn_max_iterations: as in `UniMixing`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, num_tokens, token_dim)` tensor.

    Example:
    >>> x = keras.random.normal((2, 4, 8))
    >>> keras_unimixer.layers.UniMixingLite(block_size=4, num_basis=2, rank=2)(x).shape
    (2, 4, 8)
    """

    def __init__(
        self,
        block_size: int,
        num_basis: int = 4,
        rank: int = 4,
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
        **kwargs,
    ):
        super().__init__(
            block_size=block_size,
            symmetric=symmetric,
            temperature=temperature,
            sinkhorn_iterations=sinkhorn_iterations,
            constrain_local=constrain_local,
            sinkhorn_tolerance=sinkhorn_tolerance,
            sinkhorn_max_iterations=sinkhorn_max_iterations,
            **kwargs,
        )
        self.num_basis = check_positive_int("num_basis", num_basis)
        self.rank = check_positive_int("rank", rank)
        self.local_init = check_choice("local_init", local_init, _LOCAL_INITS)
        self.global_init = check_choice("global_init", global_init, _GLOBAL_INITS)
        self.init_stddev = check_positive_float("init_stddev", init_stddev)
        self.init_scale = check_positive_float("init_scale", init_scale)
        if self.global_init != "random" and self.rank < 2:
            raise ValueError(
                f"`global_init`={global_init!r} needs `rank` >= 2 (a rank-1 logit matrix cannot "
                f"peak on a permutation), got rank={rank}."
            )

    def build_mixing_weights(self):
        if self.rank > self.num_blocks:
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
        left_init = right_init = random_init
        if self.global_init != "random":
            target = self._target_permutation() if self.global_init == "permutation" else None
            left_init, right_init = (
                CircularFactor(side, self.init_scale, target, noise_stddev=self.init_stddev)
                for side in ("left", "right")
            )
        self.local_basis = self.add_weight(
            name="local_basis",
            shape=(self.num_basis, self.block_size, self.block_size),
            initializer=basis_init,
            autocast=False,
        )
        self.local_coefficients = self.add_weight(
            name="local_coefficients",
            shape=(self.num_blocks, self.num_basis),
            initializer=random_init,
            autocast=False,
        )
        self.global_left = self.add_weight(
            name="global_left",
            shape=(self.num_blocks, self.rank),
            initializer=left_init,
            autocast=False,
        )
        self.global_right = self.add_weight(
            name="global_right",
            shape=(self.num_blocks, self.rank),
            initializer=right_init,
            autocast=False,
        )

    def global_logits(self):
        return ops.matmul(self.global_left, ops.transpose(self.global_right))

    def local_logits(self):
        mixture = ops.softmax(self.local_coefficients, axis=-1)
        return ops.einsum("nk,kij->nij", mixture, self.local_basis)

    @staticmethod
    def closed_form_params(num_tokens, token_dim, block_size, num_basis, rank):
        """Trainable parameters: `nb * b^2 + n * nb + 2 * n * r`."""
        num_blocks = num_tokens * token_dim // block_size
        return num_basis * block_size**2 + num_blocks * num_basis + 2 * num_blocks * rank

    def num_params(self) -> int:
        self._require_built()
        return self.closed_form_params(
            self.num_tokens, self.token_dim, self.block_size, self.num_basis, self.rank
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_basis": self.num_basis,
                "rank": self.rank,
                "local_init": self.local_init,
                "global_init": self.global_init,
                "init_stddev": self.init_stddev,
                "init_scale": self.init_scale,
            }
        )
        return config


def default_block_size(num_tokens: int, token_dim: int) -> int:
    """The divisor of `T * D` closest to `sqrt(T * D)`, where UniMixing's FLOPs are smallest."""
    flat_size = num_tokens * token_dim
    return min(divisors(flat_size), key=lambda b: (abs(math.log(b / math.sqrt(flat_size))), b))


def _checked_options(layer_class, options: dict | None) -> dict:
    """`mixing_options`: further constructor arguments of the layer, checked by name."""
    options = dict(options or {})
    # The layer's own arguments and those it passes on to `_ConstrainedMixing` (the Sinkhorn ones).
    allowed = set(inspect.signature(layer_class.__init__).parameters) | set(
        inspect.signature(_ConstrainedMixing.__init__).parameters
    )
    allowed -= {
        "self", "kwargs", "block_size", "num_basis", "rank", "temperature", "sinkhorn_iterations",
    }  # fmt: skip
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"`mixing_options` has keys {unknown} that {layer_class.__name__} does not take; "
            f"valid: {sorted(allowed)}."
        )
    return options


def _build_unimixing(
    num_tokens, token_dim, block_size=None, temperature=1.0, sinkhorn_iterations=10,
    mixing_options=None,
):  # fmt: skip
    return UniMixing(
        block_size=block_size or default_block_size(num_tokens, token_dim),
        temperature=temperature,
        sinkhorn_iterations=sinkhorn_iterations,
        **_checked_options(UniMixing, mixing_options),
    )


def _build_unimixing_lite(
    num_tokens, token_dim, block_size=None, num_basis=4, rank=4, temperature=1.0,
    sinkhorn_iterations=10, mixing_options=None,
):  # fmt: skip
    block_size = block_size or default_block_size(num_tokens, token_dim)
    num_blocks = num_tokens * token_dim // block_size if block_size else 0
    return UniMixingLite(
        block_size=block_size,
        num_basis=num_basis,
        rank=min(rank, max(num_blocks, 1)),  # capped at the number of blocks
        temperature=temperature,
        sinkhorn_iterations=sinkhorn_iterations,
        **_checked_options(UniMixingLite, mixing_options),
    )


_CONSTRAINED_OPTIONS = ("block_size", "temperature", "sinkhorn_iterations", "mixing_options")
register_mixer(
    "unimixer",
    _build_unimixing,
    options=_CONSTRAINED_OPTIONS,
    norm="siamese",
    space={"block_size": None},
    annealed=True,
    description="UniMixer: UniMixing (learned W_G, block-specific W_B), SiameseNorm",
)
register_mixer(
    "unimixer_lite",
    _build_unimixing_lite,
    options=_CONSTRAINED_OPTIONS + ("num_basis", "rank"),
    norm="siamese",
    space={"block_size": None, "num_basis": [2, 4, 8], "rank": [2, 4, 8]},
    annealed=True,
    description="UniMixer-Lite: basis-composed W_B, low-rank W_G, SiameseNorm",
)
