import os
import subprocess
import sys
import tempfile

import keras
import numpy as np
import pytest

from keras_unimixer import datasets, models, tasks

TF_ONLY = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TFRS is TF-only")


def to_numpy(value):
    return keras.ops.convert_to_numpy(value)


def numpy_retrieval_loss(queries, candidates, temperature=None, probability=None, ids=None):
    scores = queries @ candidates.T
    if temperature:
        scores = scores / temperature
    if probability is not None:
        scores = scores - np.log(np.clip(probability, 1e-6, 1.0))[None, :]
    if ids is not None:
        same = ids[: len(queries), None] == ids[None, :]
        scores = np.where(same & ~np.eye(*scores.shape, dtype=bool), scores - 1e36, scores)
    scores = scores - scores.max(axis=1, keepdims=True)
    log_softmax = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    return float(-np.trace(log_softmax[:, : len(queries)]))


@pytest.fixture
def embeddings():
    rng = np.random.default_rng(0)
    return rng.standard_normal((6, 4)).astype("float32"), rng.standard_normal((6, 4)).astype(
        "float32"
    )


@pytest.mark.parametrize(
    "options",
    [{}, {"temperature": 0.5}, {"probability": True}, {"accidental": True}],
)
def test_retrieval_loss_matches_a_numpy_reference(embeddings, options):
    queries, candidates = embeddings
    ids = np.array([1, 2, 1, 3, 4, 2])
    probability = np.linspace(0.05, 0.5, 6).astype("float32")
    task = tasks.Retrieval(
        temperature=options.get("temperature"),
        remove_accidental_hits=options.get("accidental", False),
    )
    loss = task(
        queries,
        candidates,
        candidate_sampling_probability=probability if options.get("probability") else None,
        candidate_ids=ids if options.get("accidental") else None,
    )
    expected = numpy_retrieval_loss(
        queries,
        candidates,
        temperature=options.get("temperature"),
        probability=probability if options.get("probability") else None,
        ids=ids if options.get("accidental") else None,
    )
    assert float(to_numpy(loss)) == pytest.approx(expected, rel=1e-5)


@TF_ONLY
@pytest.mark.parametrize("temperature", [None, 0.2])
def test_retrieval_loss_equals_tfrs(embeddings, temperature):
    import tensorflow_recommenders as tfrs

    queries, candidates = embeddings
    probability = np.linspace(0.05, 0.5, 6).astype("float32")
    ours = tasks.Retrieval(temperature=temperature)(
        queries, candidates, candidate_sampling_probability=probability
    )
    theirs = tfrs.tasks.Retrieval(temperature=temperature)(
        queries, candidates, candidate_sampling_probability=probability
    )
    assert abs(float(to_numpy(ours)) - float(theirs.numpy())) <= 1e-5 * max(1, abs(float(ours)))


@TF_ONLY
@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_ranking_loss_and_metric_equal_tfrs(loss):
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    rng = np.random.default_rng(1)
    labels = (rng.random((32, 1)) < 0.4).astype("float32")
    predictions = rng.random((32, 1)).astype("float32")
    if loss == "bce":
        ours = tasks.Ranking(metrics=[keras.metrics.AUC(name="auc")])
        theirs = tfrs.tasks.Ranking(metrics=[tf.keras.metrics.AUC(name="auc")])
    else:
        ours = tasks.Ranking(
            loss=keras.losses.MeanSquaredError(), metrics=[keras.metrics.RootMeanSquaredError()]
        )
        theirs = tfrs.tasks.Ranking(
            loss=tf.keras.losses.MeanSquaredError(),
            metrics=[tf.keras.metrics.RootMeanSquaredError()],
        )
    our_loss = float(to_numpy(ours(labels, predictions)))
    their_loss = float(theirs(labels, predictions).numpy())
    assert our_loss == pytest.approx(their_loss, abs=1e-5)
    our_metric = float(to_numpy(ours.ranking_metrics[0].result()))
    their_metric = float(theirs._ranking_metrics[0].result().numpy())
    assert our_metric == pytest.approx(their_metric, abs=1e-4)


@TF_ONLY
def test_factorized_top_k_equals_tfrs():
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    rng = np.random.default_rng(2)
    corpus = rng.standard_normal((50, 4)).astype("float32")
    queries = rng.standard_normal((20, 4)).astype("float32")
    true = corpus[rng.integers(0, 50, 20)]
    ours = tasks.FactorizedTopK(candidates=corpus, ks=(1, 5, 10))
    ours.update_state(queries, true)
    theirs = tfrs.metrics.FactorizedTopK(
        candidates=tf.data.Dataset.from_tensor_slices(corpus).batch(16), ks=(1, 5, 10)
    )
    theirs.update_state(queries, true)
    expected = [float(v.numpy()) for v in theirs.result()]
    actual = [float(to_numpy(v)) for v in ours.result().values()]
    np.testing.assert_allclose(actual, expected, atol=1e-6)
    assert 0 < actual[-1] <= 1


