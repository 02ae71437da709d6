"""In-graph serving preprocessing: raw request features to the ids and floats a model takes.

The encoding of `keras_unimixer.datasets` (vocabulary lookup with id 0 = missing and id 1 = out of
vocabulary, numeric transform, standardization with the training mean and std, missing values
imputed) rebuilt from TensorFlow ops, so that a SavedModel does it itself and a request carries the
values as they arrive: strings for categorical features, a padded string matrix for multi-valued
ones, floats for numeric ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from keras_unimixer.datasets.schema import (
    MISSING_ID,
    MULTI_CATEGORICAL,
    NUM_RESERVED_IDS,
    NUMERIC,
    OOV_ID,
    features_from_config,
)
from keras_unimixer.datasets.serving_spec import (  # noqa: F401 (re-exported by export)
    PREPROCESSING_FILE,
    read_serving_spec,
    serving_spec,
    write_serving_spec,
)
from keras_unimixer.features import FeatureSpec
from keras_unimixer.utils.types import ArrayLike

NUMERIC_TRANSFORMS = ("signed_log1p",)


def raw_input_signature(features: Sequence[FeatureSpec | dict]) -> dict:
    """`tf.TensorSpec` of each raw feature of a request, named after the feature."""
    signature = {}
    for spec in features_from_config(features):
        if spec.kind == NUMERIC:
            signature[spec.name] = tf.TensorSpec([None], tf.float32, name=spec.name)
        elif spec.kind == MULTI_CATEGORICAL:
            signature[spec.name] = tf.TensorSpec([None, None], tf.string, name=spec.name)
        else:
            signature[spec.name] = tf.TensorSpec([None], tf.string, name=spec.name)
    return signature


class ServingPreprocessor(tf.Module):
    """Raw features to model inputs, as TensorFlow ops (tables are tracked for SavedModel).

    Args:
        features: the model's `FeatureSpec`s (or their dicts).
        preprocessing: `RecDataset.preprocessing` (vocabularies, means, stds, transforms).
    """

    def __init__(self, features: Sequence[FeatureSpec | dict], preprocessing: dict):
        super().__init__(name="serving_preprocessor")
        self.features = features_from_config(features)
        self.statistics = {}
        self.tables = {}
        for spec in self.features:
            if spec.name not in preprocessing:
                raise ValueError(
                    f"`preprocessing` has no entry for feature {spec.name!r}; it has "
                    f"{sorted(preprocessing)}."
                )
            entry = preprocessing[spec.name]
            if spec.kind == NUMERIC:
                self.statistics[spec.name] = _numeric_statistics(spec.name, entry)
            else:
                self.tables[spec.name] = _vocabulary_table(spec, entry["vocabulary"])

    def __call__(self, raw: dict) -> dict:
        return {spec.name: self._encode(spec, raw[spec.name]) for spec in self.features}

    def _encode(self, spec, values: ArrayLike):
        if spec.kind == NUMERIC:
            return self._encode_numeric(spec.name, values)
        if spec.kind == MULTI_CATEGORICAL:
            values = values[:, : spec.max_length]
        ids = tf.cast(self.tables[spec.name].lookup(values), tf.int32)
        # A lookup's static shape is unknown; ONNX conversion needs the rank downstream.
        ids = tf.reshape(ids, tf.shape(values))
        if spec.kind == MULTI_CATEGORICAL:
            ids = _pad_ids(ids, spec.max_length)
        return ids

    def _encode_numeric(self, name, values: ArrayLike):
        mean, std, transform = self.statistics[name]
        values = tf.cast(values, tf.float32)
        if transform == "signed_log1p":
            values = tf.sign(values) * tf.math.log1p(tf.abs(values))
        # Missing (NaN) and non-finite values become the training mean, i.e. 0 after scaling.
        values = tf.where(tf.math.is_finite(values), values, tf.constant(mean, tf.float32))
        return (values - mean) / std


def _vocabulary_table(spec, vocabulary):
    # The empty string is a missing value: a table entry rather than a string comparison, which
    # ONNX (before opset 19) cannot express. string -> int64 is the table type tf2onnx converts.
    keys = tf.constant([""] + [str(value) for value in vocabulary], tf.string)
    first = NUM_RESERVED_IDS
    ids = tf.constant([MISSING_ID] + list(range(first, first + len(vocabulary))), tf.int64)
    if len(vocabulary) + NUM_RESERVED_IDS > spec.vocabulary_size:
        raise ValueError(
            f"Feature {spec.name!r}: the vocabulary has {len(vocabulary)} values but the "
            f"model's `vocabulary_size` is {spec.vocabulary_size} (reserved ids included)."
        )
    initializer = tf.lookup.KeyValueTensorInitializer(keys, ids)
    return tf.lookup.StaticHashTable(initializer, default_value=OOV_ID)


def _pad_ids(ids, max_length):
    """Pad `(batch, <= max_length)` ids with the missing id (ints: ONNX cannot pad strings)."""
    padding = tf.maximum(max_length - tf.shape(ids)[1], 0)
    ids = tf.pad(ids, [[0, 0], [0, padding]], constant_values=MISSING_ID)
    return tf.reshape(ids, [-1, max_length])


def _numeric_statistics(name, entry):
    transform = entry.get("transform")
    if transform is not None and transform not in NUMERIC_TRANSFORMS:
        raise ValueError(
            f"Feature {name!r}: unknown numeric `transform` {transform!r}; known: "
            f"{NUMERIC_TRANSFORMS}."
        )
    if not entry["std"] > 0:
        raise ValueError(f"Feature {name!r}: `std` must be > 0, got {entry['std']}.")
    return float(entry["mean"]), float(entry["std"]), transform


def raw_from_encoded(spec: dict, encoded: dict, unseen: str = "__unseen__") -> dict:
    """Raw request values that encode to `encoded` (the inverse of the dataset encoding).

    Ids map back to their vocabulary values (0 to "", 1 to `unseen`), numeric values are
    un-standardized (and un-transformed). Used to replay a dataset split through a serving model.
    """
    raw = {}
    for feature in features_from_config(spec["features"]):
        entry = spec["preprocessing"][feature.name]
        values = np.asarray(encoded[feature.name])
        if feature.kind == NUMERIC:
            values = values.astype("float64") * entry["std"] + entry["mean"]
            if entry.get("transform") == "signed_log1p":
                values = np.sign(values) * np.expm1(np.abs(values))
            raw[feature.name] = values.astype("float32")
        else:
            table = np.asarray(["", unseen] + [str(v) for v in entry["vocabulary"]], dtype=object)
            raw[feature.name] = table[values]
    return raw
