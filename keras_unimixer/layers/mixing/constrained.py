"""The machinery `UniMixing` and `UniMixingLite` share: blocks, constrained matrices (Sinkhorn),
the temperature, and the `mixing_options` check of their builders."""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any

import keras
import numpy as np
from keras import ops
from keras.src.backend.common import global_state  # the layer call context (`training`)

from keras_unimixer.layers.initializers import (
    Scaled,
    token_mixing_permutation,
)
from keras_unimixer.layers.mixing.base import MixingLayer
from keras_unimixer.layers.mixing.token_mixing import transpose_heads, transpose_heads_matrix
from keras_unimixer.ops.sinkhorn import constrain_matrix, l2_normalize_rows
from keras_unimixer.utils.types import Shape, Tensor
from keras_unimixer.utils.validation import (
    check_choice,
    check_non_negative_int,
    check_positive_float,
    check_positive_int,
    divisors,
)

NORMALIZATIONS = ("sinkhorn", "l2")
_ACROSS_BLOCKS_EPSILON = 1e-6


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


class ConstrainedMixing(MixingLayer):
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
        normalization: str = "sinkhorn",
        normalize_across_blocks: bool = False,
        transpose_tokens: bool = False,
        learning_rate_multiplier: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.learning_rate_multiplier = check_positive_float(
            "learning_rate_multiplier", learning_rate_multiplier
        )
        self.block_size = check_positive_int("block_size", block_size)
        self.normalization = check_choice("normalization", normalization, NORMALIZATIONS)
        if self.normalization == "l2" and (temperature is not None or sinkhorn_iterations):
            raise ValueError(
                f"`normalization`='l2' divides each row of the signed matrices by its L2 norm and "
                f"uses no temperature and no Sinkhorn rounds; got temperature={temperature}, "
                f"sinkhorn_iterations={sinkhorn_iterations}. Pass temperature=None, "
                "sinkhorn_iterations=0."
            )
        self.normalize_across_blocks = bool(normalize_across_blocks)
        self.transpose_tokens = bool(transpose_tokens)
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

    def build(self, input_shape: Shape) -> None:
        self.set_token_shape(input_shape)
        flat_size = self.num_tokens * self.token_dim
        if flat_size % self.block_size:
            raise ValueError(
                f"`block_size`={self.block_size} must divide num_tokens * token_dim = "
                f"{self.num_tokens} * {self.token_dim} = {flat_size}; valid values: "
                f"{divisors(flat_size)}."
            )
        self.num_blocks = flat_size // self.block_size
        if self.transpose_tokens and self.token_dim % self.num_tokens:
            raise ValueError(
                f"`transpose_tokens`=True applies RankMixer's token transpose (T heads per token), "
                f"which needs num_tokens={self.num_tokens} to divide token_dim={self.token_dim}."
            )
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

    def build_mixing_weights(self) -> None:
        raise NotImplementedError

    def add_mixing_weight(
        self, name: str, shape: tuple, initializer: str | keras.initializers.Initializer
    ) -> keras.Variable:
        """A mixing parameter, stored divided by `learning_rate_multiplier` (`mixing_parameter`
        multiplies it back): under Adam, whose steps do not depend on the gradient's scale, the
        effective parameter then moves `learning_rate_multiplier` times faster."""
        if self.learning_rate_multiplier != 1.0:
            initializer = Scaled(initializer, 1.0 / self.learning_rate_multiplier)
        return self.add_weight(name=name, shape=shape, initializer=initializer, autocast=False)

    def mixing_parameter(self, variable: keras.Variable) -> Tensor:
        """The effective value of a weight made by `add_mixing_weight`."""
        if self.learning_rate_multiplier == 1.0:
            return variable
        return variable * self.learning_rate_multiplier

    def global_logits(self) -> Tensor:
        """Raw `(n, n)` global parameters, before the constraints."""
        raise NotImplementedError

    def local_logits(self) -> Tensor:
        """Raw `(n, b, b)` (or shared `(b, b)`) local parameters, before the constraints."""
        raise NotImplementedError

    def _constrain(self, logits, apply: bool = True):
        if not apply:
            return ops.cast(logits, "float32")
        if self.normalization == "l2":
            return l2_normalize_rows(logits, symmetric=self.symmetric)
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

    def global_weights(self) -> Tensor:
        """The effective global matrix `W_G`, `(n, n)`, float32."""
        return self._constrain(self.global_logits())

    def local_weights(self) -> Tensor:
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
        if self.normalize_across_blocks:
            local_out = self._normalize_across_blocks(local_out)
        mixed = ops.matmul(global_weights, ops.reshape(local_out, (self.num_blocks, -1)))
        return ops.reshape(mixed, (self.num_blocks, -1, self.block_size))

    def _normalize_across_blocks(self, local_out):
        """Each coordinate standardized over the blocks (axis 0 of `(n, batch, b)`), in float32:
        a parameter-free norm between the local and the global step."""
        values = ops.cast(local_out, "float32")
        mean = ops.mean(values, axis=0, keepdims=True)
        variance = ops.var(values, axis=0, keepdims=True)
        values = (values - mean) * ops.rsqrt(variance + _ACROSS_BLOCKS_EPSILON)
        return ops.cast(values, self.compute_dtype)

    def call(self, inputs: Tensor) -> Tensor:
        if self.transpose_tokens:  # T heads per token: the output keeps the input's shape
            num_tokens = self.num_tokens
            inputs = transpose_heads(inputs, num_tokens, num_tokens, self.token_dim // num_tokens)
        blocks = ops.reshape(inputs, (-1, self.num_blocks, self.block_size))
        mixed = self._mix_blocks(ops.transpose(blocks, (1, 0, 2)))
        return ops.reshape(ops.transpose(mixed, (1, 0, 2)), (-1, self.num_tokens, self.token_dim))

    def call_token_major(self, inputs: Tensor) -> Tensor:
        """`(T, batch, D)` in and out. A block lies inside one token (`b` divides `D`: `D / b`
        blocks per token) or spans whole tokens (`D` divides `b`); the blocks-first layout is then
        a reshape, plus a transpose of the batch with the blocks-per-token (or tokens-per-block)
        axis only where that axis is longer than 1. Otherwise (blocks straddle tokens) this
        transposes to `(batch, T, D)` and back."""
        num_tokens, token_dim, block_size = self.num_tokens, self.token_dim, self.block_size
        if self.transpose_tokens:
            return super().call_token_major(inputs)
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

    def mixing_matrix(self) -> Tensor:
        """The effective `(L, L)` matrix `M` with `flat(out) = M @ flat(x)` (float32); with
        `transpose_tokens`, `M` includes the transpose. None exists with
        `normalize_across_blocks` (the layer is then not linear): refused."""
        if self.normalize_across_blocks:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} has normalize_across_blocks=True: the layer "
                "is not a linear map, so it has no mixing matrix."
            )
        local_weights = self.local_weights()
        if len(local_weights.shape) == 2:
            local_weights = ops.broadcast_to(
                local_weights, (self.num_blocks, self.block_size, self.block_size)
            )
        matrix = _block_matrix(self.global_weights(), local_weights)
        if self.transpose_tokens:
            num_tokens = self.num_tokens
            transpose = transpose_heads_matrix(num_tokens, num_tokens, self.token_dim // num_tokens)
            matrix = ops.matmul(matrix, transpose)
        return matrix

    def get_config(self) -> dict:
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
                "normalization": self.normalization,
                "normalize_across_blocks": self.normalize_across_blocks,
                "transpose_tokens": self.transpose_tokens,
                "learning_rate_multiplier": self.learning_rate_multiplier,
            }
        )
        return config


