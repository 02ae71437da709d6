"""Feature tokenization: feature ids/values to `(batch, num_tokens, token_dim)`."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from keras_unimixer.features import (
    CATEGORICAL,
    NUMERIC,
    FeatureSpec,
    features_from_config,
)
from keras_unimixer.layers.initializers import RowChunked, add_table_weight, distinct
from keras_unimixer.layers.lookup import lookup
from keras_unimixer.utils.types import Shape, Tensor
from keras_unimixer.utils.validation import check_choice, check_positive_int

TOKENIZER_MODES = ("rankmixer", "field", "group")
EMBEDDINGS = ("dense", "distributed")
logger = logging.getLogger("keras_unimixer.layers")


@keras.saving.register_keras_serializable(package="keras_unimixer")
class FeatureTokenizer(keras.layers.Layer):
    """Embeds every feature and turns the embeddings into tokens.

    Every categorical feature has an embedding table (`vocabulary_size, embedding_dim`); a
    multi-valued one averages the embeddings of its non-padding ids (id 0 is padding/missing); a
    numeric feature `x` becomes `x * w + b` with its own `w, b` of size `embedding_dim`. Then:
    - `"rankmixer"` (RankMixer tokenization): concatenate all embeddings (in feature-group order)
      into one vector, cut it into `num_tokens` equal chunks (zero-padded at the end to a multiple
      of `num_tokens`) and project chunk `i` with its own `(chunk, token_dim)` matrix.
    - `"field"`: one token per feature, each projected to `token_dim` by its own matrix (or not
      projected when `project=False`, which needs `token_dim == embedding_dim`).
    - `"group"`: one token per feature group, the concatenation of the group's embeddings
      projected to `token_dim` by the group's own matrix.

    Args:
        features: the dataset's `FeatureSpec`s (or their dicts).
        embedding_dim: int. Size of each feature embedding.
        token_dim: int. Size `D` of each output token.
        num_tokens: int or `None`. Number of tokens `T` in `"rankmixer"` mode (ignored by the other
            modes, where it is the number of features or groups). Defaults to `None`.
        mode: str. `"rankmixer"`, `"field"` or `"group"`. Defaults to `"rankmixer"`.
        project: bool. Project field tokens (`"field"` mode only). Defaults to `True`.
        embeddings_initializer: str. Initializer of the embedding tables. Defaults to `"uniform"`.
            Tables of more than 2^20 rows are drawn 2^20 rows at a time (`RowChunked`), so that
            the draw's temporaries stay small.
        embeddings_regularizer: regularizer of the embedding tables and numeric-feature weights
            (e.g. `keras.regularizers.L2(0.025)`, FuxiCTR's `embedding_regularizer: 0.05`). Defaults
            to `None`.
        embedding: str. `"dense"`: one Keras weight per table; `"distributed"`: every table in one
            keras-rs `DistributedEmbedding` (tables sharded on TPU SparseCore where there is one;
            elsewhere keras-rs keeps them on the default device, as plain lookups with the same
            results, and this layer logs that it fell back). Defaults to `"dense"`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: dict feature name -> tensor: `(batch,)` int ids for categorical features,
            `(batch, max_length)` int ids for multi-valued ones, `(batch,)` floats for numeric ones.

    Example:
    >>> from keras_unimixer.features import FeatureSpec
    >>> specs = [FeatureSpec("user", "categorical", 10), FeatureSpec("age", "numeric")]
    >>> tokenizer = keras_unimixer.layers.FeatureTokenizer(specs, 4, token_dim=8, num_tokens=2)
    >>> tokenizer({"user": np.array([3, 5]), "age": np.array([0.1, -1.0])}).shape
    (2, 2, 8)

    References:
        - [RankMixer: Scaling Up Ranking Models in Industrial Recommenders](https://arxiv.org/abs/2507.15551)
        - [UniMixer: A Unified Architecture for Scaling Laws in Recommendation Systems](https://arxiv.org/abs/2604.00590)
    """

    def __init__(
        self,
        features: Sequence[FeatureSpec | dict],
        embedding_dim: int,
        token_dim: int,
        num_tokens: int | None = None,
        mode: str = "rankmixer",
        project: bool = True,
        embeddings_initializer: str | keras.initializers.Initializer = "uniform",
        embeddings_regularizer: str | keras.regularizers.Regularizer | None = None,
        embedding: str = "dense",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.embedding = check_choice("embedding", embedding, EMBEDDINGS)
        self.features = features_from_config(features)
        if not self.features:
            raise ValueError("`features` must list at least one FeatureSpec.")
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.token_dim = check_positive_int("token_dim", token_dim)
        self.mode = check_choice("mode", mode, TOKENIZER_MODES)
        self.project = bool(project)
        if self.mode == "rankmixer":
            self.num_tokens = check_positive_int("num_tokens", num_tokens)
        else:
            self.num_tokens = len(self.features) if mode == "field" else len(self.groups())
        if not self.project and (self.mode != "field" or token_dim != embedding_dim):
            raise ValueError(
                "`project`=False is only valid with mode='field' and token_dim == embedding_dim "
                f"(got mode={mode!r}, token_dim={token_dim}, embedding_dim={embedding_dim})."
            )
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.embeddings_regularizer = keras.regularizers.get(embeddings_regularizer)
        if self.embedding == "distributed" and self.embeddings_regularizer is not None:
            raise ValueError(
                "`embedding`='distributed' takes no `embeddings_regularizer` (keras-rs tables have "
                "none): use embedding='dense' for an L2 on the tables (`embedding_l2`)."
            )
        # Token order: features sorted by group (stable), as the spec groups them by meaning.
        group_order = {group: i for i, group in enumerate(self.groups())}
        self.ordered_features = sorted(self.features, key=lambda f: group_order[f.group])

    def groups(self) -> list[str]:
        seen = []
        for spec in self.features:
            if spec.group not in seen:
                seen.append(spec.group)
        return seen

    def build(self, input_shape: dict[str, Shape]) -> None:
        if not isinstance(input_shape, dict):
            raise ValueError(
                "FeatureTokenizer expects a dict of feature name -> tensor, got "
                f"{type(input_shape).__name__}."
            )
        self._check_names(input_shape)
        for index, spec in enumerate(self.features):
            if spec.kind == NUMERIC:
                setattr(
                    self,
                    f"{spec.name}_numeric_kernel",
                    self.add_weight(
                        name=f"{spec.name}_numeric_kernel",
                        shape=(self.embedding_dim,),
                        initializer=keras.initializers.RandomNormal(stddev=0.05),
                        regularizer=self.embeddings_regularizer,
                    ),
                )
                setattr(
                    self,
                    f"{spec.name}_numeric_bias",
                    self.add_weight(
                        name=f"{spec.name}_numeric_bias",
                        shape=(self.embedding_dim,),
                        initializer="zeros",
                    ),
                )
            elif self.embedding == "dense":
                setattr(
                    self,
                    f"{spec.name}_embedding",
                    add_table_weight(
                        self,
                        name=f"{spec.name}_embedding",
                        shape=(spec.vocabulary_size, self.embedding_dim),
                        initializer=RowChunked(distinct(self.embeddings_initializer, index)),
                        regularizer=self.embeddings_regularizer,
                    ),
                )
        if self.embedding == "distributed":
            self._build_distributed_embedding()
        glorot = "glorot_uniform"
        if self.mode == "rankmixer":
            total = len(self.features) * self.embedding_dim
            self.chunk_size = math.ceil(total / self.num_tokens)
            self.padding = self.chunk_size * self.num_tokens - total
            self._add_token_projection(self.chunk_size)
        elif self.mode == "field" and self.project:
            self._add_token_projection(self.embedding_dim)
        elif self.mode == "group":
            for group in self.groups():
                width = self.embedding_dim * sum(f.group == group for f in self.features)
                setattr(
                    self,
                    f"{group}_group_kernel",
                    self.add_weight(
                        name=f"{group}_group_kernel",
                        shape=(width, self.token_dim),
                        initializer=glorot,
                    ),
                )
                setattr(
                    self,
                    f"{group}_group_bias",
                    self.add_weight(
                        name=f"{group}_group_bias", shape=(self.token_dim,), initializer="zeros"
                    ),
                )

    def _build_distributed_embedding(self):
        """One keras-rs `DistributedEmbedding` over every categorical table (mean combiner)."""
        # Importing keras-rs draws a Keras seed (its TableConfig default initializer is made at
        # import): keep the draw from shifting the later weights of a seeded model.
        state = random.getstate()
        import keras_rs

        random.setstate(state)

        configs = {}
        for index, spec in enumerate(self.features):
            if spec.kind == NUMERIC:
                continue
            table = keras_rs.layers.TableConfig(
                name=f"{spec.name}_table",
                vocabulary_size=spec.vocabulary_size,
                embedding_dim=self.embedding_dim,
                initializer=distinct(self.embeddings_initializer, index),
                combiner="mean",
                placement="auto",
            )
            length = 1 if spec.kind == CATEGORICAL else spec.max_length
            configs[spec.name] = keras_rs.layers.FeatureConfig(
                name=spec.name,
                table=table,
                input_shape=(None, length),
                output_shape=(None, self.embedding_dim),
            )
        self.distributed_embedding = keras_rs.layers.DistributedEmbedding(
            configs, name="distributed_embedding"
        )
        # Tables now: keras-rs would make them at the first eager call, after a symbolic build, so
        # a model saved before any eager call would hold no tables (and reload with random ones).
        self.distributed_embedding.build({name: c.input_shape for name, c in configs.items()})
        placements = set(self.distributed_embedding._placement_to_path_to_feature_config)
        if "sparsecore" not in placements:
            logger.warning(
                "embedding='distributed': no TPU SparseCore here, so keras-rs keeps the %d tables "
                "on the default device as plain lookups (same results as embedding='dense'; "
                "TableConfig optimizers do not apply, use --embedding-optimizer).",
                len(configs),
            )

    def _distributed_lookups(self, inputs) -> dict:
        """Every categorical feature's `(batch, embedding_dim)` embedding, in one call; padding
        ids (0) of multi-valued features get weight 0, as in the dense path."""
        ids, weights = {}, {}
        for spec in self.features:
            if spec.kind == NUMERIC:
                continue
            values = ops.cast(inputs[spec.name], "int32")
            values = ops.reshape(values, (-1, 1)) if spec.kind == CATEGORICAL else values
            ids[spec.name] = values
            weights[spec.name] = ops.cast(ops.not_equal(values, 0), self.compute_dtype)
            if spec.kind == CATEGORICAL:
                weights[spec.name] = ops.ones_like(weights[spec.name])
        return self.distributed_embedding(ids, weights)

    def _add_token_projection(self, input_dim: int):
        """Token-specific `(input_dim -> token_dim)` maps, Glorot-scaled per token."""
        self.token_kernel = self.add_weight(
            name="token_kernel",
            shape=(self.num_tokens, input_dim, self.token_dim),
            initializer=keras.initializers.VarianceScaling(
                scale=float(self.num_tokens), mode="fan_avg", distribution="uniform"
            ),
        )
        self.token_bias = self.add_weight(
            name="token_bias", shape=(self.num_tokens, self.token_dim), initializer="zeros"
        )

    def _check_names(self, inputs):
        missing = [spec.name for spec in self.features if spec.name not in inputs]
        if missing:
            raise ValueError(
                f"FeatureTokenizer inputs lack features {missing}; expected every one of "
                f"{[spec.name for spec in self.features]}."
            )

    def embed(self, spec: FeatureSpec, value: Tensor, looked_up: dict | None = None) -> Tensor:
        """The `(batch, embedding_dim)` embedding of one feature (`looked_up`: the distributed
        embedding's outputs)."""
        if looked_up is not None and spec.kind != NUMERIC:
            return looked_up[spec.name]
        if spec.kind == NUMERIC:
            value = ops.reshape(ops.cast(value, self.compute_dtype), (-1, 1))
            kernel = getattr(self, f"{spec.name}_numeric_kernel")
            return value * kernel + getattr(self, f"{spec.name}_numeric_bias")
        table = getattr(self, f"{spec.name}_embedding")
        ids = ops.cast(value, "int32")
        if spec.kind == CATEGORICAL:
            return lookup(self, spec.name, table, ops.reshape(ids, (-1,)))
        embedded = lookup(self, spec.name, table, ids)  # (batch, max_length, embedding_dim)
        mask = ops.cast(ops.not_equal(ids, 0), embedded.dtype)[..., None]
        count = ops.maximum(ops.sum(mask, axis=1), 1.0)
        return ops.sum(embedded * mask, axis=1) / count

    def call(self, inputs: dict[str, Tensor]) -> Tensor:
        self._check_names(inputs)
        looked_up = self._distributed_lookups(inputs) if self.embedding == "distributed" else None
        embeddings = [
            self.embed(spec, inputs[spec.name], looked_up) for spec in self.ordered_features
        ]
        if self.mode == "field":
            tokens = ops.stack(embeddings, axis=1)
            if not self.project:
                return tokens
            return ops.einsum("bte,ted->btd", tokens, self.token_kernel) + self.token_bias
        if self.mode == "group":
            tokens = []
            for group in self.groups():
                members = [
                    e
                    for e, s in zip(embeddings, self.ordered_features, strict=True)
                    if s.group == group
                ]
                kernel = getattr(self, f"{group}_group_kernel")
                bias = getattr(self, f"{group}_group_bias")
                tokens.append(ops.matmul(ops.concatenate(members, axis=-1), kernel) + bias)
            return ops.stack(tokens, axis=1)
        flat = ops.concatenate(embeddings, axis=-1)
        if self.padding:
            flat = ops.pad(flat, [(0, 0), (0, self.padding)])
        chunks = ops.reshape(flat, (-1, self.num_tokens, self.chunk_size))
        return ops.einsum("btc,tcd->btd", chunks, self.token_kernel) + self.token_bias

    def compute_output_shape(self, input_shape: dict[str, Shape]) -> Shape:
        batch = next(iter(input_shape.values()))[0]
        return (batch, self.num_tokens, self.token_dim)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "features": [spec.to_dict() for spec in self.features],
                "embedding_dim": self.embedding_dim,
                "token_dim": self.token_dim,
                "num_tokens": self.num_tokens if self.mode == "rankmixer" else None,
                "mode": self.mode,
                "project": self.project,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": keras.regularizers.serialize(self.embeddings_regularizer),
                "embedding": self.embedding,
            }
        )
        return config