@pytest.fixture(scope="module")
def data():
    return datasets.make_synthetic(num_examples=3000, num_categorical=6, num_numeric=1, seed=2)


def group(data, name):
    return [f for f in data.features if f.group == name]


SMALL_TOWER = dict(num_layers=1, num_tokens=4, token_dim=8, embedding_dim=4, hidden_units=())


def test_ranking_task_model_trains_and_reports_task_metrics(data):
    tower = models.Tower(data.features, output_dim=1, **SMALL_TOWER)
    task = tasks.Ranking(
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.AUC(from_logits=True, name="auc")],
    )
    model = tasks.TaskModel(tower, task)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    features, labels = data.arrays("train")
    history = model.fit(features, labels["click"][:, None], batch_size=200, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert "auc" in history.history and 0.0 <= history.history["auc"][-1] <= 1.0
    result = model.evaluate(
        *[data.arrays("test")[0], data.arrays("test")[1]["click"][:, None]],
        verbose=0,
        return_dict=True,
    )
    assert set(result) >= {"loss", "auc"}


def two_tower(data, task):
    user, item = group(data, "user"), group(data, "item")
    query = models.Tower(user, output_dim=8, **SMALL_TOWER)
    candidate = models.Tower(item, output_dim=8, **SMALL_TOWER)
    return (
        tasks.TwoTowerModel(query, candidate, task, [f.name for f in user], [f.name for f in item]),
        query,
        candidate,
    )


def test_two_tower_model_trains_with_in_batch_softmax(data):
    features, _ = data.arrays("train")
    item_names = [f.name for f in group(data, "item")]
    holder = {}
    metric = tasks.FactorizedTopK(
        candidates=lambda: holder["candidate"]({n: features[n][:500] for n in item_names}),
        ks=(1, 10, 100),
    )
    model, _, candidate = two_tower(data, tasks.Retrieval(metrics=[metric]))
    holder["candidate"] = candidate
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(features, batch_size=128, epochs=2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    result = model.evaluate(
        {n: v[:500] for n, v in features.items()}, batch_size=100, verbose=0, return_dict=True
    )
    top_100 = result["factorized_top_k/top_100_categorical_accuracy"]
    top_1 = result["factorized_top_k/top_1_categorical_accuracy"]
    assert 0 <= top_1 <= top_100 <= 1 and top_100 > 0


def test_brute_force_index_matches_numpy_and_survives_saving():
    rng = np.random.default_rng(3)
    corpus = rng.standard_normal((40, 5)).astype("float32")
    ids = np.arange(100, 140)
    queries = rng.standard_normal((7, 5)).astype("float32")
    index = tasks.BruteForceIndex(num_candidates=40, embedding_dim=5, k=3)
    index.index_from(corpus, ids)
    scores, top_ids = index(queries)
    expected = ids[np.argsort(-(queries @ corpus.T), axis=1)[:, :3]]
    np.testing.assert_array_equal(to_numpy(top_ids), expected)
    inputs = keras.Input(shape=(5,))
    model = keras.Model(inputs, index(inputs))
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "index.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(to_numpy(restored(queries)[1]), expected)


def test_brute_force_index_rejects_bad_candidates():
    index = tasks.BruteForceIndex(num_candidates=4, embedding_dim=2, k=2)
    with pytest.raises(ValueError, match="`embeddings` must have shape"):
        index.index_from(np.zeros((3, 2)), np.arange(3))
    with pytest.raises(ValueError, match="`k`=5"):
        tasks.BruteForceIndex(num_candidates=4, embedding_dim=2, k=5)


@TF_ONLY
def test_tfrs_ranking_model_reports_tfrs_metrics(data):
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    from keras_unimixer.tfrs import TFRSRankingModel

    tower = models.Tower(data.features, output_dim=1, **SMALL_TOWER)
    task = tfrs.tasks.Ranking(
        loss=tf.keras.losses.MeanSquaredError(), metrics=[tf.keras.metrics.RootMeanSquaredError()]
    )
    model = TFRSRankingModel(tower, task)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    features, labels = data.arrays("train")
    history = model.fit(features, labels["click"][:, None], batch_size=200, epochs=2, verbose=0)
    rmse = history.history["root_mean_squared_error"]
    assert len(rmse) == 2 and rmse[-1] < rmse[0]
    assert rmse[-1] == pytest.approx(np.sqrt(history.history["loss"][-1]), rel=0.05)


@TF_ONLY
def test_tfrs_retrieval_model_with_factorized_top_k_and_brute_force_export(data, tmp_path):
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    from keras_unimixer.tfrs import TFRSRetrievalModel

    features, _ = data.arrays("train")
    user, item = group(data, "user"), group(data, "item")
    query = models.Tower(user, output_dim=8, **SMALL_TOWER)
    candidate = models.Tower(item, output_dim=8, **SMALL_TOWER)
    corpus = {f.name: features[f.name][:300] for f in item}
    candidates = tf.data.Dataset.from_tensor_slices(corpus).batch(100).map(lambda x: candidate(x))
    task = tfrs.tasks.Retrieval(
        metrics=tfrs.metrics.FactorizedTopK(candidates=candidates, ks=(1, 10, 100))
    )
    model = TFRSRetrievalModel(
        query, candidate, task, [f.name for f in user], [f.name for f in item]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(features, batch_size=128, epochs=2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    result = model.evaluate(
        {n: v[:300] for n, v in features.items()}, batch_size=100, verbose=0, return_dict=True
    )
    assert 0 < result["factorized_top_k/top_100_categorical_accuracy"] <= 1

    index = tfrs.layers.factorized_top_k.BruteForce(query, k=5)
    ids = tf.constant(np.arange(300).astype("int64"))
    index.index_from_dataset(
        tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices(ids).batch(100), candidates))
    )
    queries = {f.name: features[f.name][:4] for f in user}
    _, top_ids = index(queries)
    tf.saved_model.save(index, str(tmp_path / "index"))
    reloaded = tf.saved_model.load(str(tmp_path / "index"))
    _, reloaded_ids = reloaded(queries)
    np.testing.assert_array_equal(reloaded_ids.numpy(), top_ids.numpy())


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="checks the JAX message")
def test_tfrs_module_says_what_to_do_under_jax():
    from keras_unimixer.tfrs import import_tfrs

    with pytest.raises(ImportError, match="keras_unimixer.tasks"):
        import_tfrs()


@TF_ONLY
def test_tfrs_import_error_names_the_environment_variable():
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["KERAS_BACKEND"] = "tensorflow"
    code = "from keras_unimixer.tfrs import import_tfrs\nimport_tfrs()"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "TF_USE_LEGACY_KERAS=1" in result.stderr and "before TensorFlow" in result.stderr


def test_task_model_feeds_a_tower_its_own_features_by_name(data):
    # A tower over two features that are not first in key order, fed the full feature dict:
    # Keras would otherwise hand it the first two entries (measured: different outputs).
    first = keras.Input(shape=(), dtype="int32", name="cat_3")
    second = keras.Input(shape=(), dtype="int32", name="cat_5")
    joined = keras.layers.Concatenate()(
        [keras.layers.Embedding(60, 4)(first), keras.layers.Embedding(60, 4)(second)]
    )
    tower = keras.Model({"cat_3": first, "cat_5": second}, keras.layers.Dense(1)(joined))
    model = tasks.TaskModel(tower, tasks.Ranking())
    features, _ = data.arrays("test")
    exact = tower.predict({"cat_3": features["cat_3"], "cat_5": features["cat_5"]}, verbose=0)
    np.testing.assert_allclose(model.predict(features, verbose=0), exact, atol=1e-6)
    with pytest.raises(ValueError, match=r"needs features \['cat_5'\]"):
        model({"cat_3": features["cat_3"]})


def test_ranking_task_round_trips_through_its_config():
    task = tasks.Ranking(
        loss=keras.losses.MeanSquaredError(),
        metrics=[keras.metrics.RootMeanSquaredError(name="rmse")],
        loss_metrics=[keras.metrics.Mean(name="loss_mean")],
    )
    again = tasks.Ranking.from_config(task.get_config())
    assert isinstance(again.loss_fn, keras.losses.MeanSquaredError)
    assert [m.name for m in again.ranking_metrics] == ["rmse"]
    assert [m.name for m in again.loss_metrics] == ["loss_mean"]
    labels, predictions = np.array([[4.0], [2.0]]), np.array([[3.0], [2.5]])
    assert float(again(labels, predictions)) == pytest.approx(float(task(labels, predictions)))


def test_retrieval_task_and_factorized_top_k_round_trip_through_their_configs():
    corpus = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    task = tasks.Retrieval(
        metrics=tasks.FactorizedTopK(corpus, ks=(1, 3)),
        temperature=0.5,
        remove_accidental_hits=True,
    )
    again = tasks.Retrieval.from_config(task.get_config())
    assert again.temperature == 0.5 and again.remove_accidental_hits
    (metric,) = again.factorized_metrics
    assert metric.ks == (1, 3) or list(metric.ks) == [1, 3]
    np.testing.assert_allclose(np.asarray(metric.candidates), corpus)
    queries, candidates = corpus[:3] + 0.1, corpus[:3]
    ids = np.arange(3)
    expected = float(task(queries, candidates, candidate_ids=ids))
    assert float(again(queries, candidates, candidate_ids=ids)) == pytest.approx(expected)
    for original, restored in ((task, again),):
        assert {k: float(v) for k, v in restored.factorized_metrics[0].result().items()} == {
            k: pytest.approx(float(v)) for k, v in original.factorized_metrics[0].result().items()
        }