GLOBAL_INITS = ("random", "identity", "permutation")
LOCAL_INITS = ("random", "identity")


def default_block_size(num_tokens: int, token_dim: int) -> int:
    """The divisor of `T * D` closest to `sqrt(T * D)`, where UniMixing's FLOPs are smallest."""
    flat_size = num_tokens * token_dim
    return min(divisors(flat_size), key=lambda b: (abs(math.log(b / math.sqrt(flat_size))), b))


def checked_options(layer_class: type, options: dict | None) -> dict:
    """`mixing_options`: further constructor arguments of the layer, checked by name."""
    options = dict(options or {})
    # The layer's own arguments and those it passes on to `_ConstrainedMixing` (the Sinkhorn ones).
    allowed = set(inspect.signature(layer_class.__init__).parameters) | set(
        inspect.signature(ConstrainedMixing.__init__).parameters
    )
    allowed -= {
        "self",
        "kwargs",
        "block_size",
        "num_basis",
        "rank",
        "temperature",
        "sinkhorn_iterations",
    }
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"`mixing_options` has keys {unknown} that {layer_class.__name__} does not take; "
            f"valid: {sorted(allowed)}."
        )
    return options


def resolved_constraints(
    temperature: float | None, sinkhorn_iterations: int, options: dict
) -> tuple:
    """The builders' `(temperature, sinkhorn_iterations)`: with `normalization='l2'` in the
    options, none (l2 uses neither); refused where they were set away from their defaults."""
    if options.get("normalization") != "l2":
        return temperature, sinkhorn_iterations
    if (temperature, sinkhorn_iterations) not in ((1.0, 10), (None, 0)):
        raise ValueError(
            "mixing_options normalization='l2' uses no temperature and no Sinkhorn rounds; got "
            f"temperature={temperature}, sinkhorn_iterations={sinkhorn_iterations}. Leave them "
            "at their defaults."
        )
    return None, 0


CONSTRAINED_OPTIONS = ("block_size", "temperature", "sinkhorn_iterations", "mixing_options")
