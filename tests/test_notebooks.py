"""The notebooks run top to bottom, unattended, briefly (one epoch of 20 steps)."""

import json
from pathlib import Path

import keras
import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ZERO_PREDICTOR_RMSE = 3.705  # sqrt(mean(rating^2)) on MovieLens 100K: predicting 0

# Each notebook picks its own backend in its first cell, so one pytest pass runs them all.
pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="notebooks run once, in the TensorFlow pass"
)


def run_notebook(name, monkeypatch):
    monkeypatch.setenv("NOTEBOOK_EPOCHS", "1")
    monkeypatch.setenv("NOTEBOOK_STEPS", "20")
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    last = notebook.cells[-1]["outputs"][0]["text"]
    return json.loads(last.strip().splitlines()[-1])


def test_tfrs_ranking_notebook(monkeypatch):
    results = {
        row["model"]: row for row in run_notebook("tfrs_ranking_movielens", monkeypatch)["results"]
    }
    assert set(results) == {"tutorial embedding+MLP", "UniMixer-Lite tower"}
    for row in results.values():  # 20 steps: learning has started, nothing more
        assert 0.85 < row["test_rmse"] < ZERO_PREDICTOR_RMSE
        assert 0.0 < row["test_auc"] < 1.0


def test_tfrs_retrieval_notebook(monkeypatch):
    output = run_notebook("tfrs_retrieval_movielens", monkeypatch)
    metrics = output["metrics"]
    assert output["reloaded_same_ids"] is True
    top_100 = metrics["factorized_top_k/top_100_categorical_accuracy"]
    top_1 = metrics["factorized_top_k/top_1_categorical_accuracy"]
    assert 0 <= top_1 <= top_100 <= 1 and top_100 > 0


def test_jax_ranking_notebook(monkeypatch):
    result = run_notebook("jax_ranking_movielens", monkeypatch)
    assert result["backend"] == "jax"
    assert 0.85 < result["test_rmse"] < ZERO_PREDICTOR_RMSE
    assert 0.0 < result["test_auc"] < 1.0


def test_listwise_notebook(monkeypatch):
    result = run_notebook("listwise_movielens", monkeypatch)
    assert result["backend"] == "jax" and result["test_lists"] > 500
    for name in ("listmle_ndcg_at_10", "pointwise_ndcg_at_10"):
        # NDCG of any order of ratings 1-5 is well above 0; a perfect order is 1.
        assert 0.5 < result[name] <= 1.0, name


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name
    assert len(list(NOTEBOOKS.glob("*.ipynb"))) == 4
