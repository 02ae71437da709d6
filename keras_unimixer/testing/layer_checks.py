"""One helper that checks a layer the same way everywhere (at the level of keras-hub's
`run_layer_test`).

`check_layer` verifies, always: a build-only pass (`build(input_shape)` creates the weights, in
the expected numbers, and the symbolic output shape is right without a call), the eager output
shape and finiteness, the `get_config` / `from_config` and JSON serialization round trips (same
config, same outputs with the same weights), and the three dtype policies (`float32`,
`mixed_float16`, `mixed_bfloat16`: output in the compute dtype, every variable and every
sublayer's variables in float32, every sublayer under the same policy). With `expensive` (once
per layer class is enough): a new batch size inside a `keras.Model`, a `.keras` save / load with
identical outputs, and `model.fit` reaching every trainable weight. It runs under whichever
backend the process was started with (`KERAS_BACKEND`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable

import keras
import numpy as np

from keras_unimixer.utils.types import Shape


def random_tokens(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Standard-normal float32 inputs of `shape`, deterministic by `seed`."""
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def gradient_of(function: Callable, value: np.ndarray) -> np.ndarray:
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


def assert_gradients_reach_all_weights(
    model: keras.Model, inputs: object, targets: object, steps: int = 2
) -> None:
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


DTYPE_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def check_layer(
    make_layer: Callable[[], keras.Layer],
    input_shape: Shape,
    expected_output_shape: Shape | None = None,
    atol: float = 1e-6,
    check_training: bool = True,
    expected_num_trainable_weights: int | None = None,
    expected_num_non_trainable_weights: int | None = None,
    expensive: bool = True,
) -> keras.Layer:
    """Run every standard check on the layer built by `make_layer()`.

    Args:
        make_layer: callable. Returns a fresh, unbuilt layer; takes no arguments.
        input_shape: tuple. Input shape including a batch size, e.g. `(3, 4, 8)`.
        expected_output_shape: tuple or `None`. Output shape for that batch; `None`: the input
            shape. Defaults to `None`.
        atol: float. Tolerance of the round-trip comparisons. Defaults to `1e-6`.
        check_training: bool. With `expensive`, also run the `model.fit` / gradient check (off
            for a layer without weights). Defaults to `True`.
        expected_num_trainable_weights: int or `None`. Trainable variables after `build`
            (`None`: not checked). Defaults to `None`.
        expected_num_non_trainable_weights: int or `None`. Non-trainable variables after
            `build` (`None`: not checked). Defaults to `None`.
        expensive: bool. Run the `.keras` round trip, the new-batch-size predict and the `fit`
            check too. Defaults to `True`.

    Returns:
        The first layer built (for further assertions).
    """
    expected_output_shape = tuple(expected_output_shape or input_shape)
    inputs = random_tokens(input_shape, seed=1)
    _check_build_only(
        make_layer,
        input_shape,
        expected_output_shape,
        expected_num_trainable_weights,
        expected_num_non_trainable_weights,
    )

    layer = make_layer()
    outputs = keras.ops.convert_to_numpy(layer(inputs))
    assert outputs.shape == expected_output_shape, (outputs.shape, expected_output_shape)
    assert np.all(np.isfinite(outputs)), "layer produced non-finite outputs"
    _check_config_round_trips(layer, inputs, outputs, atol)
    _check_dtype_policies(layer, inputs)
    if not expensive:
        return layer

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


def _check_build_only(make_layer, input_shape, output_shape, num_trainable, num_non_trainable):
    """`build` alone creates the weights, and the symbolic output shape needs no eager call."""
    layer = make_layer()
    layer.build(tuple(input_shape))
    assert layer.built, f"{type(layer).__name__}.build did not mark the layer built"
    if num_trainable is not None:
        assert len(layer.trainable_weights) == num_trainable, (
            f"{len(layer.trainable_weights)} trainable weights after build, not {num_trainable}"
        )
    if num_non_trainable is not None:
        assert len(layer.non_trainable_weights) == num_non_trainable, (
            f"{len(layer.non_trainable_weights)} non-trainable weights after build, not "
            f"{num_non_trainable}"
        )
    symbolic = layer.compute_output_spec(keras.KerasTensor((None,) + tuple(input_shape[1:])))
    assert tuple(symbolic.shape[1:]) == tuple(output_shape[1:]), symbolic.shape


def _check_config_round_trips(layer, inputs, outputs, atol):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config, "get_config/from_config round trip changed the config"
    clone(inputs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(inputs)), outputs, atol=atol)

    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is type(layer)
    as_json = json.loads(json.dumps(config))  # tuples become lists, as in a saved file
    assert json.loads(json.dumps(revived.get_config())) == as_json, (
        "the JSON serialization round trip changed the config"
    )


def _check_dtype_policies(layer, inputs):
    """Under each policy: outputs in its compute dtype, variables in its variable dtype (float32),
    and every sublayer under the same policy."""
    for policy_name in DTYPE_POLICIES:
        policy = keras.dtype_policies.get(policy_name)
        policy_layer = type(layer).from_config({**layer.get_config(), "dtype": policy_name})
        outputs = policy_layer(inputs)
        dtype = keras.backend.standardize_dtype(outputs.dtype)
        assert dtype == policy.compute_dtype, (policy_name, dtype)
        values = keras.ops.convert_to_numpy(keras.ops.cast(outputs, "float32"))
        assert np.all(np.isfinite(values)), f"non-finite outputs under {policy_name}"
        for variable in policy_layer.weights:
            variable_dtype = keras.backend.standardize_dtype(variable.dtype)
            assert variable_dtype == policy.variable_dtype, (policy_name, variable.path)
        for sublayer in policy_layer._flatten_layers(include_self=False):
            assert sublayer.dtype_policy.name == policy_name, (
                f"under {policy_name}, sublayer {sublayer.name} runs {sublayer.dtype_policy.name}"
            )
