import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from keras_unimixer import callbacks, datasets
from keras_unimixer.experiments import artifacts, cli, training
from keras_unimixer.experiments.training import TrainConfig

SMALL = dict(
    dataset="synthetic",
    max_examples=4000,
    epochs=3,
    batch_size=128,
    learning_rate=1e-2,
    num_layers=1,
    num_tokens=4,
    token_dim=8,
    embedding_dim=4,
    hidden_units=(8,),
    patience=5,
    verbose=0,
)


class Interrupted(Exception):
    pass


def test_train_writes_every_artefact(tmp_path):
    metrics = training.train(TrainConfig(output=str(tmp_path), **SMALL))
    for name in ("config.json", "metrics.json", "model.keras", "preprocessing.json", "run.json"):
        assert (tmp_path / name).is_file(), name
    # Whole checkpoints only: the latest and the best one are kept.
    kept = artifacts.complete_checkpoints(tmp_path / "checkpoint")
    assert 1 <= len(kept) <= 2 and kept[-1].name == "epoch-0003"
    assert artifacts.verify_run(tmp_path) == metrics["run_id"]
    assert any((tmp_path / "logs").rglob("events.out.tfevents.*"))
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["test"] == metrics["test"]
    assert 0.5 < metrics["test"]["auc"] <= 1.0
    assert metrics["parameters"]["total"] > metrics["parameters"]["embedding"] > 0
    assert metrics["flops_per_example"] > 0 and metrics["train_examples_per_second"] > 0
    assert metrics["epochs_run"] == 3
    # The saved model is the best validation epoch's and evaluates to the reported numbers.
    # Test metrics are exact: scikit-learn's on the reloaded model's predictions.
    model = keras.saving.load_model(tmp_path / "model.keras")
    data = training.load_data(TrainConfig(**SMALL))
    features, labels = data.arrays("test", ["click"])
    logits = model.predict(features, verbose=0).reshape(-1)
    assert metrics["test"]["auc"] == pytest.approx(roc_auc_score(labels["click"], logits), abs=1e-6)
    assert metrics["test"]["logloss"] == pytest.approx(
        log_loss(labels["click"], 1 / (1 + np.exp(-logits.astype("float64")))), abs=1e-5
    )
    assert set(metrics["test"]) == {"auc", "logloss"}  # no user feature: no UAUC / GAUC
    assert metrics["validation"]["auc"] == pytest.approx(metrics["best_validation"])
    # Temperature annealing ran: the checkpointed model's temperature is the schedule's last value.
    history = metrics["history"]
    assert history["temperature"][0] > history["temperature"][-1] >= 0.05
    # What the mixing matrices became, per epoch: the logits' spread and the row entropies.
    for key in ("global_logit_std", "local_logit_std", "global_entropy", "local_entropy"):
        assert len(history[f"mixing_{key}"]) == 3, key
    assert all(0.0 <= value <= 1.0 for value in history["mixing_global_entropy"])
    assert history["mixing_global_logit_std"][-1] != history["mixing_global_logit_std"][0]


@pytest.mark.parametrize(
    "optimizer", [{}, {"embedding_optimizer": "adagrad", "embedding_learning_rate": 0.05}]
)
def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, monkeypatch, optimizer):
    settings = {**SMALL, **optimizer}
    reference = training.train(TrainConfig(output=str(tmp_path / "full"), **settings))

    original = training.RunCheckpoint.on_epoch_end

    def crash_after_first_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 0:
            raise Interrupted

    monkeypatch.setattr(training.RunCheckpoint, "on_epoch_end", crash_after_first_epoch)
    interrupted = TrainConfig(output=str(tmp_path / "resumed"), **settings)
    with pytest.raises(Interrupted):
        training.train(interrupted)
    monkeypatch.setattr(training.RunCheckpoint, "on_epoch_end", original)
    _, state = artifacts.latest_checkpoint(tmp_path / "resumed" / "checkpoint")
    assert state["completed_epochs"] == 1

    resumed = training.train(TrainConfig(output=str(tmp_path / "resumed"), resume=True, **settings))
    assert resumed["epochs_run"] == reference["epochs_run"] == 3
    np.testing.assert_allclose(
        resumed["history"]["val_auc"], reference["history"]["val_auc"], atol=1e-5
    )
    assert resumed["test"]["auc"] == pytest.approx(reference["test"]["auc"], abs=1e-5)
    assert resumed["test"]["logloss"] == pytest.approx(reference["test"]["logloss"], abs=1e-5)
    trained = keras.models.load_model(tmp_path / "resumed" / "model.keras")
    expected = "SplitOptimizer" if optimizer else "Adam"
    assert type(trained.optimizer).__name__ == expected


