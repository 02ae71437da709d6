"""Backend-agnostic operations (`keras.ops` only) that the layers build on: Sinkhorn balancing
and the constraint pipeline of the UniMixing matrices."""

from keras_unimixer.ops.sinkhorn import (
    constrain_matrix,
    l2_normalize_rows,
    log_sinkhorn,
    sinkhorn,
    symmetrize,
)

__all__ = ["constrain_matrix", "l2_normalize_rows", "log_sinkhorn", "sinkhorn", "symmetrize"]
