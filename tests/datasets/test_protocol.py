"""The three dataset kinds implement one stated protocol; training takes any dataset that does."""

import inspect

import numpy as np
import pytest

from keras_unimixer import datasets
from keras_unimixer.datasets.protocol import Dataset
from tests.datasets.test_stream import ROWS, describe, write_csv

PROTOCOL_METHODS = [
    name for name, value in vars(Dataset).items() if callable(value) and not name.startswith("_")
]


def _three_kinds(tmp_path):
    header = ("label", "user", "item", "price", "tags")
    write_csv(tmp_path / "train.csv", [header] + ROWS)
    write_csv(tmp_path / "valid.csv", [header] + ROWS[:2])
    return {
        "RecDataset": datasets.make_synthetic(num_examples=300, seed=0),
        "StreamingDataset": datasets.read_streaming_dataset(describe(tmp_path)),
        "SyntheticStream": datasets.make_synthetic_stream(
            train_rows=500, eval_rows=200, num_fields=4, vocabulary_size=50
        ),
    }


def test_every_dataset_kind_is_a_dataset_with_the_protocols_signatures(tmp_path):
    assert set(PROTOCOL_METHODS) >= {"arrays", "batches", "check_labels", "label_kind"}
    for kind, data in _three_kinds(tmp_path).items():
        assert isinstance(data, Dataset), kind
        assert datasets.check_dataset(data) is data
        for name in PROTOCOL_METHODS:
            expected = list(inspect.signature(getattr(Dataset, name)).parameters)
            actual = list(inspect.signature(getattr(type(data), name)).parameters)
            assert actual[: len(expected)] == expected, (kind, name, actual)
        features, labels = data.arrays("train")
        assert {spec.name for spec in data.features} == set(features)
        assert set(labels) == set(data.label_names)
        rows = data.num_examples("train")
        batches = data.batches("train", 64, shuffle=True, seed=1)
        assert len(batches) == data.steps_per_epoch("train", 64) == -(-rows // 64)
        first, _ = batches[0]
        assert len(next(iter(first.values()))) == min(64, rows)
        assert data.label_kind(data.label_names[0]) == "binary"


def test_a_dataset_that_lacks_a_member_is_refused_naming_it():
    class NotQuite:
        name = "mine"
        features, label_names, user_feature, report, preprocessing = [], ["click"], None, {}, {}

        def arrays(self, split, labels=None):
            return {}, {}

    with pytest.raises(TypeError, match=r"NotQuite is not a keras_unimixer Dataset.*'batches'"):
        datasets.check_dataset(NotQuite())
    assert not isinstance(NotQuite(), Dataset)


def test_training_takes_a_dataset_of_your_own(tmp_path):
    """A dataset class that implements the protocol by delegation (no package base class)."""
    from keras_unimixer.experiments.training import TrainConfig, train

    inner = datasets.make_synthetic(num_examples=600, num_categorical=4, num_numeric=1, seed=0)

    class Mine:
        def __init__(self, data):
            self._data = data
            self.name, self.features, self.label_names = "mine", data.features, data.label_names
            self.user_feature, self.report, self.preprocessing = None, {}, data.preprocessing

        def __getattr__(self, name):  # the methods, from the wrapped dataset
            return getattr(self._data, name)

    config = TrainConfig(
        output=str(tmp_path / "run"),
        epochs=1,
        batch_size=128,
        num_layers=1,
        token_dim=8,
        num_tokens=4,
        embedding_dim=4,
        hidden_units=(8,),
        verbose=0,
    )
    with pytest.raises(TypeError, match="is not a keras_unimixer Dataset"):
        train(config, data=object())
    metrics = train(config, data=Mine(inner))
    assert 0.0 <= metrics["test"]["auc"] <= 1.0
    assert np.isfinite(metrics["test"]["logloss"])
