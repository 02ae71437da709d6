"""Row-sparse table optimizers: the rules against numpy, dense equivalence, untouched rows."""

import keras
import numpy as np
import pytest

from keras_unimixer.optimizers import SplitOptimizer
from keras_unimixer.table_optimizer import RowSparseTableOptimizer

BACKEND = keras.backend.backend()
ROWS, DIM = 12, 3
# Three steps of lookups with repeated ids (row 4 twice in step 0; rows 0, 7 never touched).
STEP_IDS = [np.array([4, 2, 4, 9]), np.array([2, 5, 11, 5]), np.array([9, 4, 1, 3])]


def _gradient(ids, values):
    """The gradient of a lookup of `ids` with upstream `values`, as each backend's trainer gives
    it: `tf.IndexedSlices` under TensorFlow, a dense (rows, dim) array under JAX."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.IndexedSlices(
            tf.constant(values, tf.float32), tf.constant(ids, tf.int64), tf.constant([ROWS, DIM])
        )
    dense = np.zeros((ROWS, DIM), "float32")
    np.add.at(dense, ids, values)
    return keras.ops.convert_to_tensor(dense)


def _numpy_rule(rule, table, ids, values, state, step, lr=0.1):
    grad = np.zeros_like(table)
    np.add.at(grad, ids, values)
    touched = np.unique(ids)
    g = grad[touched]
    if rule == "rowwise_adagrad":
        state["a"][touched] += np.mean(g**2, axis=-1)
        table[touched] -= lr * g / (np.sqrt(state["a"][touched]) + 1e-8)[:, None]
    elif rule == "adam":
        m, v = state["m"], state["v"]
        m[touched] = 0.9 * m[touched] + 0.1 * g
        v[touched] = 0.999 * v[touched] + 0.001 * g**2
        alpha = lr * np.sqrt(1 - 0.999**step) / (1 - 0.9**step)
        table[touched] -= alpha * m[touched] / (np.sqrt(v[touched]) + 1e-7)
    return table


@pytest.mark.parametrize("rule", ["rowwise_adagrad", "adam"])
def test_rules_equal_a_numpy_reference_and_leave_untouched_rows_bit_identical(rule):
    rng = np.random.default_rng(0)
    start = rng.normal(size=(ROWS, DIM)).astype("float32")
    table = keras.Variable(start.copy(), name="item_embedding")
    optimizer = RowSparseTableOptimizer(rule, learning_rate=0.1)
    expected = start.astype("float64")
    state = {"a": np.zeros(ROWS), "m": np.zeros((ROWS, DIM)), "v": np.zeros((ROWS, DIM))}
    for step, ids in enumerate(STEP_IDS, start=1):
        values = rng.normal(size=(len(ids), DIM)).astype("float32")
        optimizer.apply([_gradient(ids, values)], [table])
        expected = _numpy_rule(rule, expected, ids, values, state, step)
    result = keras.ops.convert_to_numpy(table)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)
    for untouched in (0, 6, 7, 8, 10):
        np.testing.assert_array_equal(result[untouched], start[untouched])


@pytest.mark.parametrize("rule", ["sgd", "rowwise_adagrad"])
def test_row_l2_penalizes_the_looked_up_rows_only(rule):
    """`row_l2`: each distinct looked-up row's gradient gains `l2 * w` (the gradient of
    `(l2 / 2) ||w||^2` over the step's rows) before the rule; other rows are left bit-identical."""
    rng = np.random.default_rng(5)
    start = rng.normal(size=(ROWS, DIM)).astype("float32")
    table = keras.Variable(start.copy(), name="item_embedding")
    optimizer = RowSparseTableOptimizer(rule, learning_rate=0.1, row_l2=0.5)
    expected, accumulator = start.astype("float64"), np.zeros(ROWS)
    for ids in STEP_IDS:
        values = rng.normal(size=(len(ids), DIM)).astype("float32")
        optimizer.apply([_gradient(ids, values)], [table])
        grad = np.zeros_like(expected)
        np.add.at(grad, ids, values)
        touched = np.unique(ids)
        g = grad[touched] + 0.5 * expected[touched]
        if rule == "sgd":
            expected[touched] -= 0.1 * g
        else:
            accumulator[touched] += np.mean(g**2, axis=-1)
            expected[touched] -= 0.1 * g / (np.sqrt(accumulator[touched]) + 1e-8)[:, None]
    result = keras.ops.convert_to_numpy(table)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)
    for untouched in (0, 6, 7, 8, 10):
        np.testing.assert_array_equal(result[untouched], start[untouched])
    assert RowSparseTableOptimizer.from_config(optimizer.get_config()).row_l2 == 0.5
    with pytest.raises(ValueError, match="`row_l2` must be >= 0"):
        RowSparseTableOptimizer(rule, row_l2=-0.1)


