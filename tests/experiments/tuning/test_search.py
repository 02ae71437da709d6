import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import pytest
import yaml

from keras_unimixer.experiments import cli
from keras_unimixer.experiments.tuning import TuneConfig, UniMixerHyperModel
from keras_unimixer.experiments.tuning.search import read_run_log

ROOT = Path(__file__).resolve().parents[3]
TF_ONLY = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="multi-process test; its subject (Keras Tuner's processes) is backend-independent",
)
TINY_SPACE = {
    "mixer": ["unimixer_lite", "rankmixer"],
    "num_layers": [1],
    "num_tokens": [4],
    "token_dim": [16],
    "ffn_multiplier": [1],
}


def write_config(directory, **overrides):
    config = {
        "name": "tiny",
        "dataset": "synthetic",
        "dataset_options": {"num_examples": 2000},
        "tuner": "random_search",
        "tuner_options": {"max_trials": 2},
        "epochs": 1,
        "space": TINY_SPACE,
        **overrides,
    }
    path = Path(directory) / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def read_results(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("path", sorted((ROOT / "tuning").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_parse_and_build_legal_models(path):
    config = TuneConfig.from_yaml(path)
    assert config.name == path.stem
    from keras_unimixer.datasets import FeatureSpec

    features = [FeatureSpec("a", "categorical", 10, "user"), FeatureSpec("b", "numeric")]
    hypermodel = UniMixerHyperModel(features, space=config.space)  # validates the space
    assert set(hypermodel.space["mixer"]) <= {
        "unimixer",
        "unimixer_lite",
        "rankmixer",
        "attention",
        "fm",
    }


@pytest.mark.end_to_end
def test_tune_command_writes_table_retrains_exports_and_resumes(tmp_path, capsys):
    config = write_config(tmp_path, tuner="bayesian")
    output, saved = tmp_path / "out", tmp_path / "saved" / "tiny"
    command = ["tune", "--config", str(config), "--output", str(output)]
    assert cli.main([*command, "--export", str(saved)]) == 0
    project = output / "tiny"
    summary = json.loads((project / "summary.json").read_text())
    assert "val_auc" in capsys.readouterr().out  # the table is printed
    rows = read_results(project / "results.csv")
    assert len(rows) == 2
    assert sorted(row["trial"] for row in rows) == sorted(
        r["trial_id"] for r in read_run_log(project)
    )
    for row in rows:
        assert 0.0 <= float(row["val_auc"]) <= 1.0
        assert int(row["dense_params"]) > 0 and int(row["flops_per_example"]) > 0
        assert float(row["seconds"]) > 0 and row["mixer"] in TINY_SPACE["mixer"]
    best = max(rows, key=lambda row: float(row["val_auc"]))
    assert summary["best_hyperparameters"]["mixer"] == best["mixer"]
    assert (project / "best" / "model.keras").is_file()
    assert (saved / "1" / "saved_model.pb").is_file()
    assert 0.0 <= summary["best_test"]["auc"] <= 1.0
    # The same command with a larger budget continues the search: old trials kept as they were.
    assert cli.main([*command, "--max-trials", "3", "--no-retrain"]) == 0
    resumed = read_results(project / "results.csv")
    assert len(resumed) == 3
    assert [r["val_auc"] for r in resumed[:2]] == [r["val_auc"] for r in rows]
    runs = [r["trial_id"] for r in read_run_log(project)]
    assert len(runs) == len(set(runs)) == 3
    assert sorted(runs) == sorted(row["trial"] for row in resumed)


@pytest.mark.end_to_end
@TF_ONLY
def test_hyperband_search_runs(tmp_path):
    from keras_unimixer.experiments.tuning import run_search

    config = TuneConfig(
        name="band",
        dataset_options={"num_examples": 1500},
        tuner="hyperband",
        tuner_options={"max_epochs": 2, "factor": 2},
        epochs=2,
        space=TINY_SPACE,
    )
    tuner = run_search(config, tmp_path)
    trials = list(tuner.oracle.trials.values())
    assert len(trials) >= 2
    assert {t.hyperparameters.values["tuner/epochs"] for t in trials} == {1, 2}
    assert all(t.status == "COMPLETED" and 0 <= t.score <= 1 for t in trials)


def run_tune(config, output, environment=None, **kwargs):
    command = [sys.executable, "-m", "keras_unimixer", "tune", "--config", str(config)]
    command += ["--output", str(output), "--no-retrain"]
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend(), **(environment or {})}
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs
    )


def wait_for(condition, timeout, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process is not None and process.poll() is not None:
            return condition()
        time.sleep(0.5)
    return False


@pytest.mark.end_to_end
@TF_ONLY
def test_killed_search_resumes_without_losing_or_repeating_trials(tmp_path):
    config = write_config(tmp_path, tuner_options={"max_trials": 3}, epochs=2)
    project = tmp_path / "out" / "tiny"
    process = run_tune(config, tmp_path / "out")
    try:
        assert wait_for(lambda: len(read_run_log(project)) >= 1, 240, process)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    before = {r["trial_id"] for r in read_run_log(project)}
    assert 1 <= len(before) < 3
    scores = {
        t: json.loads((project / f"trial_{t}" / "trial.json").read_text())["score"] for t in before
    }
    rerun = run_tune(config, tmp_path / "out")
    assert rerun.wait(300) == 0, rerun.stderr.read().decode()[-2000:]
    runs = [r["trial_id"] for r in read_run_log(project)]
    assert len(runs) == len(set(runs)) == 3  # each trial ran to completion exactly once
    rows = {row["trial"]: row for row in read_results(project / "results.csv")}
    assert all(row["status"] == "COMPLETED" for row in rows.values())
    for trial_id, score in scores.items():
        assert float(rows[trial_id]["val_auc"]) == pytest.approx(score, abs=1e-5)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.end_to_end
@TF_ONLY
def test_chief_and_two_workers_share_the_trials(tmp_path):
    config = write_config(tmp_path, tuner_options={"max_trials": 4}, epochs=2)
    shared = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(free_port())}
    output = tmp_path / "out"
    processes = [run_tune(config, output, {**shared, "KERASTUNER_TUNER_ID": "chief"})]
    try:
        time.sleep(2)
        for worker in ("tuner0", "tuner1"):
            processes.append(run_tune(config, output, {**shared, "KERASTUNER_TUNER_ID": worker}))
        for process in processes:
            assert process.wait(400) == 0, process.stderr.read().decode()[-2000:]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    runs = read_run_log(output / "tiny")
    trial_ids = [r["trial_id"] for r in runs]
    assert len(trial_ids) == len(set(trial_ids)) == 4  # no trial ran twice
    assert {r["tuner_id"] for r in runs} == {"tuner0", "tuner1"}  # both workers got trials
    rows = read_results(output / "tiny" / "results.csv")  # written by the chief
    assert sorted(row["trial"] for row in rows) == sorted(trial_ids)
    assert all(row["status"] == "COMPLETED" for row in rows)
