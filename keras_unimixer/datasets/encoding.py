"""Raw columns to the integer/float arrays of a `RecDataset`; vocabularies are fit on train."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_unimixer.datasets.schema import (
    CATEGORICAL,
    MISSING_ID,
    MULTI_CATEGORICAL,
    NUMERIC,
    FeatureSpec,
    RecDataset,
    Vocabulary,
    log_report,
)


@dataclasses.dataclass
class RawColumn:
    """Raw values of one feature over all rows.

    `values`: for categorical, a sequence of strings (`None` or `""` = missing); for
    multi-categorical, a sequence of lists of strings; for numeric, a float array (NaN = missing).
    `transform` (numeric only): `"signed_log1p"` applies sign(x) * log(1 + |x|) before scaling.
    """

    name: str
    kind: str
    values: object
    group: str = "default"
    min_count: int = 1
    max_length: int = 0
    transform: str | None = None


def _encode_categorical(column, split_indices, report, preprocessing):
    values = column.values
    vocabulary = Vocabulary([values[i] for i in split_indices["train"]], min_count=column.min_count)
    encoded = {}
    for split, indices in split_indices.items():
        ids, num_oov = vocabulary.lookup([values[i] for i in indices])
        encoded[split] = ids
        report[f"{column.name}.{split}.out_of_vocabulary"] = int(num_oov)
        report[f"{column.name}.{split}.missing"] = int(np.sum(ids == MISSING_ID))
    report[f"{column.name}.values_below_min_count"] = vocabulary.num_below_threshold
    preprocessing[column.name] = {"vocabulary": list(vocabulary.index)}
    spec = FeatureSpec(column.name, CATEGORICAL, vocabulary.size, column.group)
    return spec, encoded


def _encode_multi(column, split_indices, report, preprocessing):
    values = column.values
    train_tokens = [token for i in split_indices["train"] for token in values[i]]
    vocabulary = Vocabulary(train_tokens, min_count=column.min_count)
    max_length = column.max_length or max(len(v) for v in values)
    encoded = {}
    for split, indices in split_indices.items():
        ids = np.full((len(indices), max_length), MISSING_ID, dtype="int32")
        num_oov = num_truncated = 0
        for row, index in enumerate(indices):
            tokens = values[index]
            num_truncated += len(tokens) > max_length
            token_ids, oov = vocabulary.lookup(tokens[:max_length])
            ids[row, : len(token_ids)] = token_ids
            num_oov += oov
        encoded[split] = ids
        report[f"{column.name}.{split}.out_of_vocabulary"] = int(num_oov)
        report[f"{column.name}.{split}.truncated_rows"] = int(num_truncated)
    preprocessing[column.name] = {"vocabulary": list(vocabulary.index), "max_length": max_length}
    spec = FeatureSpec(
        column.name, MULTI_CATEGORICAL, vocabulary.size, column.group, max_length=max_length
    )
    return spec, encoded


def signed_log1p(values: np.ndarray) -> np.ndarray:
    """`sign(x) * log(1 + |x|)`: compresses heavy tails, keeps negatives (Criteo I2 = -1)."""
    return np.sign(values) * np.log1p(np.abs(values))


def _encode_numeric(column, split_indices, report, preprocessing):
    values = np.asarray(column.values, dtype="float64")
    if column.transform == "signed_log1p":
        values = signed_log1p(values)
    elif column.transform is not None:
        raise ValueError(
            f"Feature {column.name!r}: `transform` must be None or 'signed_log1p', "
            f"got {column.transform!r}."
        )
    train = values[split_indices["train"]]
    finite = np.isfinite(train)
    mean = float(train[finite].mean()) if finite.any() else 0.0
    std = float(train[finite].std()) if finite.any() else 1.0
    std = std if std > 0 else 1.0
    encoded = {}
    for split, indices in split_indices.items():
        split_values = values[indices]
        bad = ~np.isfinite(split_values)
        report[f"{column.name}.{split}.imputed_missing_or_non_finite"] = int(bad.sum())
        # Missing, NaN and +-Inf become the training mean, i.e. 0 after standardization.
        split_values = np.where(bad, mean, split_values)
        encoded[split] = ((split_values - mean) / std).astype("float32")
    preprocessing[column.name] = {"mean": mean, "std": std, "transform": column.transform}
    return FeatureSpec(column.name, NUMERIC, 0, column.group), encoded


_ENCODERS = {
    CATEGORICAL: _encode_categorical,
    MULTI_CATEGORICAL: _encode_multi,
    NUMERIC: _encode_numeric,
}


def encode_dataset(
    name: str, columns: dict, labels: dict, split_indices: dict, report: dict | None = None
) -> RecDataset:
    """Encode raw columns into a `RecDataset`; vocabularies and statistics come from "train" only.

    Every repaired value is counted in `report` (and logged): missing and non-finite numerics
    (imputed with the training mean), categorical values unseen in training or below `min_count`
    (mapped to the out-of-vocabulary id 1), missing categoricals (id 0).
    """
    report = dict(report or {})
    preprocessing: dict = {}
    specs = []
    per_split = {split: {} for split in split_indices}
    for column in columns:
        spec, encoded = _ENCODERS[column.kind](column, split_indices, report, preprocessing)
        specs.append(spec)
        for split, array in encoded.items():
            per_split[split][column.name] = array
    splits = {
        split: (
            per_split[split],
            {label: np.asarray(v)[idx].astype("float32") for label, v in labels.items()},
        )
        for split, idx in split_indices.items()
    }
    log_report(name, report)
    return RecDataset(name, specs, list(labels), splits, report, preprocessing, dict(split_indices))