def test_resume_refuses_different_settings(tmp_path):
    training.train(TrainConfig(output=str(tmp_path), **{**SMALL, "epochs": 1}))
    with pytest.raises(ValueError, match="different settings"):
        training.train(
            TrainConfig(
                output=str(tmp_path), resume=True, **{**SMALL, "epochs": 1, "token_dim": 16}
            )
        )


def test_resume_refuses_data_whose_ids_mean_other_values(tmp_path):
    # E.g. a loader that sorts a vocabulary otherwise than when the run was checkpointed: the
    # same settings, but every id of that feature would name another value.
    training.train(TrainConfig(output=str(tmp_path), **{**SMALL, "epochs": 1}))
    path = tmp_path / "preprocessing.json"
    spec = json.loads(path.read_text())
    spec["preprocessing"]["cat_1"]["vocabulary"].sort(key=int)
    path.write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"encodes \['cat_1'\] otherwise than the checkpointed"):
        training.train(TrainConfig(output=str(tmp_path), resume=True, **{**SMALL, "epochs": 1}))


def test_unknown_task_is_named(tmp_path):
    with pytest.raises(ValueError, match="'rating'"):
        training.train(TrainConfig(output=str(tmp_path), tasks=("rating",), **SMALL))


def test_command_line_trains_a_baseline(tmp_path, capsys):
    code = cli.main(
        [
            "train",
            "--model",
            "logistic_regression",
            "--max-examples",
            "4000",
            "--epochs",
            "2",
            "--learning-rate",
            "0.05",
            "--verbose",
            "0",
            "--output",
            str(tmp_path),
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["test"]["auc"] > 0.5
    assert json.loads((tmp_path / "config.json").read_text())["model"] == "logistic_regression"


def test_command_line_rejects_bad_values(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--epochs", "0"])
    assert "--epochs: must be a positive integer" in capsys.readouterr().err


def test_command_line_arguments_map_onto_every_config_field():
    parser = argparse.ArgumentParser()
    cli.train.add_arguments(parser)
    args = parser.parse_args(
        [
            "--tasks",
            "click,rating",
            "--hidden-units",
            "32,16",
            "--no-anneal",
            "--token-dim",
            "64",
            "--sinkhorn-iterations",
            "3",
            "--eval-every-examples",
            "5000",
        ]
    )
    config = cli.train.config_from_args(args)
    assert config.sinkhorn_iterations == 3 and config.eval_every_examples == 5000
    assert config.tasks == ("click", "rating") and config.hidden_units == (32, 16)
    assert config.temperature_schedule == "constant" and config.token_dim == 64
    assert config.verbose == "auto"
    defaults = TrainConfig()
    for name in ("dataset", "model", "epochs", "batch_size", "learning_rate", "seed", "output"):
        assert getattr(config, name) == getattr(defaults, name), name


class ConstantValidationAUC(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        logs["val_auc"] = 0.5  # never improves: a plateau from the first epoch


def test_reduce_lr_on_plateau_waits_for_its_start_and_changes_the_steps_taken():
    # Loss = mean(prediction) has a constant gradient, so each SGD epoch moves the weight by
    # lr * steps: the moves show which learning rate the trainer (TF or JAX) really used.
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=lambda y, p: keras.ops.mean(p))
    weights = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: weights.append(float(model.get_weights()[0][0, 0]))
    )
    schedule = training.ResumableReduceLROnPlateau(
        start_from_epoch=1, monitor="val_auc", mode="max", factor=0.1, patience=1, min_lr=1e-6
    )
    x = np.ones((4, 1), "float32")
    start = float(model.get_weights()[0][0, 0])
    model.fit(
        x,
        x,
        batch_size=4,
        epochs=4,
        verbose=0,
        callbacks=[ConstantValidationAUC(), schedule, record],
    )
    moves = -np.diff([start] + weights)
    # Watching from epoch 1: its 0.5 is the first best, epoch 2 is the plateau, epoch 3 runs
    # at 0.01 (without the start, epoch 1 would be the plateau and epoch 2 at 0.01).
    np.testing.assert_allclose(moves, [0.1, 0.1, 0.1, 0.01], rtol=1e-3)
    assert schedule.state()["best"] == 0.5


def test_warm_up_trains_at_the_start_temperature_then_at_the_end_one(tmp_path):
    config = TrainConfig(
        output=str(tmp_path),
        temperature_schedule="warmup",
        temperature_end=0.1,
        model="unimixer",
        **{**SMALL, "epochs": 2},
    )
    metrics = training.train(config)
    assert metrics["history"]["stage"] == [0, 0, 1, 1]
    assert metrics["epochs_run"] == 4
    model = keras.saving.load_model(tmp_path / "model.keras")
    temperatures = [
        float(keras.ops.convert_to_numpy(v)) for v in callbacks.temperature_variables(model)
    ]
    assert temperatures and temperatures == pytest.approx([0.1] * len(temperatures))


@pytest.mark.end_to_end
def test_warm_up_resumes_inside_its_second_stage(tmp_path, monkeypatch):
    settings = dict(temperature_schedule="warmup", model="unimixer", **{**SMALL, "epochs": 2})
    reference = training.train(TrainConfig(output=str(tmp_path / "full"), **settings))
    original = training.RunCheckpoint.on_epoch_end

    def crash_in_second_stage(self, epoch, logs=None):
        original(self, epoch, logs)
        if self.stage == 1 and epoch == 0:
            raise Interrupted

    monkeypatch.setattr(training.RunCheckpoint, "on_epoch_end", crash_in_second_stage)
    with pytest.raises(Interrupted):
        training.train(TrainConfig(output=str(tmp_path / "resumed"), **settings))
    monkeypatch.setattr(training.RunCheckpoint, "on_epoch_end", original)
    resumed = training.train(TrainConfig(output=str(tmp_path / "resumed"), resume=True, **settings))
    assert resumed["history"]["stage"] == reference["history"]["stage"]
    np.testing.assert_allclose(
        resumed["history"]["val_auc"], reference["history"]["val_auc"], atol=1e-5
    )
    assert resumed["test"]["auc"] == pytest.approx(reference["test"]["auc"], abs=1e-5)


def test_annealing_horizon_is_set_in_epochs_and_early_stopping_waits_for_it(tmp_path):
    config = TrainConfig(
        output=str(tmp_path),
        anneal_epochs=2,
        model="unimixer_lite",
        **{**SMALL, "epochs": 4, "patience": 0},
    )
    metrics = training.train(config)
    temperatures = metrics["history"]["temperature"]
    # The last step of epoch 2 runs at the end value; patience 0 could stop after any epoch,
    # but not before the one where annealing ends.
    assert temperatures[1] == pytest.approx(0.05)
    assert metrics["epochs_run"] >= 2
    # The default horizon (2 epochs) is capped at a shorter budget; None means the whole budget.
    assert training._anneal_epochs(TrainConfig(epochs=1)) == 1.0
    assert training._anneal_epochs(TrainConfig(epochs=10)) == 2.0
    assert training._anneal_epochs(TrainConfig(epochs=10, anneal_epochs=None)) == 10.0


@pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="runs its own JAX process: once, in the JAX pass"
)
def test_importing_training_and_tuning_under_jax_loads_no_tensorflow():
    code = (
        "import sys, keras_unimixer.experiments.training, keras_unimixer.experiments.tuning; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="runs its own JAX process: once, in the JAX pass"
)
def test_train_under_jax_needs_no_tensorflow(tmp_path):
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, str(root / "tests" / "no_tensorflow_check.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": "jax"},
        cwd=root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["tensorflow_modules"] == []
    assert 0.0 <= report["test"]["auc"] <= 1.0
    assert report["spec_features"] > 0
    assert "pip install 'keras-unimixer[tensorflow]'" in report["export_error"]
    for name in ("model.keras", "metrics.json", "preprocessing.json", "run.json"):
        assert (tmp_path / name).is_file(), name


def test_labels_are_checked_for_their_task_kind(tmp_path):
    data = training.load_data(TrainConfig(**SMALL))
    data.splits["train"][1]["click"][3] = 2.0
    with pytest.raises(ValueError, match="'click' must be 0 or 1.*train row 3 is 2.0"):
        training.train(TrainConfig(output=str(tmp_path), **SMALL), data=data)
    data.splits["train"][1]["click"][3] = np.nan
    with pytest.raises(ValueError, match="'click' must be 0 or 1"):
        training.train(TrainConfig(output=str(tmp_path), **SMALL), data=data)
    assert not (tmp_path / "config.json").exists()  # refused before anything was written


def test_a_rating_task_is_fitted_as_a_rating(tmp_path):
    data = training.load_data(TrainConfig(**SMALL))
    for _, labels in data.splits.values():
        labels["stars"] = 1.0 + 4.0 * labels["click"]
    data.label_names.append("stars")
    data.label_kinds["stars"] = "rating"
    data.label_ranges["stars"] = (1.0, 5.0)
    metrics = training.train(
        TrainConfig(output=str(tmp_path), tasks=("stars", "click"), **SMALL), data=data
    )
    assert metrics["monitor"] == "val_stars_rmse"
    # Predicting 0 would give an RMSE of about 3.3 on these labels: the rating was fitted.
    assert 0 < metrics["test"]["stars_rmse"] < 2.5 and metrics["test"]["stars_mae"] > 0
    assert 0.0 <= metrics["test"]["click_auc"] <= 1.0 and metrics["test"]["click_logloss"] > 0
    for _, labels in data.splits.values():
        labels["stars"][:2] = [0.0, 7.0]
    with pytest.raises(ValueError, match=r"'stars' must be finite within \[1, 5\]"):
        training.train(
            TrainConfig(output=str(tmp_path / "bad"), tasks=("stars",), **SMALL), data=data
        )


@pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="runs its own processes: once, in the JAX pass"
)
def test_command_line_errors_are_one_line_and_debug_shows_the_traceback(tmp_path):
    command = [
        sys.executable,
        "-m",
        "keras_unimixer",
        "train",
        "--dataset",
        "movielens",
        "--data-dir",
        str(tmp_path / "missing"),
        "--output",
        str(tmp_path / "run"),
    ]
    environment = {**os.environ, "KERAS_BACKEND": "jax"}
    failed = subprocess.run(command, capture_output=True, text=True, env=environment)
    assert failed.returncode == 1
    lines = [line for line in failed.stderr.splitlines() if "keras_unimixer" in line]
    assert len(lines) == 1 and "error: ml-100k files not found" in lines[0]
    assert "Traceback" not in failed.stderr
    debug = subprocess.run(command + ["--debug"], capture_output=True, text=True, env=environment)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    usage = subprocess.run(
        command[:4] + ["--epochs", "0"], capture_output=True, text=True, env=environment
    )
    assert usage.returncode == 2 and "--epochs: must be a positive integer" in usage.stderr


