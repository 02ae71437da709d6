"""Feature schema and the encoded, split dataset that every loader returns."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import keras
import numpy as np

from keras_unimixer.features import (  # noqa: F401 (the dataset schema's vocabulary)
    BINARY,
    CATEGORICAL,
    FEATURE_KINDS,
    LABEL_KINDS,
    MISSING_ID,
    MULTI_CATEGORICAL,
    NUM_RESERVED_IDS,
    NUMERIC,
    OOV_ID,
    RATING,
    SPLITS,
    FeatureSpec,
    features_from_config,
)
from keras_unimixer.utils.types import ArrayLike

if TYPE_CHECKING:
    import tensorflow as tf

logger = logging.getLogger("keras_unimixer.datasets")


class Vocabulary:
    """Maps raw values to ids: 0 missing, 1 out of vocabulary, 2.. values seen often enough."""

    def __init__(self, values: ArrayLike, min_count: int = 1):
        counts: dict = {}
        for value in values:
            if value is not None and value != "":
                counts[value] = counts.get(value, 0) + 1
        kept = sorted((v for v, c in counts.items() if c >= min_count), key=str)
        self.index = {value: i + NUM_RESERVED_IDS for i, value in enumerate(kept)}
        self.num_below_threshold = len(counts) - len(kept)

    @property
    def size(self) -> int:
        return len(self.index) + NUM_RESERVED_IDS

    def lookup(self, values: ArrayLike) -> tuple[np.ndarray, int]:
        """Ids of `values`, and how many non-missing values went to the OOV bucket."""
        ids = np.empty(len(values), dtype="int32")
        num_oov = 0
        for position, value in enumerate(values):
            if value is None or value == "":
                ids[position] = MISSING_ID
            else:
                found = self.index.get(value, OOV_ID)
                num_oov += found == OOV_ID
                ids[position] = found
        return ids, num_oov


@dataclasses.dataclass
class RecDataset:
    """An encoded dataset: schema, label names and numpy arrays per split.

    `splits[name]` is `(features, labels)`: `features` maps feature names to arrays (`(N,)` int32
    for categorical, `(N,)` float32 for numeric, `(N, max_length)` int32 for multi-valued) and
    `labels` maps label names to `(N,)` float32 arrays. `report` holds the counts of repaired,
    imputed and out-of-vocabulary values, also logged when the dataset is built. `preprocessing`
    holds what encoding needs at serving time: each categorical feature's vocabulary (id = position
    + 2) and each numeric feature's training mean and standard deviation. `row_indices` maps each
    split to the rows of the source data it holds. `user_feature` names the feature that
    identifies a user (for UAUC / GAUC), where the data has one. `label_kinds` maps each label to
    `"binary"` (the default) or `"rating"`, with its `(low, high)` in `label_ranges`.
    """

    name: str
    features: list[FeatureSpec]
    label_names: list[str]
    splits: dict
    report: dict = dataclasses.field(default_factory=dict)
    preprocessing: dict = dataclasses.field(default_factory=dict)
    row_indices: dict = dataclasses.field(default_factory=dict)
    user_feature: str | None = None
    label_kinds: dict = dataclasses.field(default_factory=dict)
    label_ranges: dict = dataclasses.field(default_factory=dict)

    def label_kind(self, name: str) -> str:
        return self.label_kinds.get(name, BINARY)

    def check_labels(self, names: Sequence[str]) -> None:
        """Every value of each label in `names` is valid for its kind, in every split.

        Raises:
            ValueError: naming the label, the split, the row and the value.
        """
        for name in names:
            kind = self.label_kind(name)
            for split, (_, labels) in self.splits.items():
                values = np.asarray(labels[name], dtype="float64")
                if kind == BINARY:
                    bad = ~np.isin(values, (0.0, 1.0))
                    rule = "0 or 1 (a binary label)"
                else:
                    low, high = self.label_ranges.get(name, (-np.inf, np.inf))
                    bad = ~(np.isfinite(values) & (values >= low) & (values <= high))
                    rule = f"finite within [{low:g}, {high:g}] (a rating)"
                if bad.any():
                    row = int(np.flatnonzero(bad)[0])
                    raise ValueError(
                        f"Label {name!r} must be {rule}; {split} row {row} is "
                        f"{float(values[row])!r} ({int(bad.sum())} bad values in {split})."
                    )

    def num_examples(self, split: str) -> int:
        features, _ = self.splits[split]
        return len(next(iter(features.values())))

    def feature(self, name: str) -> FeatureSpec:
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(f"No feature {name!r}; features: {[f.name for f in self.features]}.")

    def arrays(self, split: str, labels: Sequence[str] | None = None) -> tuple[dict, dict]:
        """`(features, labels)` numpy arrays of a split; `labels` selects and orders label names."""
        if split not in self.splits:
            raise ValueError(f"`split` must be one of {list(self.splits)}, got {split!r}.")
        features, all_labels = self.splits[split]
        names = list(labels or self.label_names)
        return features, {name: all_labels[name] for name in names}

    def steps_per_epoch(self, split: str, batch_size: int) -> int:
        return math.ceil(self.num_examples(split) / batch_size)

    def batches(
        self,
        split: str,
        batch_size: int,
        labels: Sequence[str] | None = None,
        shuffle: bool = False,
        seed: int = 0,
        start_epoch: int = 0,
    ) -> keras.utils.PyDataset:
        """A `keras.utils.PyDataset` of `(features, labels)` batches, for `fit` under any backend
        without TensorFlow.

        With `shuffle`, epoch `e` is ordered by `numpy.random.default_rng([seed, e])`: the order
        depends only on `(seed, e)`, so a run resumed at epoch `start_epoch` sees exactly the
        batches of an uninterrupted run. Labels are `(batch, 1)`: a tensor for one label, a dict
        for several.
        """
        features, label_arrays = self.arrays(split, labels)
        return ArrayBatches(
            features, label_arrays, batch_size, shuffle=shuffle, seed=seed, epoch=start_epoch
        )

    def tf_dataset(
        self,
        split: str,
        batch_size: int,
        labels: Sequence[str] | None = None,
        shuffle: bool = False,
        seed: int = 0,
        epochs: int | None = None,
        start_epoch: int = 0,
    ) -> tf.data.Dataset:
        """A batched `tf.data.Dataset` of `(features, labels)` (usable by both Keras backends).

        With `shuffle`, epoch `e` is ordered by a permutation that depends only on `(seed, e)`, and
        the dataset covers epochs `start_epoch..epochs-1`: a run resumed at epoch `e` sees exactly
        the batches an uninterrupted run sees. Labels are `(batch, 1)`: a single label as a tensor,
        several as a dict. `labels=None` selects every label of the dataset.
        """
        import tensorflow as tf

        features, label_arrays = self.arrays(split, labels)
        # (N, 1) targets, matching the (batch, 1) logits of the models.
        label_arrays = {name: values[:, None] for name, values in label_arrays.items()}
        targets = next(iter(label_arrays.values())) if len(label_arrays) == 1 else label_arrays
        data = (features, targets)
        if not shuffle:
            return tf.data.Dataset.from_tensor_slices(data).batch(batch_size).prefetch(2)
        if epochs is None:
            raise ValueError("`epochs` is required with shuffle=True (each epoch has its order).")
        tensors = tf.nest.map_structure(tf.constant, data)
        num_examples = self.num_examples(split)

        def epoch_batches(epoch: int):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(num_examples), seed=tf.stack([tf.cast(seed, tf.int64), epoch])
            )
            return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

        batches = tf.data.Dataset.range(start_epoch, epochs).flat_map(epoch_batches)
        gather = lambda index: tf.nest.map_structure(  # noqa: E731
            lambda tensor: tf.gather(tensor, index), tensors
        )
        return batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


class ArrayBatches(keras.utils.PyDataset):
    """Batches of in-memory feature and label arrays, reshuffled every epoch by `(seed, epoch)`.

    Args:
        features: dict name -> array (first axis: examples).
        labels: dict name -> `(N,)` array; yielded as `(batch, 1)`, a tensor for one label.
        batch_size: examples per batch (the last one may be smaller).
        shuffle: order each epoch by `numpy.random.default_rng([seed, epoch])`.
        seed: shuffling seed.
        epoch: the epoch the first batches belong to (Keras calls `on_epoch_end` after each).
    """

    def __init__(
        self,
        features: dict[str, np.ndarray],
        labels: dict[str, np.ndarray],
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
    ):
        super().__init__()
        self.features = features
        self.targets = {name: values[:, None] for name, values in labels.items()}
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = epoch
        self.size = len(next(iter(features.values())))
        self._order = self._epoch_order()

    def _epoch_order(self):
        if not self.shuffle:
            return None
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.size)

    def __len__(self):
        return math.ceil(self.size / self.batch_size)

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        if self._order is not None:
            rows = self._order[rows]
        features = {name: values[rows] for name, values in self.features.items()}
        targets = {name: values[rows] for name, values in self.targets.items()}
        if len(targets) == 1:
            targets = next(iter(targets.values()))
        return features, targets

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order = self._epoch_order()

    def restart(self, epoch: int = 0) -> None:
        """Start over at `epoch` (a new `fit` on the same batches, e.g. a tuner trial)."""
        self.epoch = epoch
        self._order = self._epoch_order()


def log_report(name: str, report: dict) -> None:
    for key, value in report.items():
        if value:
            logger.info("%s: %s = %s", name, key, value)


def random_split(
    num_examples: int, seed: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> dict:
    """Row indices of a seeded random train/validation/test split."""
    order = np.random.default_rng(seed).permutation(num_examples)
    num_train = int(round(fractions[0] * num_examples))
    num_valid = int(round(fractions[1] * num_examples))
    return {
        "train": np.sort(order[:num_train]),
        "validation": np.sort(order[num_train : num_train + num_valid]),
        "test": np.sort(order[num_train + num_valid :]),
    }


def time_split(
    timestamps: np.ndarray, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> dict:
    """The earliest 80% for training, the next 10% for validation, the last 10% for test."""
    order = np.argsort(timestamps, kind="stable")
    num_train = int(round(fractions[0] * len(order)))
    num_valid = int(round(fractions[1] * len(order)))
    return {
        "train": order[:num_train],
        "validation": order[num_train : num_train + num_valid],
        "test": order[num_train + num_valid :],
    }
