import keras
import numpy as np
import pytest

from keras_unimixer import layers
from keras_unimixer.ops import constrain_matrix, log_sinkhorn
from keras_unimixer.testing import gradient_of


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


@pytest.mark.parametrize(
    "stddev, tolerance", [(0.3, 1e-3), (1.0, 1e-2)], ids=["logit_std_0.3", "logit_std_1"]
)
@pytest.mark.parametrize("size", [16, 32])
def test_default_layer_constraints_balance_sharp_matrices_at_the_annealing_end(
    size, stddev, tolerance
):
    # Ten fixed rounds leave rows off by 0.06 (std 0.3) and 0.56 (std 1) here; the layer's
    # defaults first balance to a tolerance, then run the differentiable rounds.
    layer = layers.UniMixing(block_size=1)
    weights = keras.ops.convert_to_numpy(
        constrain_matrix(
            logits(size, stddev=stddev),
            symmetric=True,
            temperature=0.05,
            sinkhorn_iterations=layer.sinkhorn_iterations,
            sinkhorn_tolerance=layer.sinkhorn_tolerance,
            sinkhorn_max_iterations=layer.sinkhorn_max_iterations,
        )
    )
    assert np.all(np.isfinite(weights))
    np.testing.assert_allclose(weights.sum(axis=0), 1.0, atol=tolerance)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=tolerance)


def test_fixed_rounds_alone_leave_sharp_matrices_unbalanced():
    # The defect the tolerance phase fixes: a regression guard on the comparison above.
    weights = keras.ops.convert_to_numpy(
        constrain_matrix(
            logits(16, stddev=1.0), symmetric=True, temperature=0.05, sinkhorn_iterations=10
        )
    )
    assert np.abs(weights.sum(axis=1) - 1.0).max() > 0.1


def test_warm_started_sinkhorn_gradient_is_close_to_the_converged_one():
    # The gradient flows through the last 10 rounds only, starting from the balanced point; it
    # should match the gradient of a long unrolled run (the fixed point's) far better than ten
    # rounds from the raw logits do.
    matrix = logits(16, stddev=0.3, seed=4)
    weights = np.random.default_rng(5).normal(size=(16, 16)).astype("float32")

    def loss(max_iterations, rounds):
        return lambda m: keras.ops.sum(
            constrain_matrix(
                m,
                symmetric=True,
                temperature=0.05,
                sinkhorn_iterations=rounds,
                sinkhorn_tolerance=1e-4,
                sinkhorn_max_iterations=max_iterations,
            )
            * weights
        )

    reference = gradient_of(loss(0, 400), matrix)
    warm = gradient_of(loss(300, 10), matrix)
    cold = gradient_of(loss(0, 10), matrix)
    relative = lambda g: np.linalg.norm(g - reference) / np.linalg.norm(reference)  # noqa: E731
    assert np.all(np.isfinite(warm))
    assert relative(warm) < 0.03
    assert relative(cold) > 2 * relative(warm)