def test_options_that_do_not_apply_to_the_model_are_refused():
    with pytest.raises(ValueError, match="`num_heads` does not apply to model 'rankmixer'"):
        cli.main(["train", "--model", "rankmixer", "--num-heads", "4"])
    with pytest.raises(ValueError, match="`num_cross_layers` does not apply to model 'dnn'"):
        cli.main(["train", "--model", "dnn", "--num-cross-layers", "2"])


def test_a_model_too_big_for_the_machine_is_refused_before_it_is_built(tmp_path):
    config = TrainConfig(output=str(tmp_path), **{**SMALL, "token_dim": 100_000})
    with pytest.raises(ValueError, match=r"needs about [\d.]+ GiB to train"):
        training.train(config)
    assert not (tmp_path / "config.json").exists()
    data = training.load_data(TrainConfig(**SMALL))
    small = training.estimated_training_bytes(TrainConfig(**SMALL), data.features)
    assert 0 < small < 2**30


def test_train_streams_synthetic_data_generated_on_the_fly(tmp_path):
    config = TrainConfig(
        output=str(tmp_path),
        dataset="synthetic_stream",
        max_examples=6000,
        epochs=2,
        batch_size=500,
        num_layers=1,
        num_tokens=4,
        token_dim=8,
        embedding_dim=4,
        hidden_units=(8,),
        model="rankmixer",
        verbose=0,
    )
    data = datasets.make_synthetic_stream(
        train_rows=6000, eval_rows=2000, num_fields=6, vocabulary_size=500, seed=42
    )
    metrics = training.train(config, data=data)
    assert 0.5 < metrics["test"]["auc"] < data.report["oracle_test_auc"]
    assert metrics["data_report"]["oracle_test_auc"] == data.report["oracle_test_auc"]


