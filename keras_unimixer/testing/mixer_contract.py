"""`run_mixer_contract_test`: everything a mixing layer promises, checked the same way for all.

Usable for a user's own `MixingLayer` before `register_mixer`: it runs under the backend of the
process (`KERAS_BACKEND`), so run it once per backend.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from keras_unimixer.layers.mixing.base import MixingLayer
from keras_unimixer.testing.layer_checks import check_layer, random_tokens
from keras_unimixer.utils.types import Shape


def run_mixer_contract_test(
    make_layer: Callable[[], keras.Layer],
    input_shape: Shape = (3, 4, 8),
    flops_shape: Shape = (64, 8, 32),
    max_flops_ratio: float = 1.35,
    check_training: bool = True,
    expensive: bool = True,
) -> keras.Layer:
    """Check a mixing layer against the `MixingLayer` contract.

    - `check_layer`: output shape (equal to the input's), a build-only pass, the config and
      JSON round trips, the three dtype policies and, with `expensive`, a new batch size, a
      `.keras` round trip with identical outputs and every trainable weight trained by `fit`;
    - `num_params()` equals the trainable parameters Keras counts;
    - a symbolic call on `keras.Input` gives the right shape;
    - `mixing_matrix()` / `mixing_matrix(inputs)`, where the layer has one, reproduces `call`;
    - `call_token_major` on `(T, batch, D)` gives `call`'s outputs in that layout;
    - under `mixed_bfloat16` the output is bfloat16 and finite;
    - under JAX, XLA's cost analysis of the forward pass counts between 1 and `max_flops_ratio`
      times `flops_per_example()` (the analytic count covers the matmuls; XLA adds element-wise
      work) at `flops_shape`.

    Args:
        make_layer: zero-argument callable returning a fresh, unbuilt mixing layer.
        input_shape: `(batch, T, D)` of the functional checks.
        flops_shape: `(batch, T, D)` of the FLOP check (large enough for matmuls to dominate).
        max_flops_ratio: the largest XLA / analytic FLOP ratio accepted.
        check_training: run the training check (off for parameter-free layers).
        expensive: run `check_layer`'s expensive steps (once per layer class is enough).

    Returns:
        The layer built by `check_layer`.
    """
    layer = check_layer(make_layer, input_shape, check_training=check_training, expensive=expensive)
    assert isinstance(layer, MixingLayer), f"{type(layer).__name__} is not a MixingLayer"

    trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    assert layer.num_params() == trainable, (layer.num_params(), trainable)

    symbolic = make_layer()(keras.Input(tuple(input_shape[1:])))
    assert tuple(symbolic.shape[1:]) == tuple(input_shape[1:]), symbolic.shape

    _check_mixing_matrix(layer, random_tokens(input_shape, seed=3))
    _check_token_major(layer, random_tokens(input_shape, seed=5))
    if keras.backend.backend() == "jax":
        _check_flops(make_layer, flops_shape, max_flops_ratio)
    return layer


def _check_mixing_matrix(layer, inputs):
    matrix_method = getattr(layer, "mixing_matrix", None)
    if matrix_method is None:
        return
    outputs = keras.ops.convert_to_numpy(layer(inputs)).reshape(inputs.shape[0], -1)
    flat = inputs.reshape(inputs.shape[0], -1)
    try:
        matrix = keras.ops.convert_to_numpy(matrix_method())
        expected = flat @ matrix.T
    except TypeError:  # a per-sample matrix: mixing_matrix(inputs)
        matrices = keras.ops.convert_to_numpy(matrix_method(inputs))
        expected = np.einsum("bij,bj->bi", matrices, flat)
    np.testing.assert_allclose(outputs, expected, atol=1e-4, rtol=1e-4)


def _check_token_major(layer, inputs):
    token_major = layer.call_token_major(keras.ops.convert_to_tensor(inputs.transpose(1, 0, 2)))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(token_major).transpose(1, 0, 2),
        keras.ops.convert_to_numpy(layer(inputs)),
        atol=1e-5,
        rtol=1e-5,
    )


def _check_flops(make_layer, shape, max_ratio):
    import jax

    layer = make_layer()
    inputs = keras.Input(tuple(shape[1:]))
    model = keras.Model(inputs, layer(inputs))
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def forward(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x)[0]

    x = np.zeros(shape, "float32")
    cost = jax.jit(forward).lower(trainable, non_trainable, x).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    analytic = layer.flops_per_example() * shape[0]
    if analytic == 0:
        assert cost.get("flops", 0.0) <= 1e-3 * np.prod(shape), cost.get("flops")
        return
    ratio = cost["flops"] / analytic
    assert 1.0 <= ratio <= max_ratio, f"XLA/analytic FLOPs = {ratio:.3f}"
