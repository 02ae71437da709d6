import keras
import numpy as np
import pytest

from keras_unimixer import layers
from keras_unimixer.testing import random_tokens, run_mixer_contract_test


def test_wukong_passes_the_contract():
    run_mixer_contract_test(lambda: layers.WukongMixing(), (3, 4, 8))


def test_blocks_match_the_formulas():
    layer = layers.WukongMixing(fm_tokens=3, fm_rank=2, hidden_units=6)
    inputs = random_tokens((2, 5, 4))
    outputs = keras.ops.convert_to_numpy(layer(inputs))
    assert outputs.shape == (2, 5, 4)
    # Linear compression block: the last T - n_F tokens are W_L @ X.
    compression = keras.ops.convert_to_numpy(layer.compression)
    np.testing.assert_allclose(
        outputs[:, 3:], np.einsum("lt,btd->bld", compression, inputs), atol=1e-5
    )
    # FM block: X (X^T Y), flattened, LayerNorm, ReLU layer, linear layer.
    projection = keras.ops.convert_to_numpy(layer.fm_projection)
    interactions = np.einsum("btd,btk->bdk", inputs, np.broadcast_to(projection, (2, 5, 2)))
    fm = np.einsum("btd,bdk->btk", inputs, interactions).reshape(2, -1)
    normed = keras.ops.convert_to_numpy(layer.fm_norm(fm))
    hidden = keras.ops.convert_to_numpy(layer.fm_hidden(normed))
    expected = keras.ops.convert_to_numpy(layer.fm_output(hidden)).reshape(2, 3, 4)
    np.testing.assert_allclose(outputs[:, :3], expected, atol=1e-4)


def test_bad_token_split_is_named():
    with pytest.raises(ValueError, match="`fm_tokens`=4 must be in 1..3"):
        layers.WukongMixing(fm_tokens=4)(random_tokens((2, 4, 8)))
    assert layers.mixing.get_mixer("wukong").norm == "post"
