import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_unimixer
from keras_unimixer import datasets, export, models
from keras_unimixer.datasets.encoding import RawColumn, encode_dataset
from keras_unimixer.datasets.schema import features_from_config, random_split
from keras_unimixer.experiments.training import TrainConfig, train

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "ml-100k"
pytestmark = pytest.mark.skipif(
    not (SHARED / "ml-100k.inter").is_file(), reason="../shared/data/ml-100k is not present"
)
BACKEND = keras.backend.backend()


def run_python(*arguments, backend="tensorflow"):
    environment = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run(
        [sys.executable, *arguments], capture_output=True, text=True, env=environment, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small MovieLens model trained under this process's backend, exported two ways."""
    directory = tmp_path_factory.mktemp(f"export_{BACKEND}")
    config = TrainConfig(
        dataset="movielens",
        data_dir=str(SHARED),
        epochs=1,
        num_layers=1,
        num_tokens=4,
        token_dim=16,
        embedding_dim=8,
        hidden_units=(16,),
        batch_size=1024,
        output=str(directory / "run"),
        verbose=0,
    )
    train(config)
    data = datasets.load_movielens(SHARED)
    model = keras.saving.load_model(directory / "run" / "model.keras")
    spec = export.read_serving_spec(directory / "run")
    savedmodel = export.export_savedmodel(model, spec, directory / "saved" / "movielens")
    # ONNX through the command line, which runs under TensorFlow whatever trained the model.
    run_python(
        "-m",
        "keras_unimixer",
        "export",
        "--model",
        str(directory / "run" / "model.keras"),
        "--format",
        "onnx",
        "--output",
        str(directory / "onnx"),
    )
    return {
        "data": data,
        "model": model,
        "spec": spec,
        "savedmodel": savedmodel,
        "onnx": directory / "onnx" / "model.onnx",
        "directory": directory,
    }


def test_savedmodel_and_onnx_match_keras_predict_in_a_fresh_process(trained):
    features, _ = trained["data"].arrays("test")
    encoded = {name: values[:256] for name, values in features.items()}
    expected = trained["model"].predict(encoded, verbose=0)[:, 0]
    request = export.raw_from_encoded(trained["spec"], encoded)
    request_path = trained["directory"] / "request.npz"
    np.savez(request_path, **request)
    outputs_path = trained["directory"] / "outputs.npz"
    run_python(
        str(ROOT / "tests" / "export" / "serving_outputs.py"),
        str(request_path),
        str(trained["savedmodel"]),
        str(trained["onnx"]),
        str(outputs_path),
    )
    outputs = np.load(outputs_path)
    np.testing.assert_allclose(outputs["savedmodel/logit"], expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(
        outputs["savedmodel/probability"], 1 / (1 + np.exp(-expected)), atol=1e-5, rtol=0
    )
    np.testing.assert_allclose(outputs["onnx/logit"], expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(
        outputs["onnx/probability"], outputs["savedmodel/probability"], atol=1e-4
    )
    assert export.onnx_opset(trained["onnx"]) == export.DEFAULT_OPSET
    assert np.std(expected) > 1e-3  # the rows differ, so a constant output would fail


def test_saved_model_cli_runs_the_serving_signature(trained):
    features, _ = trained["data"].arrays("test")
    encoded = {name: values[:3] for name, values in features.items()}
    expected = trained["model"].predict(encoded, verbose=0)[:, 0]
    request = export.raw_from_encoded(trained["spec"], encoded)
    # saved_model_cli evaluates each expression as a Python literal.
    expressions = ";".join(f"{name}={values.tolist()!r}" for name, values in request.items())
    outdir = trained["directory"] / "cli_outputs"
    cli = Path(sys.executable).parent / "saved_model_cli"
    result = subprocess.run(
        [
            str(cli),
            "run",
            "--dir",
            str(trained["savedmodel"]),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--input_exprs",
            expressions,
            "--outdir",
            str(outdir),
            "--overwrite",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(outdir / "logit.npy"), expected, atol=1e-5, rtol=0)


def test_layout_warmup_requests_and_metadata(trained):
    version = trained["savedmodel"]
    assert version.name == "1" and (version / "saved_model.pb").is_file()
    metadata = json.loads((version / "assets.extra" / "keras_unimixer.json").read_text())
    assert metadata["tasks"] == ["click"] and metadata["trained_backend"] == BACKEND
    assert metadata["outputs"] == ["logit", "probability"]
    from tensorflow_serving.apis import prediction_log_pb2

    path = version / "assets.extra" / "tf_serving_warmup_requests"
    records = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
    assert len(records) == 10
    log = prediction_log_pb2.PredictionLog.FromString(records[0])
    inputs = {k: tf.make_ndarray(v) for k, v in log.predict_log.request.inputs.items()}
    assert sorted(inputs) == sorted(f.name for f in trained["data"].features)
    assert log.predict_log.request.model_spec.signature_name == "serving_default"
    served = export.ServingFunction(version)(
        {k: v.astype(str) if v.dtype == object else v for k, v in inputs.items()}
    )
    assert served["probability"].shape == (4,)
    assert np.all((served["probability"] > 0) & (served["probability"] < 1))
    # The next export of the same model becomes version 2 (TF Serving serves the highest).
    again = export.export_savedmodel(
        trained["model"], trained["spec"], version.parent, warmup_batch_size=0
    )
    assert again.name == "2"


def test_bad_requests_name_the_feature_and_unseen_ids_go_to_oov(trained):
    serving = export.ServingFunction(trained["savedmodel"])
    features, _ = trained["data"].arrays("test")
    encoded = {name: values[:2] for name, values in features.items()}
    request = export.raw_from_encoded(trained["spec"], encoded)
    missing = {k: v for k, v in request.items() if k != "user_id"}
    with pytest.raises(ValueError, match="missing feature.*user_id"):
        serving(missing)
    with pytest.raises(ValueError, match="'item_id' must be string.*as strings"):
        serving({**request, "item_id": np.array([1, 2])})
    with pytest.raises(ValueError, match="'genres' must have rank 2"):
        serving({**request, "genres": np.array(["Drama", "Comedy"], dtype=object)})
    with pytest.raises(ValueError, match="unknown feature.*colour"):
        serving({**request, "colour": np.array(["red", "blue"], dtype=object)})
    unseen = {**request, "user_id": np.array(["no-such-user", "another"], dtype=object)}
    expected = trained["model"].predict(
        {**encoded, "user_id": np.full(2, datasets.OOV_ID, "int32")}, verbose=0
    )[:, 0]
    np.testing.assert_allclose(serving(unseen)["logit"], expected, atol=1e-5, rtol=0)


def _raw_movielens_test_rows(rows: int) -> tuple[dict, np.ndarray]:
    """The values a client has for the first `rows` test ratings (age in years, the zip code,
    the Unix timestamp), read from the source files, and their positions in the test split."""
    from keras_unimixer.datasets import movielens

    interactions, users, items = movielens._read_atomic(SHARED)
    test = random_split(len(interactions), 42)["test"][:rows]
    raw = {
        name: []
        for name in (
            "user_id",
            "age_years",
            "gender",
            "occupation",
            "zip_code",
            "item_id",
            "release_year",
            "genres",
            "timestamp",
        )
    }
    for index in test:
        user_id, item_id, _, timestamp = interactions[index]
        age, gender, occupation, zip_code = users[user_id]
        year, genres = items[item_id]
        values = {
            "user_id": user_id,
            "age_years": float(age),
            "gender": gender,
            "occupation": occupation,
            "zip_code": zip_code,
            "item_id": item_id,
            "release_year": year or "",
            "genres": genres,
            "timestamp": int(timestamp),
        }
        for name, value in values.items():
            raw[name].append(value)
    width = max(len(genres) for genres in raw["genres"])
    raw["genres"] = [genres + [""] * (width - len(genres)) for genres in raw["genres"]]
    arrays = {name: np.asarray(values, dtype=object) for name, values in raw.items()}
    arrays["age_years"] = arrays["age_years"].astype("float64")
    arrays["timestamp"] = arrays["timestamp"].astype("int64")
    return arrays, np.arange(rows)


def test_raw_client_values_serve_like_in_process_predictions(trained):
    raw, positions = _raw_movielens_test_rows(300)
    assert raw["age_years"].max() > 6 and len(raw["zip_code"][0]) == 5  # years, whole codes
    request = export.derive_features(trained["spec"], raw)
    served = export.ServingFunction(trained["savedmodel"])(request)
    features, _ = trained["data"].arrays("test")
    expected = trained["model"].predict(
        {name: values[positions] for name, values in features.items()}, verbose=0
    )[:, 0]
    np.testing.assert_allclose(served["logit"], expected, atol=1e-5, rtol=0)
    derived = trained["spec"]["preprocessing"]["age"]["derived_from"]
    assert derived == {
        "column": "age_years",
        "transform": "bucketize",
        "edges": [18, 25, 35, 45, 50, 56],
    }
    metadata = json.loads(
        (trained["savedmodel"] / "assets.extra" / "keras_unimixer.json").read_text()
    )
    assert metadata["derived_from"]["hour"] == {"column": "timestamp", "transform": "utc_hour"}
    with pytest.raises(ValueError, match="'zip_prefix' is derived from raw column 'zip_code'"):
        export.derive_features(trained["spec"], {k: v for k, v in raw.items() if k != "zip_code"})


def _head_model(spec, activation):
    features = features_from_config(spec["features"])
    inputs = {
        f.name: keras.Input(
            (f.max_length,) if f.kind == "multi_categorical" else (),
            dtype="float32" if f.kind == "numeric" else "int32",
            name=f.name,
        )
        for f in features
    }
    tokens = keras_unimixer.layers.FeatureTokenizer(features, 4, token_dim=8, num_tokens=2)(inputs)
    head = keras.layers.Dense(1, activation=activation)(keras.layers.Flatten()(tokens))
    return keras.Model(inputs, head)


def test_a_sigmoid_head_is_served_as_a_probability_and_other_activations_refused(trained, tmp_path):
    model = _head_model(trained["spec"], "sigmoid")
    features, _ = trained["data"].arrays("test")
    encoded = {name: values[:64] for name, values in features.items()}
    probability = model.predict(encoded, verbose=0)[:, 0]
    version = export.export_savedmodel(model, trained["spec"], tmp_path / "sigmoid")
    served = export.ServingFunction(version)(export.raw_from_encoded(trained["spec"], encoded))
    np.testing.assert_allclose(served["probability"], probability, atol=1e-6, rtol=0)
    np.testing.assert_allclose(1 / (1 + np.exp(-served["logit"])), probability, atol=1e-5)
    relu = _head_model(trained["spec"], "relu")
    with pytest.raises(ValueError, match="end in an activation \\('click': relu\\).*logits"):
        export.export_savedmodel(relu, trained["spec"], tmp_path / "relu")
    assert not (tmp_path / "relu").exists()


def test_a_truncated_model_file_is_named_as_such(trained, tmp_path):
    whole = (trained["directory"] / "run" / "model.keras").read_bytes()
    cut = tmp_path / "model.keras"
    cut.write_bytes(whole[: len(whole) // 3])
    with pytest.raises(ValueError, match="is not a whole .keras file.*cut short"):
        export.export_savedmodel(cut, trained["spec"], tmp_path / "saved")


def test_retrieval_export_returns_the_index_top_k(trained, tmp_path):
    data, spec = trained["data"], trained["spec"]
    user = [f for f in data.features if f.group == "user"]
    item = [f for f in data.features if f.group == "item"]
    tower_options = dict(output_dim=8, num_layers=1, num_tokens=4, token_dim=8, embedding_dim=8)
    query_tower = models.Tower(user, **tower_options)
    candidate_tower = models.Tower(item, **tower_options)
    features, _ = data.arrays("train")
    _, first = np.unique(features["item_id"], return_index=True)
    candidates = {f.name: features[f.name][first] for f in item}
    path = export.export_retrieval(
        query_tower,
        candidate_tower,
        candidates,
        spec,
        tmp_path / "retrieval",
        "item_id",
        k=5,
        max_k=20,
    )
    queries = {f.name: features[f.name][:4] for f in user}
    scores = (
        query_tower.predict(queries, verbose=0) @ candidate_tower.predict(candidates, verbose=0).T
    )
    expected_ids = candidates["item_id"][np.argsort(-scores, axis=1)[:, :5]]
    user_spec = {**spec, "features": [f.to_dict() for f in user]}
    raw = export.raw_from_encoded(user_spec, queries)  # a request holds only the query features
    served = export.ServingFunction(path)(raw)
    np.testing.assert_array_equal(served["candidate_ids"], expected_ids)
    vocabulary = spec["preprocessing"]["item_id"]["vocabulary"]
    assert served["candidates"][0, 0].decode() == str(vocabulary[expected_ids[0, 0] - 2])
    np.testing.assert_allclose(served["scores"], -np.sort(-scores, axis=1)[:, :5], atol=1e-4)
    # `top_k`: k per request (clipped to max_k) and candidates excluded per query.
    top_k = export.ServingFunction(path, "top_k")
    raw_values = np.array(["", "[OOV]"] + [str(v) for v in vocabulary], dtype=object)
    exclude = raw_values[expected_ids[:, :2]].astype(bytes)  # each query's best two, by value
    exclude[1, 1] = b""  # padding
    served = top_k({**raw, "k": np.int32(3), "exclude": exclude})
    excluded_ids = [set(expected_ids[0, :2]), {expected_ids[1, 0]}, *map(set, expected_ids[2:, :2])]
    masked = np.where(
        [np.isin(candidates["item_id"], list(ids)) for ids in excluded_ids], -np.inf, scores
    )
    np.testing.assert_array_equal(
        served["candidate_ids"], candidates["item_id"][np.argsort(-masked, axis=1)[:, :3]]
    )
    assert expected_ids[0, 0] not in served["candidate_ids"][0]
    assert expected_ids[1, 1] in served["candidate_ids"][1]  # padding excludes nothing
    wide = top_k({**raw, "k": np.int32(50), "exclude": np.full((4, 1), b"")})
    assert wide["candidate_ids"].shape == (4, 20)


def test_in_graph_preprocessing_equals_the_dataset_encoding():
    values = np.array([1.0, np.nan, -3.0, 250.0, np.inf, 0.5, 7.0, 2.0, 1.0, 3.0])
    columns = [
        RawColumn("count", datasets.NUMERIC, values, transform="signed_log1p"),
        RawColumn("city", datasets.CATEGORICAL, list("aabbc") + ["", "a", "z", "b", "c"]),
    ]
    labels = {"click": np.zeros(10)}
    indices = random_split(10, seed=0)
    data = encode_dataset("toy", columns, labels, indices)
    preprocessor = export.ServingPreprocessor(data.features, data.preprocessing)
    row_values = {"count": values, "city": np.array(columns[1].values, dtype=object)}
    for split, rows in indices.items():
        encoded, _ = data.arrays(split)
        served = preprocessor(
            {
                "count": tf.constant(values[rows], tf.float32),
                "city": tf.constant(row_values["city"][rows].astype(str)),
            }
        )
        np.testing.assert_array_equal(served["city"].numpy(), encoded["city"])
        np.testing.assert_allclose(served["count"].numpy(), encoded["count"], atol=1e-6)


def test_bad_export_arguments_are_rejected(trained, tmp_path):
    with pytest.raises(ValueError, match="`version` must be a positive integer"):
        export.export_savedmodel(trained["model"], trained["spec"], tmp_path, version=0)
    other = models.build_model(
        "logistic_regression", datasets.make_synthetic(num_examples=500).features
    )
    with pytest.raises(ValueError, match="differ from the spec's features"):
        export.export_savedmodel(other, trained["spec"], tmp_path)
    if BACKEND == "jax":
        with pytest.raises(RuntimeError, match="KERAS_BACKEND=tensorflow"):
            export.export_onnx(trained["model"], trained["spec"], tmp_path / "m.onnx")
    else:
        with pytest.raises(ValueError, match="ending in .onnx"):
            export.export_onnx(trained["model"], trained["spec"], tmp_path / "m.pb")


def test_export_refuses_vocabularies_that_do_not_fit_the_tables(trained, tmp_path):
    spec = json.loads(json.dumps(trained["spec"]))
    spec["preprocessing"]["item_id"]["vocabulary"] = spec["preprocessing"]["item_id"]["vocabulary"][
        :-5
    ]
    with pytest.raises(ValueError, match="item_id: .* ids in preprocessing.json"):
        export.export_savedmodel(trained["model"], spec, tmp_path)


def test_export_command_refuses_files_of_different_runs(trained, tmp_path):
    from keras_unimixer.experiments import cli

    run = trained["directory"] / "run"
    foreign = json.loads((run / "preprocessing.json").read_text())
    foreign["preprocessing"]["user_id"]["vocabulary"].reverse()  # same sizes, other ids
    (tmp_path / "preprocessing.json").write_text(json.dumps(foreign))
    with pytest.raises(ValueError, match="preprocessing.json"):
        cli.main(
            [
                "export",
                "--model",
                str(run / "model.keras"),
                "--preprocessing",
                str(tmp_path / "preprocessing.json"),
                "--output",
                str(tmp_path / "saved"),
            ]
        )
    assert not (tmp_path / "saved").exists()
