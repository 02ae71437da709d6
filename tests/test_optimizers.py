import keras
import numpy as np
import pytest

from keras_unimixer.optimizers import SplitOptimizer, is_embedding_table, make_optimizer
from keras_unimixer.table_optimizer import RowSparseTableOptimizer


def tiny_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((3,), dtype="int32"),
            keras.layers.Embedding(10, 4),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )


def data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 10, (64, 3)), rng.normal(size=(64, 1)).astype("float32")


def test_tables_and_dense_variables_follow_their_own_optimizer():
    """Three steps of SplitOptimizer(Adam, Adagrad) equal Adam and Adagrad applied separately."""
    model, reference = tiny_model(), tiny_model()
    reference.set_weights(model.get_weights())
    split = SplitOptimizer(keras.optimizers.Adam(0.01), keras.optimizers.Adagrad(0.5))
    adam, adagrad = keras.optimizers.Adam(0.01), keras.optimizers.Adagrad(0.5)
    rng = np.random.default_rng(1)
    variables = model.trainable_variables
    tables = [v for v in reference.trainable_variables if is_embedding_table(v)]
    dense = [v for v in reference.trainable_variables if not is_embedding_table(v)]
    assert len(tables) == 1 and tables[0].path.endswith("/embeddings") and len(dense) == 2
    for _ in range(3):
        grads = [rng.normal(size=v.shape).astype("float32") for v in variables]
        split.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
        table_grads = [g for g, v in zip(grads, variables, strict=True) if is_embedding_table(v)]
        dense_grads = [
            g for g, v in zip(grads, variables, strict=True) if not is_embedding_table(v)
        ]
        adagrad.apply([keras.ops.convert_to_tensor(g) for g in table_grads], tables)
        adam.apply([keras.ops.convert_to_tensor(g) for g in dense_grads], dense)
    for got, want in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert int(split.iterations) == int(split.table_optimizer.iterations) == 3


def test_fit_saves_reloads_and_continues_like_an_uninterrupted_run(tmp_path):
    """Under this pass's backend (JAX: stateless_apply); the optimizer state travels in .keras."""
    x, y = data()

    def fitted(epochs):
        model = tiny_model()
        model.compile(optimizer=make_optimizer(0.01, "adagrad", 0.3), loss="mse")
        model.fit(x, y, epochs=epochs, batch_size=16, shuffle=False, verbose=0)
        return model

    model = fitted(2)
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(reloaded.optimizer, SplitOptimizer)
    assert isinstance(reloaded.optimizer.table_optimizer, RowSparseTableOptimizer)
    assert reloaded.optimizer.table_optimizer.rule == "adagrad"
    assert int(reloaded.optimizer.iterations) == 8
    reloaded.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    straight = fitted(3)
    for got, want in zip(reloaded.get_weights(), straight.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert straight.evaluate(x, y, verbose=0) < float(np.mean(y**2))  # it trained


def test_a_new_learning_rate_scales_both_optimizers():
    optimizer = make_optimizer(0.01, "sgd", 0.4)
    optimizer.learning_rate = 0.001
    assert float(optimizer.learning_rate) == pytest.approx(0.001)
    assert float(optimizer.table_optimizer.learning_rate) == pytest.approx(0.04)


@pytest.mark.parametrize(
    "arguments, message",
    [(("ftrl", None), "embedding_optimizer"), (("adagrad", 0.0), "embedding_learning_rate")],
)
def test_bad_table_optimizers_are_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        make_optimizer(0.01, *arguments)
    assert isinstance(make_optimizer(0.01), keras.optimizers.Adam)


def test_decoupled_weight_decay_per_group_shrinks_tables_and_dense_variables_at_their_rates():
    model = tiny_model()
    variables = model.trainable_variables
    before = [keras.ops.convert_to_numpy(v) for v in variables]
    optimizer = make_optimizer(0.1, weight_decay=0.01, table_weight_decay=0.5)
    assert isinstance(optimizer, SplitOptimizer)
    # Zero gradients: Adam's own step is 0, so all that moves a variable is its decay.
    optimizer.apply([keras.ops.zeros(v.shape) for v in variables], variables)
    for variable, start in zip(variables, before, strict=True):
        decay = 0.5 if is_embedding_table(variable) else 0.01
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(variable), start * (1 - 0.1 * decay), rtol=1e-6
        )
    same = make_optimizer(0.1, weight_decay=0.01)
    assert isinstance(same, keras.optimizers.AdamW) and same.weight_decay == 0.01


def test_gradients_of_both_groups_are_clipped_to_one_global_norm():
    model = tiny_model()
    variables = model.trainable_variables
    before = [keras.ops.convert_to_numpy(v) for v in variables]
    grads = [np.full(v.shape, 3.0, "float32") for v in variables]
    norm = np.sqrt(sum(float((g**2).sum()) for g in grads))
    split = SplitOptimizer(
        keras.optimizers.SGD(1.0), keras.optimizers.SGD(1.0), global_clipnorm=1.0
    )
    split.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
    for variable, start, grad in zip(variables, before, grads, strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(variable), start - grad / norm, rtol=1e-5, atol=1e-6
        )
    config = SplitOptimizer.from_config(split.get_config()).get_config()
    assert config["global_clipnorm"] == 1.0
    assert make_optimizer(1e-3, clip_norm=2.0).global_clipnorm == 2.0


def test_a_row_sparse_table_optimizer_refuses_a_table_decay_or_a_global_clip():
    with pytest.raises(ValueError, match="updates only the rows a batch looked up"):
        make_optimizer(1e-3, "rowwise_adagrad", table_weight_decay=0.01)
    with pytest.raises(ValueError, match="updates only the rows a batch looked up"):
        make_optimizer(1e-3, "adagrad", clip_norm=1.0)
    # The tables' decay defaults to the dense one: refused too, unless set to 0.
    with pytest.raises(ValueError, match="updates only the rows a batch looked up"):
        make_optimizer(1e-3, "rowwise_adagrad", weight_decay=5e-5)
    split = make_optimizer(1e-3, "rowwise_adagrad", weight_decay=5e-5, table_weight_decay=0.0)
    assert split.dense_optimizer.weight_decay == 5e-5
    assert make_optimizer(1e-3, "rmsprop", weight_decay=0.01).table_optimizer.weight_decay == 0.01
    with pytest.raises(ValueError, match="`weight_decay` must be >= 0"):
        make_optimizer(1e-3, weight_decay=-1.0)


def test_the_table_l2_goes_to_a_row_sparse_optimizer_and_is_refused_elsewhere():
    split = make_optimizer(1e-3, "rowwise_adagrad", table_l2=0.05)
    assert split.table_optimizer.row_l2 == 0.05
    for table_optimizer in (None, "rmsprop"):
        with pytest.raises(ValueError, match="rows a row-sparse table optimizer"):
            make_optimizer(1e-3, table_optimizer, table_l2=0.05)
    with pytest.raises(ValueError, match="`embedding_l2` must be >= 0"):
        make_optimizer(1e-3, "sgd", table_l2=-1.0)
