"""`ListwiseModel`: a pointwise scorer applied to every item of a list, for listwise losses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
from keras import ops

from keras_unimixer.utils.types import Tensor

if TYPE_CHECKING:
    from typing import Self  # Python 3.11+; annotations only


@keras.saving.register_keras_serializable(package="keras_unimixer")
class ListwiseModel(keras.Model):
    """Scores lists: features `(batch, list_size, ...)` in, scores `(batch, list_size)` out.

    Every item of every list goes through the same `scorer` (a model with one output per row,
    e.g. `RankingModel` or `Tower(output_dim=1)`), so keras-rs listwise and pairwise losses
    (`ListMLELoss`, `PairwiseLogisticLoss`, ...) and metrics (`NDCG`, `MeanReciprocalRank`, ...)
    apply directly, with label -1 for padding (`keras_unimixer.datasets.make_lists`).

    Args:
        scorer: a Keras model from a batch of item features to `(batch, 1)` scores.
        **kwargs: `keras.Model` arguments.

    Example:
    >>> import keras_rs
    >>> from keras_unimixer.features import FeatureSpec
    >>> features = [FeatureSpec("item", "categorical", 50), FeatureSpec("price", "numeric")]
    >>> scorer = keras_unimixer.models.RankingModel(features, num_tokens=4, token_dim=8)
    >>> model = keras_unimixer.models.ListwiseModel(scorer)
    >>> model.compile("adam", loss=keras_rs.losses.ListMLELoss(),
    ...               metrics=[keras_rs.metrics.NDCG(k=10)])
    """

    def __init__(self, scorer: keras.Model, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scorer = scorer

    def call(self, features: dict[str, Tensor]) -> Tensor:
        first = next(iter(features.values()))
        list_size = first.shape[1]
        flat = {
            name: ops.reshape(values, (-1,) + tuple(values.shape[2:]))
            for name, values in features.items()
        }
        scores = self.scorer(flat)
        return ops.reshape(ops.cast(scores, "float32"), (-1, list_size))

    def get_config(self) -> dict:
        return {"name": self.name, "scorer": keras.saving.serialize_keras_object(self.scorer)}

    @classmethod
    def from_config(cls, config: dict) -> Self:
        config = dict(config)
        config["scorer"] = keras.saving.deserialize_keras_object(config["scorer"])
        return cls(**config)
