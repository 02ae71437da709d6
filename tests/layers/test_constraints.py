import keras
import numpy as np
import pytest

from keras_unimixer import layers
from keras_unimixer.layers import constrain_matrix, log_sinkhorn


def logits(size, stddev=1.0, seed=0):
    matrix = np.random.default_rng(seed).normal(0.0, stddev, (size, size)).astype("float32")
    return matrix


@pytest.mark.parametrize("size", [4, 16, 64])
@pytest.mark.parametrize("temperature", [1.0, 0.5, 0.1, 0.05])
def test_default_sinkhorn_is_doubly_stochastic(size, temperature):
    iterations = layers.UniMixing(block_size=1).sinkhorn_iterations
    weights = keras.ops.convert_to_numpy(
        constrain_matrix(
            logits(size, stddev=0.1),
            symmetric=True,
            temperature=temperature,
            sinkhorn_iterations=iterations,
        )
    )
    assert weights.dtype == np.float32
    np.testing.assert_allclose(weights.sum(axis=0), 1.0, atol=1e-4)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-4)
    assert np.all(weights >= 0)


def test_sinkhorn_matches_a_numpy_reference():
    matrix = logits(6)
    expected = np.exp(matrix.astype("float64"))
    for _ in range(3):
        expected = expected / expected.sum(axis=1, keepdims=True)
        expected = expected / expected.sum(axis=0, keepdims=True)
    actual = keras.ops.convert_to_numpy(keras.ops.exp(log_sinkhorn(matrix, 3)))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("temperature", [0.05, 0.02, 0.01])
def test_low_temperature_stays_finite_in_float32(temperature):
    # Large logits: exp(30 / 0.01) overflows any float unless done in the log domain.
    weights = keras.ops.convert_to_numpy(
        constrain_matrix(
            logits(32, stddev=30.0), symmetric=True, temperature=temperature, sinkhorn_iterations=10
        )
    )
    assert np.all(np.isfinite(weights))
    np.testing.assert_allclose(weights.sum(axis=0), 1.0, atol=1e-4)
    assert np.all(weights.sum(axis=1) <= 32 + 1e-3)


@pytest.mark.parametrize("layer_class", [layers.UniMixing, layers.UniMixingLite])
def test_low_temperature_stays_finite_in_mixed_bfloat16(layer_class):
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = layer_class(block_size=4, temperature=0.01)
    inputs = np.random.default_rng(0).standard_normal((2, 4, 8)).astype("float32")
    layer.build((2, 4, 8))
    for variable in layer.trainable_weights:
        variable.assign(np.random.default_rng(1).normal(0, 5.0, variable.shape))
    outputs = layer(inputs)
    assert keras.backend.standardize_dtype(outputs.dtype) == "bfloat16"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(keras.ops.cast(outputs, "float32"))))
    global_weights = keras.ops.convert_to_numpy(layer.global_weights())
    assert global_weights.dtype == np.float32
    np.testing.assert_allclose(global_weights.sum(axis=0), 1.0, atol=1e-4)


def test_unconstrained_matrix_is_returned_as_is():
    matrix = logits(5)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(
            constrain_matrix(matrix, symmetric=False, temperature=None, sinkhorn_iterations=0)
        ),
        matrix,
    )