@pytest.mark.parametrize("rule, dense", [("sgd", "sgd"), ("adagrad", "adagrad")])
def test_sgd_and_adagrad_equal_keras_dense_optimizers(rule, dense):
    rng = np.random.default_rng(1)
    start = rng.normal(size=(ROWS, DIM)).astype("float32")
    sparse_table = keras.Variable(start.copy(), name="a_embedding")
    dense_table = keras.Variable(start.copy(), name="b_embedding")
    sparse = RowSparseTableOptimizer(rule, learning_rate=0.1)
    reference = keras.optimizers.get({"class_name": dense, "config": {"learning_rate": 0.1}})
    for ids in STEP_IDS:
        values = rng.normal(size=(len(ids), DIM)).astype("float32")
        sparse.apply([_gradient(ids, values)], [sparse_table])
        full = np.zeros((ROWS, DIM), "float32")
        np.add.at(full, ids, values)
        reference.apply([keras.ops.convert_to_tensor(full)], [dense_table])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(sparse_table),
        keras.ops.convert_to_numpy(dense_table),
        rtol=1e-5,
        atol=1e-7,
    )


class DenseAdagrad(keras.optimizers.Adagrad):
    """Keras' Adagrad on the dense gradient. Given TensorFlow's `IndexedSlices` as they are,
    Keras' Adagrad squares the gradient of each lookup of a repeated id separately
    (g1^2 + g2^2 rather than (g1 + g2)^2), which is not Adagrad on the table's gradient."""

    def update_step(self, gradient, variable, learning_rate):
        if BACKEND == "tensorflow":
            import tensorflow as tf

            gradient = tf.convert_to_tensor(gradient)
        return super().update_step(gradient, variable, learning_rate)


def _lookup_model():
    ids = keras.Input((2,), dtype="int32", name="ids")
    embedded = keras.layers.Embedding(ROWS, DIM, name="items")(ids)
    output = keras.layers.Dense(1)(keras.layers.Flatten()(embedded))
    return keras.Model(ids, output)


def test_fit_with_a_split_optimizer_equals_dense_adagrad_and_reloads(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 6, size=(64, 2)).astype("int32")  # rows 6.. never looked up
    y = rng.normal(size=(64, 1)).astype("float32")
    results, models = [], []
    for tables in (RowSparseTableOptimizer("adagrad", 0.05), DenseAdagrad(0.05)):
        keras.utils.set_random_seed(3)
        model = _lookup_model()
        start = keras.ops.convert_to_numpy(model.get_layer("items").embeddings)
        model.compile(SplitOptimizer(keras.optimizers.Adam(1e-2), tables), "mse")
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        results.append(keras.ops.convert_to_numpy(model.get_layer("items").embeddings))
        models.append(model)
    model = models[0]
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(results[0][6:], start[6:])
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert reloaded.optimizer.table_optimizer.rule == "adagrad"
    slots = [v for v in reloaded.optimizer.table_optimizer.variables if "accumulator" in v.name]
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(slots[0]),
        keras.ops.convert_to_numpy(
            [v for v in model.optimizer.table_optimizer.variables if "accumulator" in v.name][0]
        ),
    )


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="`rule` must be one of"):
        RowSparseTableOptimizer("lamb")
    with pytest.raises(ValueError, match="`beta_1` must be in"):
        RowSparseTableOptimizer("adam", beta_1=1.0)
    optimizer = RowSparseTableOptimizer("adagrad")
    with pytest.raises(ValueError, match="updates 2-D tables"):
        optimizer.build([keras.Variable(np.zeros(3, "float32"), name="bias")])


@pytest.mark.skipif(BACKEND != "tensorflow", reason="a TensorFlow graph's variable reads")
@pytest.mark.parametrize("rule", ["sgd", "adagrad", "rowwise_adagrad", "adam"])
def test_a_compiled_tensorflow_update_reads_only_the_looked_up_rows(rule):
    """Keras' TensorFlow optimizer gives `update_step` the raw `tf.Variable`; a read of the whole
    table in the step's graph (as `ops.take` makes to learn its shape) makes the scatter copy
    the table on every step when XLA is off (a 10^7-row update: 35 ms instead of 2)."""
    import tensorflow as tf

    table = keras.Variable(np.zeros((ROWS, DIM), "float32"), name="item_embedding")
    optimizer = RowSparseTableOptimizer(rule, learning_rate=0.1)
    optimizer.build([table])
    values = tf.ones((4, DIM))

    @tf.function
    def step(ids):
        optimizer.apply([tf.IndexedSlices(values, ids, (ROWS, DIM))], [table])

    graph = step.get_concrete_function(tf.TensorSpec([4], tf.int32)).graph
    reads = [
        op.outputs[0].shape.as_list()
        for op in graph.get_operations()
        if op.type == "ReadVariableOp"
    ]
    assert reads and [ROWS, DIM] not in reads and [ROWS] not in reads
    step(tf.constant(STEP_IDS[0], tf.int32))
    result = keras.ops.convert_to_numpy(table)
    assert np.all(result[[2, 4, 9]] != 0) and np.all(result[[0, 1, 3]] == 0)


