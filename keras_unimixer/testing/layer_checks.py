"""One helper that checks a layer the same way everywhere.

`check_layer` verifies: output shape, dynamic batch size, `get_config`/`from_config` round trip
(same config, same outputs with the same weights), `.keras` save/load (identical outputs), and
trainability inside a `keras.Model` with `model.fit` (every trainable weight receives a gradient).
It runs under whichever backend the process was started with (`KERAS_BACKEND`).
"""

from __future__ import annotations

import os
import tempfile

import keras
import numpy as np


def random_tokens(shape, seed: int = 0) -> np.ndarray:
    """Standard-normal float32 inputs of `shape`, deterministic by `seed`."""
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def gradient_of(function, value) -> np.ndarray:
    """The gradient of a scalar `function(value)` at the array `value`, under the process's
    backend (JAX's `grad`, or a TensorFlow tape)."""
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(function)(value))
    import tensorflow as tf

    value = tf.constant(value)
    with tf.GradientTape() as tape:
        tape.watch(value)
        result = function(value)
    return tape.gradient(result, value).numpy()


def _single_output_model(layer, input_shape):
    inputs = keras.Input(shape=tuple(input_shape[1:]), name="tokens")
    return keras.Model(inputs, layer(inputs))


def assert_gradients_reach_all_weights(model, inputs, targets, steps: int = 2):
    """Fit `model` for a few Adam steps and assert every trainable weight moved.

    A weight whose gradient is exactly zero does not move under Adam, so this checks that the
    gradient reaches every trainable weight, with the backend's own `fit` (TF or JAX).
    Non-trainable weights must not move.
    """
    before = {id(w): np.array(keras.ops.convert_to_numpy(w)) for w in model.weights}
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2), loss="mse")
    history = model.fit(inputs, targets, batch_size=len(inputs), epochs=steps, verbose=0)
    losses = history.history["loss"]
    assert all(np.isfinite(losses)), f"non-finite training loss: {losses}"
    for weight in model.trainable_weights:
        after = keras.ops.convert_to_numpy(weight)
        assert not np.array_equal(after, before[id(weight)]), (
            f"trainable weight {weight.path} did not change: no gradient reached it"
        )
    for weight in model.non_trainable_weights:
        after = keras.ops.convert_to_numpy(weight)
        np.testing.assert_array_equal(after, before[id(weight)], err_msg=weight.path)
    return losses


def check_layer(
    make_layer,
    input_shape,
    expected_output_shape=None,
    atol: float = 1e-6,
    check_training: bool = True,
):
    """Run every standard check on the layer built by `make_layer()`.

    Args:
        make_layer: zero-argument callable returning a fresh, unbuilt layer.
        input_shape: input shape including a batch size, e.g. `(3, 4, 8)`.
        expected_output_shape: output shape for that batch; default: the input shape.
        atol: tolerance of the round-trip comparisons.
        check_training: also run the `model.fit` / gradient check.

    Returns:
        The first layer built (for further assertions).
    """
    expected_output_shape = tuple(expected_output_shape or input_shape)
    inputs = random_tokens(input_shape, seed=1)

    layer = make_layer()
    outputs = keras.ops.convert_to_numpy(layer(inputs))
    assert outputs.shape == expected_output_shape, (outputs.shape, expected_output_shape)
    assert np.all(np.isfinite(outputs)), "layer produced non-finite outputs"

    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config, "get_config/from_config round trip changed the config"
    clone(inputs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(inputs)), outputs, atol=atol)

    model = _single_output_model(make_layer(), input_shape)
    for batch_size in (2, input_shape[0]):  # a new batch size, then the one used below
        batch = random_tokens((batch_size,) + tuple(input_shape[1:]), seed=batch_size)
        predicted = model.predict(batch, verbose=0)
        assert predicted.shape == (batch_size,) + expected_output_shape[1:], predicted.shape

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        restored.predict(inputs, verbose=0), model.predict(inputs, verbose=0), atol=atol
    )

    if check_training:
        targets = random_tokens(expected_output_shape, seed=2)
        assert_gradients_reach_all_weights(model, inputs, targets)
    return layer
