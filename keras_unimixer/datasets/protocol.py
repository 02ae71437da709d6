"""What a dataset is: the members that training, evaluation and export read.

`RecDataset` (in memory), `StreamingDataset` (streamed from files) and `SyntheticStream`
(generated on the fly) all implement `Dataset`; so can a dataset of your own, without inheriting
from anything (a structural `typing.Protocol`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import keras

from keras_unimixer.features import FeatureSpec


@runtime_checkable
class Dataset(Protocol):
    """A dataset with `train`, `validation` and `test` splits of encoded features and labels.

    Attributes:
        name: str. The dataset's name (written to a run's `config.json`).
        features: list of `FeatureSpec`. The encoded features, in model input order.
        label_names: list of str. The labels, the first one the default task.
        user_feature: str or `None`. The feature that identifies a user (for UAUC / GAUC).
        report: dict. Counts of repaired, imputed and out-of-vocabulary values.
        preprocessing: dict. What encoding needs at serving time, per feature.
    """

    name: str
    features: list[FeatureSpec]
    label_names: list[str]
    user_feature: str | None
    report: dict
    preprocessing: dict

    def feature(self, name: str) -> FeatureSpec:
        """The spec of feature `name` (`KeyError` naming the features if there is none)."""

    def label_kind(self, name: str) -> str:
        """`"binary"` or `"rating"`."""

    def check_labels(self, names: Sequence[str]) -> None:
        """Raise `ValueError` naming the label, split, row and value of the first bad label."""

    def num_examples(self, split: str) -> int:
        """Rows of `split`."""

    def steps_per_epoch(self, split: str, batch_size: int) -> int:
        """Batches of `batch_size` in one pass over `split`."""

    def arrays(self, split: str, labels: Sequence[str] | None = None) -> tuple[dict, dict]:
        """`(features, labels)` numpy arrays of all of `split` (exact evaluation)."""

    def batches(
        self,
        split: str,
        batch_size: int,
        labels: Sequence[str] | None = None,
        shuffle: bool = False,
        seed: int = 0,
        start_epoch: int = 0,
    ) -> keras.utils.PyDataset:
        """`(features, labels)` batches for `fit`; with `shuffle`, epoch `e`'s order depends on
        `(seed, e)` alone, so a run resumed at `start_epoch` sees the batches it would have."""


def check_dataset(data: object) -> Dataset:
    """`data` itself if it implements `Dataset`, else a `TypeError` naming what it lacks."""
    members = [name for name in (*Dataset.__annotations__, *_methods()) if not hasattr(data, name)]
    if members:
        raise TypeError(
            f"{type(data).__name__} is not a keras_unimixer Dataset: it has no {members} "
            "(see keras_unimixer.datasets.Dataset)."
        )
    return data


def _methods() -> list[str]:
    return [
        name
        for name, value in vars(Dataset).items()
        if callable(value) and not name.startswith("_")
    ]
