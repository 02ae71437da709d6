import json

import keras
import numpy as np
import pytest

from keras_unimixer import cli, training
from keras_unimixer.training import TrainConfig

SMALL = dict(
    dataset="synthetic", max_examples=4000, epochs=3, batch_size=128, learning_rate=1e-2,
    num_layers=1, num_tokens=4, token_dim=8, embedding_dim=4, hidden_units=(8,), patience=5,
    verbose=0,
)  # fmt: skip


class Interrupted(Exception):
    pass


def test_train_writes_every_artefact(tmp_path):
    metrics = training.train(TrainConfig(output=str(tmp_path), **SMALL))
    for name in ("config.json", "metrics.json", "model.keras", "checkpoint/state.json"):
        assert (tmp_path / name).is_file(), name
    assert any((tmp_path / "logs").rglob("events.out.tfevents.*"))
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["test"] == metrics["test"]
    assert 0.5 < metrics["test"]["auc"] <= 1.0
    assert metrics["parameters"]["total"] > metrics["parameters"]["embedding"] > 0
    assert metrics["flops_per_example"] > 0 and metrics["train_examples_per_second"] > 0
    assert metrics["epochs_run"] == 3
    # The saved model is the best validation epoch's and evaluates to the reported numbers.
    model = keras.saving.load_model(tmp_path / "model.keras")
    data = training.load_data(TrainConfig(**SMALL))
    again = model.evaluate(
        data.tf_dataset("test", 4096, labels=["click"]), return_dict=True, verbose=0
    )
    assert again["auc"] == pytest.approx(metrics["test"]["auc"], abs=1e-6)
    # Temperature annealing ran: the checkpointed model's temperature is the schedule's last value.
    history = metrics["history"]
    assert history["temperature"][0] > history["temperature"][-1] >= 0.05


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    reference = training.train(TrainConfig(output=str(tmp_path / "full"), **SMALL))

    original = training.RunCheckpoint.on_epoch_end

    def crash_after_first_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 0:
            raise Interrupted

    monkeypatch.setattr(training.RunCheckpoint, "on_epoch_end", crash_after_first_epoch)
    interrupted = TrainConfig(output=str(tmp_path / "resumed"), **SMALL)
    with pytest.raises(Interrupted):
        training.train(interrupted)
    monkeypatch.setattr(training.RunCheckpoint, "on_epoch_end", original)
    state = json.loads((tmp_path / "resumed" / "checkpoint" / "state.json").read_text())
    assert state["completed_epochs"] == 1

    resumed = training.train(TrainConfig(output=str(tmp_path / "resumed"), resume=True, **SMALL))
    assert resumed["epochs_run"] == reference["epochs_run"] == 3
    np.testing.assert_allclose(
        resumed["history"]["val_auc"], reference["history"]["val_auc"], atol=1e-5
    )
    assert resumed["test"]["auc"] == pytest.approx(reference["test"]["auc"], abs=1e-5)
    assert resumed["test"]["logloss"] == pytest.approx(reference["test"]["logloss"], abs=1e-5)


def test_resume_refuses_different_settings(tmp_path):
    training.train(TrainConfig(output=str(tmp_path), **{**SMALL, "epochs": 1}))
    with pytest.raises(ValueError, match="different settings"):
        training.train(
            TrainConfig(
                output=str(tmp_path), resume=True, **{**SMALL, "epochs": 1, "token_dim": 16}
            )
        )


def test_unknown_task_is_named(tmp_path):
    with pytest.raises(ValueError, match="'rating'"):
        training.train(TrainConfig(output=str(tmp_path), tasks=("rating",), **SMALL))


def test_command_line_trains_a_baseline(tmp_path, capsys):
    code = cli.main(
        ["train", "--model", "logistic_regression", "--max-examples", "4000", "--epochs", "2",
         "--learning-rate", "0.05", "--verbose", "0", "--output", str(tmp_path)]
    )  # fmt: skip
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["test"]["auc"] > 0.5
    assert json.loads((tmp_path / "config.json").read_text())["model"] == "logistic_regression"


def test_command_line_rejects_bad_values(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--epochs", "0"])
    assert "--epochs: must be a positive integer" in capsys.readouterr().err


def test_command_line_arguments_map_onto_every_config_field():
    parser = cli.argparse.ArgumentParser()
    cli.add_train_arguments(parser)
    args = parser.parse_args(
        ["--tasks", "click,rating", "--hidden-units", "32,16", "--no-anneal", "--token-dim", "64"]
    )
    config = cli.config_from_args(args)
    assert config.tasks == ("click", "rating") and config.hidden_units == (32, 16)
    assert config.anneal_temperature is False and config.token_dim == 64
    assert config.verbose == "auto"
    defaults = TrainConfig()
    for name in ("dataset", "model", "epochs", "batch_size", "learning_rate", "seed", "output"):
        assert getattr(config, name) == getattr(defaults, name), name
