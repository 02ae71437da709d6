import os
import tempfile

import keras
import numpy as np
import pytest

from keras_unimixer import layers
from keras_unimixer.datasets import FeatureSpec

SPECS = [
    FeatureSpec("user", "categorical", 10, group="user"),
    FeatureSpec("age", "numeric", group="user"),
    FeatureSpec("item", "categorical", 7, group="item"),
    FeatureSpec("genres", "multi_categorical", 6, group="item", max_length=3),
    FeatureSpec("hour", "categorical", 5, group="context"),
]
BATCH = 4


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "user": rng.integers(0, 10, BATCH).astype("int32"),
        "age": rng.standard_normal(BATCH).astype("float32"),
        "item": rng.integers(0, 7, BATCH).astype("int32"),
        "genres": np.array([[2, 3, 0], [4, 0, 0], [2, 5, 3], [0, 0, 0]], dtype="int32"),
        "hour": rng.integers(0, 5, BATCH).astype("int32"),
    }


def numpy_embeddings(tokenizer, data):
    weights = {w.name: keras.ops.convert_to_numpy(w) for w in tokenizer.weights}
    embedded = []
    for spec in tokenizer.ordered_features:
        value = data[spec.name]
        if spec.kind == "numeric":
            embedded.append(
                value[:, None] * weights["age_numeric_kernel"] + weights["age_numeric_bias"]
            )
        elif spec.kind == "categorical":
            embedded.append(weights[f"{spec.name}_embedding"][value])
        else:
            table = weights[f"{spec.name}_embedding"]
            rows = []
            for ids in value:
                kept = ids[ids != 0]
                rows.append(table[kept].mean(0) if len(kept) else np.zeros(table.shape[1]))
            embedded.append(np.stack(rows))
    return embedded, weights


@pytest.mark.parametrize("num_tokens", [3, 4])
def test_rankmixer_mode_matches_the_spec(num_tokens):
    tokenizer = layers.FeatureTokenizer(SPECS, embedding_dim=4, token_dim=6, num_tokens=num_tokens)
    data = inputs()
    tokens = keras.ops.convert_to_numpy(tokenizer(data))
    assert tokens.shape == (BATCH, num_tokens, 6)
    embedded, weights = numpy_embeddings(tokenizer, data)
    flat = np.concatenate(embedded, axis=1)  # 5 features * 4 = 20
    chunk = int(np.ceil(20 / num_tokens))
    flat = np.pad(flat, [(0, 0), (0, chunk * num_tokens - 20)])
    chunks = flat.reshape(BATCH, num_tokens, chunk)
    expected = np.einsum("btc,tcd->btd", chunks, weights["token_kernel"]) + weights["token_bias"]
    np.testing.assert_allclose(tokens, expected, rtol=1e-5, atol=1e-6)


def test_field_mode_without_projection_is_the_embeddings():
    tokenizer = layers.FeatureTokenizer(SPECS, 4, token_dim=4, mode="field", project=False)
    data = inputs()
    tokens = keras.ops.convert_to_numpy(tokenizer(data))
    embedded, _ = numpy_embeddings(tokenizer, data)
    np.testing.assert_allclose(tokens, np.stack(embedded, axis=1), rtol=1e-6, atol=1e-7)
    assert tokenizer.num_tokens == 5
    # The all-padding multi-valued row embeds to zeros.
    np.testing.assert_array_equal(tokens[3, 3], np.zeros(4))


def test_group_mode_has_one_token_per_group():
    tokenizer = layers.FeatureTokenizer(SPECS, 4, token_dim=8, mode="group")
    assert tokenizer(inputs()).shape == (BATCH, 3, 8)
    kernel_shapes = {w.name: tuple(w.shape) for w in tokenizer.weights if "group_kernel" in w.name}
    assert kernel_shapes == {
        "user_group_kernel": (8, 8),
        "item_group_kernel": (8, 8),
        "context_group_kernel": (4, 8),
    }


@pytest.mark.parametrize(
    "mode, embedding",
    [("rankmixer", "dense"), ("field", "dense"), ("group", "dense"), ("rankmixer", "distributed")],
)
def test_config_and_keras_round_trip_inside_a_model(mode, embedding):
    data = inputs()
    model_inputs = {
        "user": keras.Input(shape=(), dtype="int32", name="user"),
        "age": keras.Input(shape=(), dtype="float32", name="age"),
        "item": keras.Input(shape=(), dtype="int32", name="item"),
        "genres": keras.Input(shape=(3,), dtype="int32", name="genres"),
        "hour": keras.Input(shape=(), dtype="int32", name="hour"),
    }
    tokenizer = layers.FeatureTokenizer(
        SPECS, 4, token_dim=8, num_tokens=2, mode=mode, embedding=embedding
    )
    config = tokenizer.get_config()
    assert layers.FeatureTokenizer.from_config(config).get_config() == config
    model = keras.Model(model_inputs, tokenizer(model_inputs))
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "m.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        restored.predict(data, verbose=0), model.predict(data, verbose=0), atol=1e-6
    )


