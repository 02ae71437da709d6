import keras
import numpy as np
import pytest

from keras_unimixer import layers
from keras_unimixer.testing import check_layer, random_tokens

SHAPE = (3, 4, 8)


@pytest.mark.parametrize("activation", ["swiglu", "gelu"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_standard_layer_checks(activation, use_bias):
    check_layer(
        lambda: layers.PerTokenFFN(multiplier=2, activation=activation, use_bias=use_bias),
        SHAPE,
        expected_num_trainable_weights=(3 if activation == "swiglu" else 2) + 2 * use_bias,
        expensive=activation == "swiglu" and use_bias,  # fit and .keras once per class
    )


def numpy_gelu(x):
    from math import erf, sqrt

    return 0.5 * x * (1.0 + np.vectorize(erf)(x / sqrt(2.0)))


@pytest.mark.parametrize("activation", ["swiglu", "gelu"])
def test_each_token_uses_its_own_weights(activation):
    layer = layers.PerTokenFFN(multiplier=2, activation=activation)
    inputs = random_tokens(SHAPE)
    outputs = keras.ops.convert_to_numpy(layer(inputs))
    weights = {w.name: keras.ops.convert_to_numpy(w) for w in layer.weights}
    for token in range(SHAPE[1]):
        x = inputs[:, token].astype("float64")
        hidden = x @ weights["hidden_kernel"][token] + weights["hidden_bias"][token]
        if activation == "swiglu":
            gate = x @ weights["gate_kernel"][token]
            hidden = hidden / (1.0 + np.exp(-hidden)) * gate
        else:
            hidden = numpy_gelu(hidden)
        expected = hidden @ weights["output_kernel"][token] + weights["output_bias"][token]
        np.testing.assert_allclose(outputs[:, token], expected, rtol=1e-4, atol=1e-5)


def test_parameter_count():
    layer = layers.PerTokenFFN(multiplier=4, activation="swiglu")
    layer.build((None, 5, 16))
    assert layer.count_params() == 5 * (3 * 16 * 64 + 64 + 16)


def test_default_init_has_dense_like_variance_per_token():
    layer = layers.PerTokenFFN(multiplier=4, activation="gelu", use_bias=False)
    layer.build((None, 32, 64))
    kernel = keras.ops.convert_to_numpy(layer.hidden_kernel)
    glorot_std = np.sqrt(2.0 / (64 + 256))
    assert abs(kernel.std() / glorot_std - 1.0) < 0.05


@pytest.mark.parametrize(
    "kwargs,argument",
    [({"multiplier": 0}, "multiplier"), ({"activation": "relu"}, "activation")],
)
def test_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        layers.PerTokenFFN(**kwargs)


@pytest.mark.parametrize("activation", ["swiglu", "gelu"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_token_major_call_equals_call(activation, use_bias):
    layer = layers.PerTokenFFN(multiplier=2, activation=activation, use_bias=use_bias)
    inputs = random_tokens(SHAPE)
    layer.build(SHAPE)
    for weight in layer.weights:  # non-zero biases, so that a misplaced bias would show
        weight.assign(weight + 0.1)
    expected = keras.ops.convert_to_numpy(layer(inputs))
    token_major = layer.call_token_major(keras.ops.convert_to_tensor(inputs.transpose(1, 0, 2)))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(token_major).transpose(1, 0, 2), expected, rtol=1e-5, atol=1e-5
    )