def test_learning_curve_inside_the_epoch_does_not_change_training(tmp_path):
    """`eval_every_examples`: exact validation AUC every 2000 examples of a 6000-row stream. The
    point at each epoch's end equals that epoch's validation AUC (so under JAX the callback reads
    the current weights, not the epoch start's), and the run ends where a run without the curve
    ends (evaluating does not disturb training or the temperature schedule)."""
    values = dict(
        dataset="synthetic_stream",
        max_examples=6000,
        epochs=2,
        batch_size=500,
        num_layers=1,
        num_tokens=4,
        token_dim=8,
        embedding_dim=4,
        hidden_units=(8,),
        model="unimixer_lite",
        patience=5,
        verbose=0,
    )

    def stream():
        return datasets.make_synthetic_stream(
            train_rows=6000, eval_rows=2000, num_fields=6, vocabulary_size=500, seed=42
        )

    plain = training.train(TrainConfig(output=str(tmp_path / "plain"), **values), data=stream())
    config = TrainConfig(output=str(tmp_path / "curve"), eval_every_examples=2000, **values)
    metrics = training.train(config, data=stream())
    history = metrics["history"]
    assert history["curve_examples"] == [2000, 4000, 6000, 8000, 10000, 12000]
    curve = history["curve_val_auc"]
    assert len(set(curve)) == 6 and all(0 < auc < 1 for auc in curve) and curve[-1] > curve[0]
    np.testing.assert_allclose([curve[2], curve[5]], history["val_auc"], atol=1e-9)
    assert metrics["test"]["auc"] == pytest.approx(plain["test"]["auc"], abs=1e-6)
    assert json.loads((tmp_path / "curve" / "metrics.json").read_text())["history"] == history
    with pytest.raises(ValueError, match="`eval_every_examples` must be at least `batch_size`"):
        training.train(
            TrainConfig(output=str(tmp_path / "bad"), eval_every_examples=100, **values),
            data=stream(),
        )


