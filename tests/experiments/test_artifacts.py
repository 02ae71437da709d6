import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_unimixer.experiments import artifacts, training
from keras_unimixer.experiments.training import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from fault_check import SETTINGS  # noqa: E402

JAX_PASS_ONLY = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="runs its own processes: once, in the JAX pass"
)


class Tiny:
    """A stand-in model: `save` writes its bytes, `save_weights` too."""

    def save(self, path):
        Path(path).write_text("model")

    def save_weights(self, path):
        Path(path).write_text("weights")


def test_atomic_writes_replace_whole_files_and_leave_no_temporaries(tmp_path):
    target = tmp_path / "metrics.json"
    artifacts.atomic_write_json(target, {"auc": 0.5})
    artifacts.atomic_write_json(target, {"auc": 0.75})
    assert json.loads(target.read_text()) == {"auc": 0.75}
    with pytest.raises(ValueError):  # NaN is not JSON: refused before anything is written
        artifacts.atomic_write_json(target, {"auc": float("nan")})
    assert json.loads(target.read_text()) == {"auc": 0.75}

    def failing_save(path):
        Path(path).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        artifacts.atomic_save(tmp_path / "model.keras", failing_save)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_only_whole_checkpoints_are_found(tmp_path):
    for sequence in (1, 2):
        artifacts.write_checkpoint(tmp_path, sequence, Tiny(), {"n": sequence}, best=sequence == 1)
    # A checkpoint being written when the process died: no marker, temporary name.
    (tmp_path / ".epoch-0003.abcd1234.tmp").mkdir()
    (tmp_path / "epoch-0004").mkdir()  # renamed by hand without its marker
    path, state = artifacts.latest_checkpoint(tmp_path)
    assert path.name == "epoch-0002" and state == {"n": 2}
    artifacts.prune_checkpoints(tmp_path, keep={"epoch-0002"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0002"]


def test_manifest_names_the_file_that_does_not_belong(tmp_path):
    for name in artifacts.BOUND_FILES:
        (tmp_path / name).write_text(name)
    artifacts.write_manifest(tmp_path, "run-1")
    assert artifacts.verify_run(tmp_path) == "run-1"
    (tmp_path / "preprocessing.json").write_text("another run's vocabularies")
    with pytest.raises(ValueError, match="preprocessing.json"):
        artifacts.verify_run(tmp_path)
    assert artifacts.verify_run(tmp_path / "nothing here") is None


def test_train_refuses_a_finished_run_unless_resume_or_overwrite(tmp_path):
    settings = {**SETTINGS, "epochs": 1}
    first = training.train(TrainConfig(output=str(tmp_path), **settings))
    with pytest.raises(training.RunExists, match="--overwrite"):
        training.train(TrainConfig(output=str(tmp_path), **settings))
    assert json.loads((tmp_path / "metrics.json").read_text())["run_id"] == first["run_id"]
    # The same folder spelled another way resumes (nothing left to do: same metrics).
    other_spelling = os.path.relpath(tmp_path) if tmp_path.is_absolute() else tmp_path.resolve()
    again = training.train(TrainConfig(output=str(other_spelling), resume=True, **settings))
    assert again["test"] == first["test"] and again["run_id"] == first["run_id"]
    replaced = training.train(TrainConfig(output=str(tmp_path), overwrite=True, **settings))
    assert replaced["run_id"] != first["run_id"]
    assert artifacts.verify_run(tmp_path) == replaced["run_id"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    output = tmp_path_factory.mktemp("uninterrupted")
    return training.train(TrainConfig(output=str(output), **SETTINGS))


@JAX_PASS_ONLY
@pytest.mark.parametrize(
    "point, count",
    [("checkpoint_model", 2), ("checkpoint_written", 2), ("final_model", 1), ("manifest", 1)],
)
def test_sigkill_at_each_save_point_then_resume_loses_nothing(
    tmp_path, uninterrupted, point, count
):
    killed = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "fault_check.py"), str(tmp_path), point, str(count)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (tmp_path / "run.json").exists()
    resumed = training.train(TrainConfig(output=str(tmp_path), resume=True, **SETTINGS))
    assert resumed["epochs_run"] == uninterrupted["epochs_run"] == 3
    np.testing.assert_allclose(
        resumed["history"]["val_auc"], uninterrupted["history"]["val_auc"], atol=1e-5
    )
    assert resumed["test"]["auc"] == pytest.approx(uninterrupted["test"]["auc"], abs=1e-5)
    assert artifacts.verify_run(tmp_path) == resumed["run_id"]
