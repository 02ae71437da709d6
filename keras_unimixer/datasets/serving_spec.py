"""The run artefact `preprocessing.json`: what serving needs to encode raw features like training.

Written by `train` beside `model.keras` and read by `keras_unimixer.export`; kept here, free of
TensorFlow, so that training under JAX does not import it.
"""

from __future__ import annotations

import json
from pathlib import Path

PREPROCESSING_FILE = "preprocessing.json"


def serving_spec(dataset) -> dict:
    """What serving needs to know about a dataset's encoding, as a JSON-ready dict."""
    return {
        "dataset": dataset.name,
        "features": [spec.to_dict() for spec in dataset.features],
        "labels": list(dataset.label_names),
        "preprocessing": dataset.preprocessing,
    }


def write_serving_spec(dataset, directory) -> Path:
    path = Path(directory) / PREPROCESSING_FILE
    path.write_text(json.dumps(serving_spec(dataset)))
    return path


def read_serving_spec(path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / PREPROCESSING_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"No serving preprocessing spec at {path}: `train` writes {PREPROCESSING_FILE} next to "
            "model.keras; pass its path (or the run directory) as `preprocessing`."
        )
    return json.loads(path.read_text())
