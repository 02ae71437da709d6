"""Constrained mixing matrices computed once and held as constants (for export and serving)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras
from keras import ops

from keras_unimixer.layers.mixing.constrained import ConstrainedMixing


def mixing_layers(model: keras.Layer) -> list:
    """Every `UniMixing` / `UniMixingLite` layer of `model` (a model or a layer), nested ones
    included, in order."""
    found = []

    def visit(layer):
        if isinstance(layer, ConstrainedMixing):
            found.append(layer)
        for child in getattr(layer, "_layers", None) or []:
            visit(child)

    visit(model)
    return list(dict.fromkeys(found))


@contextlib.contextmanager
def frozen_mixing_weights(model: keras.Layer) -> Iterator[None]:
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
    >>> with keras_unimixer.layers.mixing.frozen_mixing_weights(layer):
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