def test_mixed_precision_training(tmp_path):
    config = TrainConfig(output=str(tmp_path), mixed_precision=True, model="unimixer_lite", **SMALL)
    metrics = training.train(config)
    data = training.load_data(config)
    encoder = training.build(config, data.features).get_layer("encoder")
    assert encoder.blocks[0].ffn.compute_dtype == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    weights = keras.ops.convert_to_numpy(encoder.blocks[0].mixing.global_weights())
    assert weights.dtype == np.float32 and np.isfinite(weights).all()
    assert np.isfinite(metrics["test"]["logloss"])


@pytest.mark.parametrize("heads", ["mmoe", "ple"])
def test_multi_task_heads_train_and_reload(tmp_path, heads):
    data = training.load_data(TrainConfig(**SMALL))
    for _, labels in data.splits.values():
        labels["other"] = 1.0 - labels["click"]
    data.label_names.append("other")
    config = TrainConfig(
        output=str(tmp_path),
        tasks=("click", "other"),
        heads=heads,
        num_experts=2,
        expert_units=(8,),
        **SMALL,
    )
    metrics = training.train(config, data=data)
    assert {"click_auc", "other_auc"} <= set(metrics["test"])
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert model.get_layer(heads).kind == heads
    features, _ = data.arrays("test")
    outputs = model.predict(features, verbose=0)
    assert set(outputs) == {"click", "other"}
    with pytest.raises(ValueError, match="`heads` does not apply to model 'dnn'"):
        cli.main(["train", "--model", "dnn", "--heads", "mmoe"])


