"""The run artefact `preprocessing.json`: what serving needs to encode raw features like training.

Written by `train` beside `model.keras` and read by `keras_unimixer.export`; kept here, free of
TensorFlow, so that training under JAX does not import it.
"""

from __future__ import annotations

import json
from pathlib import Path

from keras_unimixer.datasets.protocol import Dataset

PREPROCESSING_FILE = "preprocessing.json"


def serving_spec(dataset: Dataset) -> dict:
    """What serving needs to know about a dataset's encoding, as a JSON-ready dict."""
    return {
        "dataset": dataset.name,
        "features": [spec.to_dict() for spec in dataset.features],
        "labels": list(dataset.label_names),
        "preprocessing": dataset.preprocessing,
    }


def write_serving_spec(dataset: Dataset, directory: str | Path) -> Path:
    path = Path(directory) / PREPROCESSING_FILE
    path.write_text(json.dumps(serving_spec(dataset)))
    return path


def encoding_differences(saved: dict, dataset: Dataset) -> list[str]:
    """Features (or labels) that `dataset` encodes otherwise than the `saved` spec did: ids that
    would mean other values, so a model trained on the one must not continue on the other."""
    current = json.loads(json.dumps(serving_spec(dataset)))
    differing = []
    if saved.get("labels") != current["labels"]:
        differing.append("labels")
    features = {spec["name"]: spec for spec in saved.get("features", [])}
    for spec in current["features"]:
        if features.get(spec["name"]) != spec:
            differing.append(spec["name"])
    differing += sorted(set(features) - {spec["name"] for spec in current["features"]})
    saved_steps = _without_derivations(saved.get("preprocessing", {}))
    current_steps = _without_derivations(current["preprocessing"])
    for name in sorted(set(saved_steps) | set(current_steps)):
        if saved_steps.get(name) != current_steps.get(name) and name not in differing:
            differing.append(name)
    return differing


def _without_derivations(preprocessing: dict) -> dict:
    """`preprocessing` less the `derived_from` records: they say how a client derives a feature,
    not how ids are assigned (runs written before they were recorded encode alike)."""
    return {
        name: {key: value for key, value in entry.items() if key != "derived_from"}
        for name, entry in preprocessing.items()
    }


def read_serving_spec(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / PREPROCESSING_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"No serving preprocessing spec at {path}: `train` writes {PREPROCESSING_FILE} next to "
            "model.keras; pass its path (or the run directory) as `preprocessing`."
        )
    return json.loads(path.read_text())
