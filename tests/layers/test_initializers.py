import keras
import numpy as np
import pytest

from keras_unimixer import layers
from keras_unimixer.datasets import FeatureSpec
from keras_unimixer.layers.initializers import (
    RowChunked,
    StackedIdentity,
    add_table_weight,
    distinct,
)
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
        (
            lambda: _built(layers.PerTokenFFN(multiplier=2), (None, 4, 8)),
            ("hidden_kernel", "gate_kernel"),
        ),
        (
            lambda: _built(layers.AttentionMixing(num_heads=2), (None, 4, 8)),
            ("query_kernel", "key_kernel", "value_kernel", "output_kernel"),
        ),
        (
            lambda: _built(HeterogeneousAttention(num_heads=2), (None, 4, 8)),
            ("query_kernel", "key_kernel", "value_kernel"),
        ),
    ],
)
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


@pytest.mark.parametrize(
    "base, check",
    [
        (
            keras.initializers.RandomUniform(-0.5, 0.5, seed=3),
            lambda v: (
                v.min() >= -0.5
                and v.max() <= 0.5
                and abs(v.mean()) < 0.02
                and abs(v.std() - 1 / np.sqrt(12)) < 0.01
            ),
        ),
        (
            keras.initializers.RandomNormal(stddev=2.0, seed=3),
            lambda v: abs(v.mean()) < 0.05 and abs(v.std() - 2.0) < 0.03,
        ),
        (
            keras.initializers.TruncatedNormal(stddev=1.0, seed=3),
            lambda v: np.abs(v).max() <= 2.0 and abs(v.std() - 0.88) < 0.02,
        ),
    ],
)
def test_row_chunked_draws_each_block_from_the_initializers_distribution(base, check):
    table = keras.ops.convert_to_numpy(RowChunked(base, chunk_rows=1000)((10_500, 2)))
    assert table.shape == (10_500, 2) and table.dtype == np.float32
    assert check(table)
    blocks = [table[start : start + 1000] for start in range(0, 10_500, 1000)]
    assert blocks[-1].shape == (500, 2)  # the last, partial block is written too
    for i in range(len(blocks) - 1):  # each block has its own draws
        rows = len(blocks[i + 1])
        assert not np.allclose(blocks[i][:rows], blocks[i + 1])
    again = keras.ops.convert_to_numpy(RowChunked(base, chunk_rows=1000)((10_500, 2)))
    np.testing.assert_array_equal(again, table)  # the same seed: the same table


def test_row_chunked_draws_small_tables_and_other_initializers_whole():
    uniform = keras.initializers.RandomUniform(seed=5)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(RowChunked(uniform, chunk_rows=8)((8, 3))),
        keras.ops.convert_to_numpy(uniform((8, 3))),
    )  # at most chunk_rows rows: the initializer's own values
    glorot = keras.initializers.GlorotUniform(seed=5)  # its scale depends on the whole shape
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(RowChunked(glorot, chunk_rows=8)((40, 3))),
        keras.ops.convert_to_numpy(glorot((40, 3))),
    )
    serialized = keras.initializers.serialize(RowChunked("uniform", chunk_rows=16))
    restored = keras.initializers.deserialize(serialized)  # by its registered name
    assert isinstance(restored, RowChunked)
    assert restored.chunk_rows == 16
    assert isinstance(restored.initializer, keras.initializers.RandomUniform)
    with pytest.raises(ValueError, match="chunk_rows"):
        RowChunked("uniform", chunk_rows=0)


def test_tokenizer_tables_above_a_million_rows_are_drawn_in_blocks():
    specs = [FeatureSpec("big", "categorical", 2**20 + 5), FeatureSpec("small", "categorical", 9)]
    keras.utils.set_random_seed(1)
    tokenizer = layers.FeatureTokenizer(specs, 2, token_dim=2, mode="field", project=False)
    tokenizer.build({spec.name: (None,) for spec in specs})
    big = keras.ops.convert_to_numpy(tokenizer.big_embedding)
    assert big.shape == (2**20 + 5, 2) and np.abs(big).max() <= 0.05  # "uniform": [-0.05, 0.05]
    assert not np.allclose(big[: 2**20][:5], big[2**20 :])  # the last block is its own draw
    assert abs(big.std() - 0.1 / np.sqrt(12)) < 1e-3


def test_row_chunked_fill_writes_the_same_table_in_place():
    base = keras.initializers.RandomUniform(-0.05, 0.05, seed=7)
    initializer = RowChunked(base, chunk_rows=1000)
    variable = keras.Variable(np.zeros((10_500, 3), "float32"))
    initializer.fill(variable)
    expected = keras.ops.convert_to_numpy(initializer((10_500, 3)))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), expected)
    assert initializer.draws_in_blocks((10_500, 3))
    assert not initializer.draws_in_blocks((1000, 3))  # at most chunk_rows rows: drawn whole
    small = keras.Variable(np.zeros((8, 3), "float32"))
    RowChunked(base, chunk_rows=1000).fill(small)  # drawn whole, as the initializer alone draws it
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(small), keras.ops.convert_to_numpy(base((8, 3)))
    )


def test_add_table_weight_gives_the_initializers_values_and_trains():
    class Table(keras.layers.Layer):
        def build(self, input_shape):
            self.table = add_table_weight(
                self,
                name="table",
                shape=(3000, 2),
                initializer=RowChunked(keras.initializers.RandomNormal(seed=4), chunk_rows=1000),
                regularizer=keras.regularizers.L2(0.5),
            )

        def call(self, ids):
            return keras.ops.take(self.table, ids, axis=0)

    layer = Table()
    layer.build(None)
    expected = RowChunked(keras.initializers.RandomNormal(seed=4), chunk_rows=1000)((3000, 2))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(layer.table), keras.ops.convert_to_numpy(expected)
    )
    assert layer.table.trainable and layer.table.path.endswith("table")
    assert len(layer.losses) == 1  # the regularizer is attached
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer.losses[0]),
        0.5 * np.sum(keras.ops.convert_to_numpy(expected) ** 2),
        rtol=1e-5,
    )
