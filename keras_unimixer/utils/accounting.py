"""Analytic parameter and FLOP counts per example.

FLOPs count multiply-adds as 2 and cover the matrix products of the forward pass (what dominates
these models); element-wise work (norms, activations, softmax) and the per-batch cost of the
UniMixing constraints (independent of batch size) are left out.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_unimixer.layers import FeatureTokenizer, MixingLayer, PerTokenFFN
from keras_unimixer.optimizers import is_embedding_table


def mixing_flops(layer: keras.Layer) -> int:
    """Forward FLOPs per example of a built mixing layer (its `flops_per_example()`)."""
    if not isinstance(layer, MixingLayer):
        raise TypeError(f"No FLOP count for {type(layer).__name__}: not a MixingLayer.")
    return int(layer.flops_per_example())


def _size(variable) -> int:
    return int(np.prod(variable.shape))


def layer_flops(layer: keras.Layer) -> int:
    """FLOPs per example of one layer (a mixing layer's include its sublayers')."""
    if isinstance(layer, MixingLayer):
        return mixing_flops(layer)
    if isinstance(layer, PerTokenFFN):
        matrices = [layer.hidden_kernel, layer.output_kernel]
        if layer.activation == "swiglu":
            matrices.append(layer.gate_kernel)
        return sum(2 * _size(kernel) for kernel in matrices)
    if isinstance(layer, FeatureTokenizer):
        kernels = [w for w in layer.weights if "kernel" in w.name and "numeric" not in w.name]
        return sum(2 * _size(kernel) for kernel in kernels)
    kernels = [w for w in getattr(layer, "_trainable_variables", []) if "kernel" in w.name]
    return sum(2 * _size(kernel) for kernel in kernels)


def flops_per_example(model: keras.Layer) -> int:
    """Forward matmul FLOPs per example of a model built from this package's layers and Dense
    (a mixing layer counts itself: its own sublayers are not visited again)."""

    def visit(layer: keras.Layer) -> int:
        total = layer_flops(layer)
        if isinstance(layer, MixingLayer):
            return total
        for child in layer._flatten_layers(include_self=False, recursive=False):
            total += visit(child)
        return total

    return int(
        sum(visit(layer) for layer in model._flatten_layers(include_self=False, recursive=False))
    )


def parameter_counts(model: keras.Layer) -> dict:
    """`{"total", "embedding", "dense"}`: embedding tables vs the rest (non-trainable included)."""
    total = int(model.count_params())
    embedding = sum(
        _size(w)
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, FeatureTokenizer)
        for w in layer.weights
        if is_embedding_table(w)
    )
    return {"total": total, "embedding": int(embedding), "dense": total - int(embedding)}
