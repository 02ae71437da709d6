"""Dataset loaders: schema + train/validation/test splits as numpy arrays and `tf.data`."""

from pathlib import Path
from typing import Any

from keras_unimixer.datasets.criteo import load_criteo
from keras_unimixer.datasets.derived import derive_features
from keras_unimixer.datasets.description import DatasetDescription, read_description
from keras_unimixer.datasets.files import DataFilesNotFound
from keras_unimixer.datasets.frappe import load_frappe
from keras_unimixer.datasets.lists import PAD_LABEL, make_lists
from keras_unimixer.datasets.movielens import load_movielens
from keras_unimixer.datasets.negatives import sample_negatives
from keras_unimixer.datasets.protocol import Dataset, check_dataset
from keras_unimixer.datasets.schema import (
    BINARY,
    CATEGORICAL,
    MISSING_ID,
    MULTI_CATEGORICAL,
    NUMERIC,
    OOV_ID,
    RATING,
    FeatureSpec,
    RecDataset,
)
from keras_unimixer.datasets.stream import StreamingDataset, read_streaming_dataset
from keras_unimixer.datasets.synthetic import make_synthetic
from keras_unimixer.datasets.synthetic_stream import (
    SyntheticStream,
    make_synthetic_stream,
    parse_stream_name,
)

DATASETS = ("synthetic", "movielens", "criteo", "frappe_x1", "synthetic_stream")


DESCRIPTIONS_DIR = Path(__file__).resolve().parent / "descriptions"


def is_description(name: str) -> bool:
    """True for a dataset description file path (`.yaml`, `.yml`, `.json`)."""
    return str(name).endswith((".yaml", ".yml", ".json"))


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    seed: int = 42,
    split: str = "random",
    **kwargs: Any,
) -> Dataset:
    """Load a dataset by name: `"synthetic"` (embedded), `"movielens"`, `"criteo"` or
    `"frappe_x1"` (fixed BARS split: `seed` and `split` do not apply), `"synthetic_stream"`
    (options in the name: `"synthetic_stream:vocabulary_size=2000,zipf=1.2"`), or stream one from a
    description file (`PATH.yaml`; files relative to `data_dir`; see `read_streaming_dataset`).
    Shipped descriptions: `DESCRIPTIONS_DIR / "frappe_x1.yaml"`, `"criteo.yaml"`."""
    if is_description(name):
        if kwargs or split != "random":
            raise ValueError(
                f"A description file ({name}) sets its own files and split: `split` and size "
                "options do not apply."
            )
        return read_streaming_dataset(name, data_dir=data_dir)
    if name == "synthetic":
        return make_synthetic(seed=seed, **kwargs)
    if name.partition(":")[0] == "synthetic_stream":
        return make_synthetic_stream(seed=seed, **{**parse_stream_name(name), **kwargs})
    if name == "movielens":
        return load_movielens(data_dir=data_dir, split=split, seed=seed, **kwargs)
    if name == "criteo":
        if split != "random":
            raise ValueError("The Criteo loader has only the random split (`split`='random').")
        return load_criteo(data_dir=data_dir, seed=seed, **kwargs)
    if name == "frappe_x1":
        if split != "random" or kwargs:
            raise ValueError(
                "Frappe_x1 has one fixed split (BARS): `split` and size options do not apply."
            )
        return load_frappe(data_dir=data_dir)
    raise ValueError(
        f"`dataset` must be one of {DATASETS} or a description file (.yaml/.json), got {name!r}."
    )


__all__ = [
    "derive_features",
    "BINARY",
    "CATEGORICAL",
    "DATASETS",
    "DESCRIPTIONS_DIR",
    "DatasetDescription",
    "DataFilesNotFound",
    "Dataset",
    "FeatureSpec",
    "MISSING_ID",
    "MULTI_CATEGORICAL",
    "NUMERIC",
    "OOV_ID",
    "PAD_LABEL",
    "RATING",
    "RecDataset",
    "StreamingDataset",
    "SyntheticStream",
    "read_streaming_dataset",
    "check_dataset",
    "is_description",
    "load_criteo",
    "load_dataset",
    "load_frappe",
    "load_movielens",
    "make_lists",
    "make_synthetic",
    "make_synthetic_stream",
    "parse_stream_name",
    "read_description",
    "sample_negatives",
]
