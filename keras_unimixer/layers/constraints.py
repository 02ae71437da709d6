"""The UniMixing matrix constraints: symmetry, temperature and Sinkhorn-Knopp (spec section 4).

All of it is computed in the log domain and in float32, so it stays finite for temperatures down to
0.01 and under `mixed_bfloat16` (the result is cast to the layer's compute dtype by the caller).
"""

from __future__ import annotations

import keras
from keras import ops


def symmetrize(matrix):
    """`(M + M^T) / 2` over the last two axes."""
    return (matrix + ops.swapaxes(matrix, -1, -2)) / 2.0


def log_sinkhorn(log_matrix, num_iterations: int):
    """Sinkhorn-Knopp in the log domain: alternately normalize rows, then columns.

    Args:
        log_matrix: `(..., n, n)` logits; the matrix being balanced is `exp(log_matrix)`.
        num_iterations: number of (row, column) normalization rounds.

    Returns:
        The log of the balanced matrix. Its columns sum to exactly 1 (the last step normalizes
        columns); its rows approach 1 as `num_iterations` grows.
    """

    def normalize_rows_then_columns(_, matrix):
        matrix = matrix - ops.logsumexp(matrix, axis=-1, keepdims=True)
        return matrix - ops.logsumexp(matrix, axis=-2, keepdims=True)

    if keras.backend.backend() == "tensorflow":
        # Unrolled: TensorFlow's while loop has no XLA gradient without a fixed trip count, so a
        # loop op would break `jit_compile=True`; the graph is small either way.
        for iteration in range(num_iterations):
            log_matrix = normalize_rows_then_columns(iteration, log_matrix)
        return log_matrix
    # Elsewhere a loop op: the graph holds one iteration, which keeps JAX compile time flat in
    # `num_iterations`.
    return ops.fori_loop(0, num_iterations, normalize_rows_then_columns, log_matrix)


def sinkhorn(log_matrix, num_iterations: int):
    """`exp(log_sinkhorn(log_matrix))`: a (nearly) doubly stochastic matrix."""
    return ops.exp(log_sinkhorn(log_matrix, num_iterations))


def constrain_matrix(logits, *, symmetric: bool, temperature, sinkhorn_iterations: int):
    """Apply the UniMixing constraints to raw parameters, in the spec's order.

    Args:
        logits: raw `(..., n, n)` parameters (any float dtype; computed in float32).
        symmetric: apply `M <- (M + M^T) / 2` first.
        temperature: `None` (no temperature, no exp: the raw matrix is used as is) or a scalar
            tensor/number `tau` for `M <- exp(M / tau)`.
        sinkhorn_iterations: 0 for none, otherwise Sinkhorn rounds (done in the log domain, so
            `exp` is applied once, after balancing).

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
        return sinkhorn(matrix, sinkhorn_iterations)
    return ops.exp(matrix)
