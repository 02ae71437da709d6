"""`synthetic_stream`: click data of any size from a fixed random teacher, generated on the fly.

Made for scaling experiments, where the data must keep rewarding capacity: many categorical
fields with Zipf-distributed ids over large vocabularies, and a teacher whose logit mixes
first-order effects, low-rank pairwise (FM) interactions between all fields, a third-order term,
and a small random tanh network over the field embeddings. Rows are generated from
`(seed, split, block)` alone: train, validation and test are disjoint streams, any number of
training rows costs no disk and no memory beyond a block, and an epoch's order depends only on
`(seed, epoch)`. `report["oracle_test_auc"]` is the AUC of the true click probability on the test
rows: the ceiling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_unimixer.datasets.schema import BINARY, CATEGORICAL, NUM_RESERVED_IDS, FeatureSpec
from keras_unimixer.evaluation import roc_auc

BLOCK_ROWS = 1 << 16
_SPLIT_IDS = {"train": 0, "validation": 1, "test": 2}


class Teacher:
    """The fixed random function behind the labels (drawn from `teacher_seed`)."""

    def __init__(
        self,
        num_fields: int,
        vocabulary_size: int,
        dim: int = 8,
        hidden: int = 64,
        seed: int = 0,
        zipf: float = 1.1,
    ):
        rng = np.random.default_rng([seed, 7])
        self.num_fields, self.vocabulary_size, self.zipf = num_fields, vocabulary_size, zipf
        self.first_order = rng.normal(0.0, 0.4, (num_fields, vocabulary_size)).astype("float32")
        self.embeddings = rng.normal(0.0, 1.0, (num_fields, vocabulary_size, dim)).astype(
            "float32"
        ) / math.sqrt(dim)
        self.pair_weights = np.triu(rng.normal(0.0, 1.0, (num_fields, num_fields)), 1)
        self.pair_weights = (self.pair_weights / math.sqrt(num_fields)).astype("float32")
        self.hidden_kernel = rng.normal(
            0.0, 1.0 / math.sqrt(num_fields * dim), (num_fields * dim, hidden)
        ).astype("float32")
        self.output_kernel = rng.normal(0.0, 1.5 / math.sqrt(hidden), hidden).astype("float32")
        self.triple = rng.choice(num_fields, 3, replace=False)
        # Popular ranks map to scattered ids, differently in every field.
        self.rank_to_id = np.stack([rng.permutation(vocabulary_size) for _ in range(num_fields)])
        self.bias = 0.0
        self.bias = -float(np.quantile(self.logits(self.sample_ids(rng, 20_000)), 0.75))

    def sample_ids(self, rng: np.random.Generator, rows: int) -> np.ndarray:
        """`(rows, fields)` raw ids: Zipf ranks (exponent `zipf`) capped at the vocabulary."""
        ranks = np.minimum(rng.zipf(self.zipf, (rows, self.num_fields)), self.vocabulary_size) - 1
        return self.rank_to_id[np.arange(self.num_fields), ranks]

    def logits(self, ids: np.ndarray) -> np.ndarray:
        fields = np.arange(self.num_fields)
        first = self.first_order[fields, ids].sum(axis=1)
        embedded = self.embeddings[fields, ids]  # (rows, fields, dim)
        gram = np.einsum("rfd,rgd->rfg", embedded, embedded)
        pairs = np.einsum("rfg,fg->r", gram, self.pair_weights)
        a, b, c = self.triple
        third = np.einsum("rd,rd,rd->r", embedded[:, a], embedded[:, b], embedded[:, c]) * 2.0
        hidden = np.tanh(embedded.reshape(len(ids), -1) @ self.hidden_kernel)
        return first + pairs + third + hidden @ self.output_kernel + self.bias


class SyntheticStream:
    """A `RecDataset`-like dataset generated on the fly (see the module docstring).

    Args:
        train_rows: training rows (any number; generated block by block).
        eval_rows: rows of validation and of test (held in memory for exact metrics).
        num_fields: categorical fields.
        vocabulary_size: ids per field.
        zipf: Zipf exponent of the ids (smaller: heavier tail, more ids matter).
        teacher_seed: draws the teacher (the task); `seed` draws the rows.
        seed: seed of the rows.
    """

    def __init__(
        self,
        train_rows: int = 1_000_000,
        eval_rows: int = 100_000,
        num_fields: int = 24,
        vocabulary_size: int = 100_000,
        zipf: float = 1.1,
        teacher_seed: int = 0,
        seed: int = 0,
    ):
        self.name = "synthetic_stream"
        self.teacher = Teacher(num_fields, vocabulary_size, seed=teacher_seed, zipf=zipf)
        self.rows = {"train": int(train_rows), "validation": int(eval_rows), "test": int(eval_rows)}
        self.seed = seed
        groups = ("user", "item", "context")
        self.features = [
            FeatureSpec(f"f{i}", CATEGORICAL, vocabulary_size + NUM_RESERVED_IDS, groups[i % 3])
            for i in range(num_fields)
        ]
        self.label_names = ["click"]
        self.label_kinds = {"click": BINARY}
        self.label_ranges = {}
        self.user_feature = None
        # Integer ids, not string vocabularies: export refuses these features (no lookup table).
        self.preprocessing = {f.name: {"integer_ids": vocabulary_size} for f in self.features}
        self._arrays: dict = {}
        self._oracle: dict = {}
        self.report = {"oracle_test_auc": self.oracle_auc("test")}

    def block(self, split: str, index: int) -> tuple[dict, dict, np.ndarray]:
        """`(features, labels, true logits)` of one block of a split, from (seed, split, block)."""
        start = index * BLOCK_ROWS
        rows = min(BLOCK_ROWS, self.rows[split] - start)
        rng = np.random.default_rng([self.seed, _SPLIT_IDS[split], index])
        ids = self.teacher.sample_ids(rng, rows)
        logits = self.teacher.logits(ids)
        labels = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logits))).astype("float32")
        features = {
            f.name: ids[:, i].astype("int32") + NUM_RESERVED_IDS
            for i, f in enumerate(self.features)
        }
        return features, {"click": labels}, logits

    def num_blocks(self, split: str) -> int:
        return math.ceil(self.rows[split] / BLOCK_ROWS)

    def oracle_auc(self, split: str) -> float:
        self.arrays(split)
        return self._oracle[split]

    # -- RecDataset's interface ----------------------------------------------------------------

    def feature(self, name: str) -> FeatureSpec:
        return next(f for f in self.features if f.name == name)

    def label_kind(self, name: str) -> str:
        return BINARY

    def check_labels(self, names: Sequence[str]) -> None:
        unknown = [name for name in names if name not in self.label_names]
        if unknown:
            raise ValueError(f"Unknown labels {unknown}; labels: {self.label_names}.")

    def num_examples(self, split: str) -> int:
        return self.rows[split]

    def steps_per_epoch(self, split: str, batch_size: int) -> int:
        return math.ceil(self.rows[split] / batch_size)

    def arrays(self, split: str, labels: Sequence[str] | None = None) -> tuple[dict, dict]:
        if split not in self._arrays:
            blocks = [self.block(split, i) for i in range(self.num_blocks(split))]
            features = {
                f.name: np.concatenate([b[0][f.name] for b in blocks]) for f in self.features
            }
            clicks = np.concatenate([b[1]["click"] for b in blocks])
            self._oracle[split] = roc_auc(clicks, np.concatenate([b[2] for b in blocks]))
            self._arrays[split] = (features, {"click": clicks})
        return self._arrays[split]

    def batches(
        self,
        split: str,
        batch_size: int,
        labels: Sequence[str] | None = None,
        shuffle: bool = False,
        seed: int = 0,
        start_epoch: int = 0,
    ) -> keras.utils.PyDataset:
        return SyntheticBatches(self, split, batch_size, shuffle, seed, start_epoch)


class SyntheticBatches(keras.utils.PyDataset):
    """Batches of a generated split; epoch `e` visits the blocks in an order drawn from
    `(seed, e)` and shuffles the rows of each block."""

    def __init__(
        self,
        dataset: SyntheticStream,
        split: str,
        batch_size: int,
        shuffle: bool,
        seed: int,
        epoch: int,
    ) -> None:
        super().__init__()
        self.dataset, self.split, self.batch_size = dataset, split, batch_size
        self.shuffle, self.seed, self.epoch = shuffle, seed, epoch
        self._stream, self._next_index = None, 0

    def __len__(self):
        return self.dataset.steps_per_epoch(self.split, self.batch_size)

    def _epoch_stream(self):
        rng = np.random.default_rng([self.seed, self.epoch, 99])
        blocks = range(self.dataset.num_blocks(self.split))
        order = rng.permutation(len(blocks)) if self.shuffle else blocks
        carry = None
        for index in order:
            features, labels, _ = self.dataset.block(self.split, int(index))
            if self.shuffle:
                rows = rng.permutation(len(labels["click"]))
                features = {k: v[rows] for k, v in features.items()}
                labels = {k: v[rows] for k, v in labels.items()}
            if carry is not None:
                features = {k: np.concatenate([carry[0][k], v]) for k, v in features.items()}
                labels = {k: np.concatenate([carry[1][k], v]) for k, v in labels.items()}
            size = len(labels["click"])
            full = size - size % self.batch_size
            for start in range(0, full, self.batch_size):
                yield (
                    {k: v[start : start + self.batch_size] for k, v in features.items()},
                    labels["click"][start : start + self.batch_size, None],
                )
            carry = (
                {k: v[full:] for k, v in features.items()},
                {k: v[full:] for k, v in labels.items()},
            )
        if carry is not None and len(carry[1]["click"]):
            yield carry[0], carry[1]["click"][:, None]

    def __getitem__(self, index):
        if self._stream is None or index != self._next_index:
            self._stream = self._epoch_stream()
            for _ in range(index):
                next(self._stream)
        self._next_index = index + 1
        return next(self._stream)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._stream, self._next_index = None, 0

    def restart(self, epoch: int = 0) -> None:
        """Start over at `epoch` (a new `fit` on the same batches, e.g. a tuner trial)."""
        self.epoch = epoch
        self._stream, self._next_index = None, 0


# Options a dataset name may set: `synthetic_stream:vocabulary_size=2000,zipf=1.2`.
STREAM_OPTIONS = {
    "vocabulary_size": int,
    "num_fields": int,
    "zipf": float,
    "eval_rows": int,
    "teacher_seed": int,
}


def parse_stream_name(name: str) -> dict:
    """The options of a `synthetic_stream[:key=value,...]` dataset name, checked and typed."""
    base, _, text = name.partition(":")
    if base != "synthetic_stream":
        raise ValueError(f"Not a synthetic_stream dataset name: {name!r}.")
    options = {}
    for item in filter(None, text.split(",")):
        key, equals, value = item.partition("=")
        if key not in STREAM_OPTIONS or not equals:
            raise ValueError(
                f"dataset {name!r}: option {item!r} must be key=value with key one of "
                f"{list(STREAM_OPTIONS)}."
            )
        try:
            options[key] = STREAM_OPTIONS[key](value)
        except ValueError:
            raise ValueError(
                f"dataset {name!r}: {key} must be {STREAM_OPTIONS[key].__name__}, got {value!r}."
            ) from None
        minimum = 1.0 + 1e-9 if key == "zipf" else (0 if key == "teacher_seed" else 1)
        if options[key] < minimum:
            raise ValueError(f"dataset {name!r}: {key} must be >= {minimum:g}, got {value}.")
    return options


def make_synthetic_stream(
    train_rows: int = 1_000_000, seed: int = 0, **kwargs: Any
) -> SyntheticStream:
    """`SyntheticStream(train_rows, seed=seed, **kwargs)` (`--dataset synthetic_stream`)."""
    return SyntheticStream(train_rows=train_rows, seed=seed, **kwargs)