def test_distributed_embedding_gives_the_dense_tokens(caplog):
    """keras-rs DistributedEmbedding (no SparseCore here: the default-device fallback, logged)
    with the dense path's tables gives the dense path's tokens, padding ids excluded."""
    data = inputs(3)
    dense = layers.FeatureTokenizer(SPECS, 4, token_dim=8, num_tokens=3)
    dense(data)
    with caplog.at_level("WARNING", logger="keras_unimixer.layers"):
        distributed = layers.FeatureTokenizer(
            SPECS, 4, token_dim=8, num_tokens=3, embedding="distributed"
        )
        distributed(data)
    assert "no TPU SparseCore" in caplog.text
    tables = {w.name: w for w in dense.weights}
    for weight in distributed.weights:
        if weight.name == "embeddings":  # .../<feature>_table/embeddings
            feature = weight.path.split("/")[-2].removesuffix("_table")
            weight.assign(tables[f"{feature}_embedding"])
        else:
            weight.assign(tables[weight.name])
    assert len(distributed.weights) == len(dense.weights)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(distributed(data)),
        keras.ops.convert_to_numpy(dense(data)),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="embeddings_regularizer"):
        layers.FeatureTokenizer(
            SPECS,
            4,
            token_dim=8,
            num_tokens=3,
            embedding="distributed",
            embeddings_regularizer="l2",
        )


def test_missing_feature_is_named():
    tokenizer = layers.FeatureTokenizer(SPECS, 4, token_dim=8, num_tokens=2)
    data = inputs()
    del data["hour"]
    with pytest.raises(ValueError, match=r"lack features \['hour'\]"):
        tokenizer(data)


@pytest.mark.parametrize(
    "kwargs,argument",
    [
        ({"embedding_dim": 0, "token_dim": 8, "num_tokens": 2}, "embedding_dim"),
        ({"embedding_dim": 4, "token_dim": 8, "num_tokens": None}, "num_tokens"),
        ({"embedding_dim": 4, "token_dim": 8, "mode": "bag"}, "mode"),
        ({"embedding_dim": 4, "token_dim": 8, "num_tokens": 2, "embedding": "sparse"}, "embedding"),
        ({"embedding_dim": 4, "token_dim": 8, "mode": "field", "project": False}, "project"),
    ],
)
def test_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        layers.FeatureTokenizer(SPECS, **kwargs)


def test_bad_feature_specs():
    with pytest.raises(ValueError, match="`kind`"):
        FeatureSpec("x", "text", 10)
    with pytest.raises(ValueError, match="`vocabulary_size`"):
        FeatureSpec("x", "categorical", 2)


def test_a_table_over_2_20_rows_holds_the_row_chunked_draw():
    # Under TensorFlow it is filled in place (`add_table_weight`); its values must not change.
    from keras_unimixer.layers.initializers import RowChunked, distinct

    rows = 2**20 + 5
    initializer = keras.initializers.RandomUniform(-0.05, 0.05, seed=11)
    tokenizer = layers.FeatureTokenizer(
        [FeatureSpec("uid", "categorical", rows)],
        2,
        token_dim=2,
        mode="field",
        project=False,
        embeddings_initializer=initializer,
    )
    tokenizer.build({"uid": (None,)})
    table = keras.ops.convert_to_numpy(tokenizer.uid_embedding)
    expected = RowChunked(distinct(initializer, 0))((rows, 2))
    np.testing.assert_array_equal(table, keras.ops.convert_to_numpy(expected))
    assert np.abs(table).max() <= 0.05 and table[-5:].std() > 0  # the last, partial block too


@keras.saving.register_keras_serializable(package="keras_unimixer_tests")
class OneTableModel(keras.Model):
    def __init__(self, rows, **kwargs):
        super().__init__(**kwargs)
        self.rows = rows
        self.tokenizer = layers.FeatureTokenizer(
            [FeatureSpec("uid", "categorical", rows)],
            2,
            token_dim=2,
            mode="field",
            project=False,
            embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=3),
        )
        self.head = keras.layers.Dense(1)

    def call(self, inputs):
        return self.head(keras.ops.reshape(self.tokenizer(inputs), (-1, 2)))

    def get_config(self):
        return {**super().get_config(), "rows": self.rows}


def test_a_large_table_built_inside_fit_trains_and_reloads(tmp_path):
    # `fit` builds a subclassed model in a stateless scope, where Keras defers variable values:
    # the table is then drawn by its initializer instead of filled in place.
    from keras_unimixer.layers.initializers import RowChunked, distinct

    rows = 2**20 + 5
    model = OneTableModel(rows)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    ids = np.array([1, 2, rows - 1, 7] * 8, "int32")
    model.fit({"uid": ids}, np.ones((32, 1), "float32"), epochs=1, verbose=0)
    table = keras.ops.convert_to_numpy(model.tokenizer.uid_embedding)
    initializer = keras.initializers.RandomUniform(-0.05, 0.05, seed=3)
    drawn = keras.ops.convert_to_numpy(RowChunked(distinct(initializer, 0))((rows, 2)))
    untouched = np.ones(rows, bool)
    untouched[[1, 2, 7, rows - 1]] = False
    np.testing.assert_array_equal(table[untouched], drawn[untouched])
    assert not np.array_equal(table[1], drawn[1])  # a looked-up row was trained
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(reloaded.tokenizer.uid_embedding), table
    )
