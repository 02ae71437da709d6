"""The UniMixing matrix constraints: symmetry, temperature and Sinkhorn-Knopp.

All of it is computed in the log domain and in float32, so it stays finite for temperatures down to
0.01 and under `mixed_bfloat16` (the result is cast to the layer's compute dtype by the caller).
"""

from __future__ import annotations

import functools

import keras
from keras import ops

from keras_unimixer.utils.types import Tensor


def symmetrize(matrix: Tensor) -> Tensor:
    """`(M + M^T) / 2` over the last two axes."""
    return (matrix + ops.swapaxes(matrix, -1, -2)) / 2.0


def _normalize_rows_then_columns(matrix):
    matrix = matrix - ops.logsumexp(matrix, axis=-1, keepdims=True)
    return matrix - ops.logsumexp(matrix, axis=-2, keepdims=True)


def _unbalanced(matrix, error, rounds, tolerance):
    return error > tolerance


def _balancing_round(matrix, error, rounds, tolerance):
    row_log_sums = ops.logsumexp(matrix, axis=-1, keepdims=True)
    matrix = matrix - row_log_sums
    matrix = matrix - ops.logsumexp(matrix, axis=-2, keepdims=True)
    # |log s| bounds |s - 1| to first order; it is the row error before this round.
    return matrix, ops.max(ops.abs(row_log_sums)), rounds + 1, tolerance


def _sinkhorn_round(_, matrix):
    return _normalize_rows_then_columns(matrix)


def balance_to_tolerance(log_matrix: Tensor, tolerance: float, max_iterations: int) -> Tensor:
    """Sinkhorn rounds until every row sum is within `tolerance` of 1 (columns are exact after
    each round), or `max_iterations` rounds; a loop with a data-dependent trip count, so no
    gradient flows through it (callers stop it).

    Returns:
        `(balanced_log_matrix, rounds_run)`.
    """
    if keras.backend.backend() == "jax":
        return _jitted_balance()(log_matrix, float(tolerance), int(max_iterations))
    return _balance(log_matrix, tolerance, max_iterations)


def _balance(log_matrix, tolerance, max_iterations):
    start = (
        log_matrix,
        ops.convert_to_tensor(float("inf"), "float32"),
        ops.convert_to_tensor(0),
        ops.convert_to_tensor(tolerance, "float32"),
    )
    matrix, _, rounds, _ = ops.while_loop(
        _unbalanced, _balancing_round, start, maximum_iterations=max_iterations
    )
    return matrix, rounds


@functools.cache
def _jitted_balance():
    # An eager JAX while loop traces and compiles its body on every call (0.15 s per matrix);
    # one jitted function is compiled once per shape. Inside a traced step it simply inlines.
    import jax

    return jax.jit(_balance, static_argnums=(1, 2))


def log_sinkhorn(
    log_matrix: Tensor, num_iterations: int, tolerance: float = 0.0, max_iterations: int = 0
) -> Tensor:
    """Sinkhorn-Knopp in the log domain: alternately normalize rows, then columns.

    With `max_iterations`, the matrix is first balanced to `tolerance` without gradient (at most
    `max_iterations` rounds), and the `num_iterations` differentiable rounds start from there:
    the scaling found by the first phase is a constant shift of the logits, so the output is as
    balanced as the first phase made it and the gradient is that of `num_iterations` rounds
    through the (near) fixed point. Ten fixed rounds from the raw logits are not enough once
    `exp(M / tau)` is sharp: at tau 0.05 and logit std 1, rows are off by 0.3.

    Args:
        log_matrix: `(..., n, n)` logits; the matrix being balanced is `exp(log_matrix)`.
        num_iterations: differentiable (row, column) normalization rounds.
        tolerance: largest row-sum error the first phase accepts.
        max_iterations: cap on the first phase's rounds; 0 skips it.

    Returns:
        The log of the balanced matrix. Its columns sum to exactly 1 (the last step normalizes
        columns); its rows to within `tolerance` when the first phase converged.
    """
    if max_iterations:
        balanced, _ = balance_to_tolerance(ops.stop_gradient(log_matrix), tolerance, max_iterations)
        log_matrix = log_matrix + ops.stop_gradient(balanced - log_matrix)

    if keras.backend.backend() == "tensorflow":
        # Unrolled: TensorFlow's while loop has no XLA gradient without a fixed trip count, so a
        # loop op would break `jit_compile=True`; the graph is small either way.
        for _ in range(num_iterations):
            log_matrix = _normalize_rows_then_columns(log_matrix)
        return log_matrix
    # Elsewhere a loop op: the graph holds one iteration, which keeps JAX compile time flat in
    # `num_iterations`.
    return ops.fori_loop(0, num_iterations, _sinkhorn_round, log_matrix)


def sinkhorn(
    log_matrix: Tensor, num_iterations: int, tolerance: float = 0.0, max_iterations: int = 0
) -> Tensor:
    """`exp(log_sinkhorn(...))`: a (nearly) doubly stochastic matrix."""
    return ops.exp(log_sinkhorn(log_matrix, num_iterations, tolerance, max_iterations))


def l2_normalize_rows(logits: Tensor, symmetric: bool = False, epsilon: float = 1e-12) -> Tensor:
    """Signed matrices with unit-L2-norm rows (after `symmetrize` when `symmetric`), float32: the
    alternative to temperature and Sinkhorn (no positivity, no column constraint)."""
    matrix = ops.cast(logits, "float32")
    if symmetric:
        matrix = symmetrize(matrix)
    norms = ops.sqrt(ops.sum(ops.square(matrix), axis=-1, keepdims=True) + epsilon)
    return matrix / norms


def constrain_matrix(
    logits: Tensor,
    *,
    symmetric: bool,
    temperature: Tensor | float | None,
    sinkhorn_iterations: int,
    sinkhorn_tolerance: float = 0.0,
    sinkhorn_max_iterations: int = 0,
) -> Tensor:
    """Apply the UniMixing constraints to raw parameters, in the spec's order.

    Args:
        logits: raw `(..., n, n)` parameters (any float dtype; computed in float32).
        symmetric: apply `M <- (M + M^T) / 2` first.
        temperature: `None` (no temperature, no exp: the raw matrix is used as is) or a scalar
            tensor/number `tau` for `M <- exp(M / tau)`.
        sinkhorn_iterations: 0 for none, otherwise differentiable Sinkhorn rounds (done in the log
            domain, so `exp` is applied once, after balancing).
        sinkhorn_tolerance: row-sum tolerance of the gradient-free balancing phase.
        sinkhorn_max_iterations: cap on that phase's rounds (0: no such phase).

    Returns:
        A float32 tensor of the same shape.
    """
    matrix = ops.cast(logits, "float32")
    if symmetric:
        matrix = symmetrize(matrix)
    if temperature is None:
        return matrix
    matrix = matrix / ops.cast(temperature, "float32")
    if sinkhorn_iterations:
        return sinkhorn(matrix, sinkhorn_iterations, sinkhorn_tolerance, sinkhorn_max_iterations)
    return ops.exp(matrix)