def _tokenizer_model():
    from keras_unimixer.features import FeatureSpec
    from keras_unimixer.layers import FeatureTokenizer

    features = [
        FeatureSpec("item", "categorical", ROWS),
        FeatureSpec("tags", "multi_categorical", ROWS, max_length=3),
        FeatureSpec("price", "numeric"),
    ]
    inputs = {
        "item": keras.Input((), dtype="int32", name="item"),
        "tags": keras.Input((3,), dtype="int32", name="tags"),
        "price": keras.Input((), dtype="float32", name="price"),
    }
    tokens = FeatureTokenizer(features, DIM, token_dim=4, num_tokens=2, name="tokenizer")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(tokens)))


@pytest.mark.skipif(BACKEND != "jax", reason="TensorFlow's step is row-sparse already (above)")
@pytest.mark.parametrize(
    "rule, row_l2", [("adagrad", 0.0), ("sgd", 0.0), ("rowwise_adagrad", 0.0), ("sgd", 0.5)]
)
def test_row_sparse_steps_in_fit_equal_the_dense_rule_with_repeated_ids(rule, row_l2, monkeypatch):
    """The JAX trainer's row-sparse step (`enable_row_sparse_steps`) gives the same model as the
    same rule on Keras' dense gradient."""
    from keras_unimixer import table_optimizer
    from keras_unimixer.table_optimizer import enable_row_sparse_steps

    row_updates = []
    original = table_optimizer.RowSparseTableOptimizer._row_update

    def counting(self, gradient, variable, slots, learning_rate):
        row_updates.append(variable.name)
        return original(self, gradient, variable, slots, learning_rate)

    monkeypatch.setattr(table_optimizer.RowSparseTableOptimizer, "_row_update", counting)

    rng = np.random.default_rng(4)
    x = {
        "item": rng.integers(2, 7, 96).astype("int32"),  # ids 7.. never looked up
        # The padding id 0 is looked up, so `row_l2` penalizes it in the row step, but its
        # gradient is zero, so the dense path's rule leaves it: no padding where they must agree.
        "tags": rng.integers(1 if row_l2 else 0, 7, (96, 3)).astype("int32"),
        "price": rng.normal(size=96).astype("float32"),
    }
    y = rng.normal(size=(96, 1)).astype("float32")
    results = []
    for sparse in (True, False):
        keras.utils.set_random_seed(5)
        model = _tokenizer_model()
        start = {v.name: keras.ops.convert_to_numpy(v) for v in model.weights}
        tables = RowSparseTableOptimizer(rule, 0.05, row_l2=row_l2)
        model.compile(SplitOptimizer(keras.optimizers.Adam(1e-2), tables), "mse")
        if sparse:
            enable_row_sparse_steps(model)
        else:  # the rule on the dense gradient: Keras' own step, the optimizer's dense path
            model.train_step = type(model).train_step.__get__(model)
        model.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0)
        results.append({v.name: keras.ops.convert_to_numpy(v) for v in model.weights})
    assert sorted(set(row_updates)) == ["item_embedding", "tags_embedding"]  # traced, sparse
    for name, value in results[0].items():
        np.testing.assert_allclose(value, results[1][name], rtol=1e-5, atol=1e-6, err_msg=name)
    table = results[0]["item_embedding"]
    np.testing.assert_array_equal(table[7:], start["item_embedding"][7:])


@pytest.mark.skipif(BACKEND != "jax", reason="the JAX step's distinct ids")
def test_distinct_ids_equal_numpy_unique_padded_to_the_batch():
    from keras_unimixer.table_optimizer import distinct_ids

    ids = np.array([[7, 2, 7], [0, 2, 9], [7, 7, 100]], "int32")
    unique, positions, valid = (np.asarray(value) for value in distinct_ids(ids))
    expected, inverse = np.unique(ids, return_inverse=True)
    np.testing.assert_array_equal(unique, [0, 2, 7, 9, 100, -1, -1, -1, -1])
    np.testing.assert_array_equal(unique[: expected.size], expected)
    np.testing.assert_array_equal(positions, inverse.reshape(-1))
    np.testing.assert_array_equal(unique[positions], ids.reshape(-1))
    np.testing.assert_array_equal(valid, unique >= 0)
