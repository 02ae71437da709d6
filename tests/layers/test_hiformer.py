import keras
import numpy as np

from keras_unimixer import layers
from keras_unimixer.testing import random_tokens, run_mixer_contract_test


def test_heterogeneous_attention_passes_the_contract():
    run_mixer_contract_test(lambda: layers.HeterogeneousAttention(num_heads=2), (3, 4, 8))


def test_projections_are_token_specific():
    # Swapping two tokens' inputs does not just swap their outputs (it would, were the
    # projections shared as in AttentionMixing).
    layer = layers.HeterogeneousAttention(num_heads=2)
    inputs = random_tokens((2, 4, 8))
    outputs = keras.ops.convert_to_numpy(layer(inputs))
    swapped = inputs[:, [1, 0, 2, 3]]
    swapped_outputs = keras.ops.convert_to_numpy(layer(swapped))
    assert not np.allclose(swapped_outputs[:, [1, 0, 2, 3]], outputs, atol=1e-4)
    # With every token's projections set equal, it is ordinary attention: equivariant.
    for kernel in (layer.query_kernel, layer.key_kernel, layer.value_kernel, layer.output_kernel):
        first = keras.ops.convert_to_numpy(kernel)[0]
        kernel.assign(np.broadcast_to(first, kernel.shape))
    outputs = keras.ops.convert_to_numpy(layer(inputs))
    swapped_outputs = keras.ops.convert_to_numpy(layer(swapped))
    np.testing.assert_allclose(swapped_outputs[:, [1, 0, 2, 3]], outputs, atol=1e-5)


def test_hiformer_is_a_registered_architecture():
    spec = layers.mixing.get_mixer("hiformer")
    assert spec.options == ("num_heads",) and spec.norm == "pre"
    assert spec.make(4, 8, num_heads=4).num_heads == 4
