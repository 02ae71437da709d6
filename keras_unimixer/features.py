"""What an input feature is: its kind, its vocabulary's reserved ids, and `FeatureSpec`.

The vocabulary of the package's layers and models, below the data loaders: layers, models and
tasks import this module, never `keras_unimixer.datasets`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

CATEGORICAL = "categorical"
NUMERIC = "numeric"
MULTI_CATEGORICAL = "multi_categorical"
FEATURE_KINDS = (CATEGORICAL, NUMERIC, MULTI_CATEGORICAL)

# Reserved ids of every categorical vocabulary: 0 = missing value (and padding of multi-valued
# features), 1 = out of vocabulary (a value unseen in training, or below the frequency threshold).
MISSING_ID = 0
OOV_ID = 1
NUM_RESERVED_IDS = 2

SPLITS = ("train", "validation", "test")

# Label kinds: a binary label (0/1, a click) is fitted with cross-entropy and scored by AUC; a
# rating (a finite number in a declared range) with squared error and scored by RMSE.
BINARY = "binary"
RATING = "rating"
LABEL_KINDS = (BINARY, RATING)


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """One input feature.

    Attributes:
        name: the feature's name (and the key of its input tensor).
        kind: `"categorical"` (one id), `"multi_categorical"` (a padded list of ids) or `"numeric"`.
        vocabulary_size: number of ids of a categorical feature, reserved ids 0 and 1 included.
        group: semantic group (`"user"`, `"item"`, `"context"`, ...), used by the tokenizers.
        max_length: number of ids per example of a multi-valued feature.
    """

    name: str
    kind: str
    vocabulary_size: int = 0
    group: str = "default"
    max_length: int = 1

    def __post_init__(self):
        if self.kind not in FEATURE_KINDS:
            raise ValueError(
                f"Feature {self.name!r}: `kind` must be one of {FEATURE_KINDS}, got {self.kind!r}."
            )
        if self.kind != NUMERIC and self.vocabulary_size < NUM_RESERVED_IDS + 1:
            raise ValueError(
                f"Feature {self.name!r}: a {self.kind} feature needs `vocabulary_size` >= 3 "
                f"(ids 0 and 1 are reserved for missing and out-of-vocabulary), "
                f"got {self.vocabulary_size}."
            )
        if self.kind == MULTI_CATEGORICAL and self.max_length < 1:
            raise ValueError(f"Feature {self.name!r}: `max_length` must be >= 1.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, config: dict) -> FeatureSpec:
        return cls(**config)


def features_from_config(features: Sequence[FeatureSpec | dict]) -> list[FeatureSpec]:
    """A list of `FeatureSpec` from specs or their dicts (as stored in layer configs)."""
    return [f if isinstance(f, FeatureSpec) else FeatureSpec.from_dict(f) for f in features]
