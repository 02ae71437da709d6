"""Type aliases of the public API's annotations."""

from __future__ import annotations

from typing import Any, TypeAlias

# A backend tensor or array: a `jax.Array`, `tf.Tensor`, `np.ndarray`, or a symbolic
# `keras.KerasTensor` while a functional model is built.
Tensor: TypeAlias = Any
# A tensor shape; None where a dimension (e.g. the batch) is not known.
Shape: TypeAlias = tuple[int | None, ...]
# Anything `np.asarray` reads: a list, a NumPy array, a tensor.
ArrayLike: TypeAlias = Any