MOVIELENS = Path(__file__).resolve().parents[3] / "shared" / "data" / "ml-100k"


@pytest.mark.end_to_end
@pytest.mark.skipif(not (MOVIELENS / "ml-100k.inter").is_file(), reason="no MovieLens files")
def test_train_with_sampled_negatives_for_implicit_feedback(tmp_path):
    config = TrainConfig(
        output=str(tmp_path),
        dataset="movielens",
        data_dir=str(MOVIELENS),
        negatives=2,
        negative_sampling="popularity",
        epochs=1,
        batch_size=1024,
        num_layers=1,
        num_tokens=4,
        token_dim=8,
        embedding_dim=4,
        hidden_units=(8,),
        verbose=0,
    )
    metrics = training.train(config)
    report = metrics["data_report"]
    assert report["negatives.test.sampled"] == 2 * report["negatives.test.positives"]
    assert 0.5 < metrics["test"]["auc"] <= 1.0 and "uauc" in metrics["test"]


def test_distributed_embedding_trains_like_dense_tables_with_its_own_table_optimizer(tmp_path):
    """--embedding distributed (keras-rs; the default-device fallback here) with Adagrad tables:
    the same run as dense tables (same initial weights, same updates), every table routed to
    Adagrad, and a model that reloads."""
    settings = {
        **SMALL,
        "model": "rankmixer",
        "epochs": 2,
        "embedding_optimizer": "adagrad",
        "embedding_learning_rate": 0.05,
    }
    dense = training.train(TrainConfig(output=str(tmp_path / "dense"), **settings))
    config = TrainConfig(output=str(tmp_path / "distributed"), embedding="distributed", **settings)
    metrics = training.train(config)
    assert metrics["parameters"] == dense["parameters"]
    np.testing.assert_allclose(metrics["history"]["loss"], dense["history"]["loss"], rtol=1e-5)
    assert metrics["test"]["auc"] == pytest.approx(dense["test"]["auc"], abs=1e-5)
    model = keras.models.load_model(tmp_path / "distributed" / "model.keras")
    data = training.load_data(config)
    tables = [w for w in model.trainable_variables if w.path.endswith("_table/embeddings")]
    assert len(tables) == len([f for f in data.features if f.kind != "numeric"]) > 0
    accumulators = [v for v in model.optimizer.table_optimizer.variables if "accumulator" in v.path]
    assert len(accumulators) == len(tables)
    reloaded = training.exact_metrics(model, data, "test", ["click"])
    assert reloaded["auc"] == pytest.approx(metrics["test"]["auc"], abs=1e-6)


def test_embedding_l2_acts_on_the_looked_up_rows_with_a_row_sparse_table_optimizer():
    """With a row-sparse table optimizer the run's `embedding_l2` is the optimizer's `row_l2`
    (the looked-up rows), not a loss over whole tables; with dense tables it stays the loss."""
    data = training.load_data(TrainConfig(**SMALL))
    sparse = training.build(
        TrainConfig(**SMALL, embedding_optimizer="rowwise_adagrad", embedding_l2=0.05),
        data.features,
    )
    assert sparse.optimizer.table_optimizer.row_l2 == 0.05
    sparse_tables = [w for w in sparse.weights if w.path.endswith("_embedding")]
    assert sparse_tables and all(w.regularizer is None for w in sparse_tables)
    dense = training.build(TrainConfig(**SMALL, embedding_l2=0.05), data.features)
    dense_tables = [w for w in dense.weights if w.path.endswith("_embedding")]
    assert dense_tables and all(w.regularizer is not None for w in dense_tables)
