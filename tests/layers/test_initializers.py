import keras
import numpy as np
import pytest

from keras_unimixer import layers
from keras_unimixer.datasets import FeatureSpec
from keras_unimixer.layers.initializers import StackedIdentity, distinct
from keras_unimixer.layers.mixing import HeterogeneousAttention


def test_distinct_copies_differ_and_stay_reproducible():
    shared = keras.initializers.RandomNormal(seed=7)
    first, second = distinct(shared, 0), distinct(shared, 1)
    assert first is shared
    a, b = (keras.ops.convert_to_numpy(init((5, 3))) for init in (first, second))
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(distinct(shared, 1)((5, 3))), b
    )  # same seed, same index: the same values
    identity = StackedIdentity(1.0)
    assert distinct(identity, 3) is identity  # deterministic: nothing to vary


def _values(weights):
    return [keras.ops.convert_to_numpy(w) for w in weights]


def _built(layer, shape):
    layer.build(shape)
    return layer


@pytest.mark.parametrize(
    "make, names",
    [
        (lambda: _built(layers.PerTokenFFN(multiplier=2), (None, 4, 8)),
         ("hidden_kernel", "gate_kernel")),
        (lambda: _built(layers.AttentionMixing(num_heads=2), (None, 4, 8)),
         ("query_kernel", "key_kernel", "value_kernel", "output_kernel")),
        (lambda: _built(HeterogeneousAttention(num_heads=2), (None, 4, 8)),
         ("query_kernel", "key_kernel", "value_kernel")),
    ],
)  # fmt: skip
def test_weights_sharing_an_initializer_start_different(make, names):
    """Keras 3 initializer instances repeat their values: each weight needs its own copy."""
    keras.utils.set_random_seed(0)
    layer = make()
    values = _values(getattr(layer, name) for name in names)
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            assert not np.allclose(values[i], values[j]), (names[i], names[j])
    keras.utils.set_random_seed(0)
    rebuilt = make()
    again = _values(getattr(rebuilt, name) for name in names)
    for got, want in zip(again, values, strict=True):
        np.testing.assert_array_equal(got, want)  # reproducible under a seed


def test_embedding_tables_of_equal_shape_start_different():
    specs = [FeatureSpec(f"f{i}", "categorical", 20) for i in range(3)]
    for initializer in ("uniform", keras.initializers.RandomNormal(stddev=1e-4)):
        tokenizer = layers.FeatureTokenizer(
            specs, 4, token_dim=8, num_tokens=2, embeddings_initializer=initializer
        )
        tokenizer.build({spec.name: (None,) for spec in specs})
        tables = _values(getattr(tokenizer, f"f{i}_embedding") for i in range(3))
        assert not np.allclose(tables[0], tables[1]) and not np.allclose(tables[1], tables[2])
