import keras
import numpy as np

from keras_unimixer import layers
from keras_unimixer.layers.mixing.statistics import (
    diagonal_mass,
    layer_statistics,
    mixing_statistics,
    normalized_row_entropy,
)


def test_row_entropy_is_zero_for_a_permutation_and_one_for_uniform_rows():
    assert normalized_row_entropy(np.eye(5)[[2, 0, 1, 4, 3]]) == 0.0
    assert abs(normalized_row_entropy(np.full((4, 4), 0.25)) - 1.0) < 1e-12
    signed = np.array([[0.6, -0.8], [-0.8, 0.6]])  # magnitudes count: rows (3/7, 4/7)
    expected = -(3 / 7 * np.log(3 / 7) + 4 / 7 * np.log(4 / 7)) / np.log(2)
    assert abs(normalized_row_entropy(signed) - expected) < 1e-12
    assert diagonal_mass(np.stack([np.eye(3), np.full((3, 3), 1 / 3)])) == (1 + 1 / 3) / 2


def test_statistics_of_a_layer_read_its_logits_and_constrained_matrices():
    sharp = layers.UniMixing(block_size=4, local_init="identity", init_scale=30.0)
    sharp.build((2, 4, 8))
    stats = layer_statistics(sharp)
    assert stats["local_diagonal"] > 0.999 and stats["local_entropy"] < 1e-3
    logits = keras.ops.convert_to_numpy(sharp.global_kernel)
    assert abs(stats["global_logit_std"] - float(np.std(logits))) < 1e-6
    # Random logits of std 0.1 at temperature 1: W_G is close to uniform averaging.
    assert stats["global_entropy"] > 0.99

    inputs = keras.Input((4, 8))
    hidden = layers.UniMixing(block_size=4)(inputs)
    model = keras.Model(inputs, layers.UniMixingLite(block_size=8, rank=2)(hidden))
    stats = mixing_statistics(model)
    assert set(stats) == set(layer_statistics(sharp))
    assert mixing_statistics(keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])) == {}
