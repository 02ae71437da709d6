"""Looking inside a trained model: its UniMixing matrices, and how close W_G is to a permutation."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np

from keras_unimixer.layers.mixing import mixing_layers
from keras_unimixer.layers.mixing.statistics import layer_statistics
from keras_unimixer.saving import load_model


def permutation_closeness(matrix) -> dict:
    """How permutation-like a doubly stochastic matrix is: 1.0 means exactly a permutation.

    `mean_row_max`: mean over rows of the largest entry; `argmax_is_permutation`: whether the
    row-wise argmaxes hit every column once; `entropy`: mean row entropy (0 for a permutation).
    """
    matrix = np.asarray(matrix, dtype="float64")
    rows = np.clip(matrix, 1e-12, None)
    argmax = matrix.argmax(axis=1)
    return {
        "mean_row_max": float(matrix.max(axis=1).mean()),
        "argmax_is_permutation": bool(len(set(argmax.tolist())) == matrix.shape[0]),
        "mean_row_entropy": float(-(rows * np.log(rows)).sum(axis=1).mean()),
        "size": int(matrix.shape[0]),
    }


def _format(temperature) -> str:
    return "none" if temperature is None else f"{temperature:.3g}"


def inspect_model(model, output) -> dict:
    """Heat maps (PNG) of W_G and the local matrices of every UniMixing layer, and statistics.

    Writes `<output>/<layer>.png` and `<output>/mixing_stats.json`; returns the statistics.
    """
    from keras_unimixer.experiments.scaling.plots import plot_matrices

    if isinstance(model, (str, Path)):
        model = load_model(model)
    layers = mixing_layers(model)
    if not layers:
        raise ValueError(
            f"Model {model.name!r} has no UniMixing or UniMixingLite layer to inspect."
        )
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    stats = {}
    for layer in layers:
        global_weights = keras.ops.convert_to_numpy(layer.global_weights())
        local_weights = keras.ops.convert_to_numpy(layer.local_weights())
        if local_weights.ndim == 2:
            local_weights = local_weights[None]
        matrices = {f"W_G ({global_weights.shape[0]} blocks)": global_weights}
        for index in range(min(3, local_weights.shape[0])):
            matrices[f"W_B block {index}"] = local_weights[index]
        temperature = (
            None
            if layer.temperature_variable is None
            else float(keras.ops.convert_to_numpy(layer.temperature_variable))
        )
        name = layer.path.replace("/", "_")
        plot_matrices(
            matrices, output / f"{name}.png", title=f"{layer.path} (tau={_format(temperature)})"
        )
        stats[layer.path] = {
            "temperature": temperature,
            "global": permutation_closeness(global_weights),
            "local_mean_row_max": float(local_weights.max(axis=-1).mean()),
            **layer_statistics(layer),
            "image": f"{name}.png",
        }
    (output / "mixing_stats.json").write_text(json.dumps(stats, indent=1))
    return stats
