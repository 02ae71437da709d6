"""What a trained UniMixing / UniMixing-Lite layer has become, as a few numbers.

A layer whose `W_G` rows are uniform averages all blocks; one whose rows are one-hot permutes
them; local matrices that are identities leave each block as it is. `mixing_statistics` measures
where a model's layers sit between those ends, from their raw logits and their constrained
matrices.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_unimixer.layers.mixing.frozen import mixing_layers
from keras_unimixer.utils.types import ArrayLike


def normalized_row_entropy(matrix: ArrayLike) -> float:
    """Mean entropy of the rows of `|matrix|` (each row scaled to sum to 1), divided by the
    entropy of a uniform row: 0 for one-hot rows (a permutation, an identity), 1 for uniform
    rows. `matrix` is `(..., n, n)`; signed matrices (`normalization="l2"`) count magnitudes."""
    values = np.abs(np.asarray(matrix, dtype="float64"))
    size = values.shape[-1]
    if size < 2:
        return 0.0
    rows = values / np.clip(values.sum(axis=-1, keepdims=True), 1e-30, None)
    entropy = -(rows * np.log(np.clip(rows, 1e-30, None))).sum(axis=-1)
    return float(entropy.mean() / np.log(size))


def diagonal_mass(matrix: ArrayLike) -> float:
    """Mean share of each row's `|mass|` on the diagonal: 1 for identities."""
    values = np.abs(np.asarray(matrix, dtype="float64"))
    diagonal = np.diagonal(values, axis1=-2, axis2=-1)
    return float((diagonal / np.clip(values.sum(axis=-1), 1e-30, None)).mean())


def layer_statistics(layer: keras.Layer) -> dict:
    """The statistics of one built UniMixing / UniMixing-Lite layer (see `mixing_statistics`)."""
    global_weights = keras.ops.convert_to_numpy(layer.global_weights())
    local_weights = keras.ops.convert_to_numpy(layer.local_weights())
    return {
        "global_logit_std": float(np.std(keras.ops.convert_to_numpy(layer.global_logits()))),
        "local_logit_std": float(np.std(keras.ops.convert_to_numpy(layer.local_logits()))),
        "global_entropy": normalized_row_entropy(global_weights),
        "local_entropy": normalized_row_entropy(local_weights),
        "local_diagonal": diagonal_mass(local_weights),
    }


def mixing_statistics(model: keras.Layer) -> dict:
    """Means over `model`'s built UniMixing / UniMixing-Lite layers of: `global_logit_std` and
    `local_logit_std` (the spread of the raw logits: how far training moved them),
    `global_entropy` and `local_entropy` (`normalized_row_entropy` of `W_G` and `W_B`: 0 a
    permutation / identity, 1 uniform averaging) and `local_diagonal` (`W_B`'s mass on its
    diagonal: 1 for identities). Empty for a model without such layers."""
    rows = [layer_statistics(layer) for layer in mixing_layers(model) if layer.built]
    if not rows:
        return {}
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
