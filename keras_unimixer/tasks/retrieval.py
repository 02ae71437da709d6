"""Backend-neutral retrieval: in-batch softmax task, factorized top-K recall, brute-force index."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

from keras_unimixer.tasks.ranking import deserialize_task_objects
from keras_unimixer.utils.types import ArrayLike, Tensor
from keras_unimixer.utils.validation import check_positive_int

if TYPE_CHECKING:
    from typing import Self  # Python 3.11+; annotations only

MIN_FLOAT = float(np.finfo(np.float32).min) / 100.0


def _ks(ks) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"`ks` must be positive integers, got {ks!r}.")
    return ks


@keras.saving.register_keras_serializable(package="keras_unimixer")
class FactorizedTopK(keras.metrics.Metric):
    """Top-K recall of the true candidate among all candidates (as `tfrs.metrics.FactorizedTopK`).

    For each query the true candidate's score `<q, c_true>` is compared with the K-th highest score
    over the candidate corpus; a hit is a true score at least as high (score-based, as TFRS does
    without candidate ids). `result()` is a dict `{"factorized_top_k/top_{k}_categorical_accuracy"}`
    (TFRS's names).

    Args:
        candidates: the corpus embeddings `(num_candidates, dim)`, or a zero-argument callable
            returning them (e.g. `lambda: candidate_tower(item_features)`, re-evaluated at every
            update, so it follows training).
        ks: the K values.
        **kwargs: base `keras.metrics.Metric` arguments.
    """

    def __init__(
        self,
        candidates: Tensor | Callable[[], Tensor],
        ks: Sequence[int] = (1, 5, 10, 50, 100),
        name: str = "factorized_top_k",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.candidates = candidates
        self.ks = _ks(ks)
        self.hits = self.add_variable(shape=(len(self.ks),), initializer="zeros", name="hits")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def _corpus(self):
        return self.candidates() if callable(self.candidates) else self.candidates

    def update_state(
        self,
        query_embeddings: Tensor,
        true_candidate_embeddings: Tensor,
        sample_weight: Tensor | None = None,
    ) -> None:
        corpus = ops.convert_to_tensor(self._corpus())
        true_scores = ops.sum(query_embeddings * true_candidate_embeddings, axis=-1)
        max_k = min(max(self.ks), int(corpus.shape[0]))
        top_scores, _ = ops.top_k(ops.matmul(query_embeddings, ops.transpose(corpus)), max_k)
        hits = []
        for k in self.ks:
            threshold = top_scores[:, min(k, max_k) - 1]
            hits.append(ops.cast(true_scores >= threshold, "float32"))
        hits = ops.stack(hits, axis=1)
        weights = (
            ops.ones_like(true_scores)
            if sample_weight is None
            else ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        )
        self.hits.assign_add(ops.sum(hits * weights[:, None], axis=0))
        self.count.assign_add(ops.sum(weights))

    def result(self) -> dict[str, Tensor]:
        rates = self.hits / ops.maximum(self.count, 1.0)
        return {
            f"{self.name}/top_{k}_categorical_accuracy": rates[i] for i, k in enumerate(self.ks)
        }

    def reset_state(self) -> None:
        self.hits.assign(ops.zeros((len(self.ks),)))
        self.count.assign(0.0)

    def get_config(self) -> dict:
        """`candidates` is stored when it is an array; a callable corpus is not serializable and
        comes back as `None` (pass it again: `FactorizedTopK.from_config({..., "candidates":
        fn})`)."""
        candidates = None
        if not callable(self.candidates):
            candidates = keras.ops.convert_to_numpy(self.candidates).tolist()
        return {"name": self.name, "ks": list(self.ks), "candidates": candidates}


@keras.saving.register_keras_serializable(package="keras_unimixer")
class Retrieval(keras.layers.Layer):
    """In-batch softmax retrieval loss and metrics, as `tfrs.tasks.Retrieval`, for any backend.

    Scores `Q C^T` (divided by `temperature`; minus `log(p)` for the candidates' sampling
    probabilities `p`, the logQ correction; accidental hits masked), softmax cross-entropy against
    the diagonal, summed over the batch (TFRS's default reduction).

    Args:
        loss: a Keras loss on `(labels, scores)` (default: categorical cross-entropy on logits,
            `reduction="sum"`, as TFRS).
        metrics: `FactorizedTopK` metrics, updated with the query and true candidate embeddings.
        batch_metrics: metrics updated with `(labels, scores)` of the batch.
        loss_metrics: metrics updated with the loss.
        temperature: softmax temperature (None = 1).
        remove_accidental_hits: mask in-batch negatives whose candidate id equals the positive's
            (needs `candidate_ids`).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        query_embeddings: `(num_queries, dim)`.
        candidate_embeddings: `(num_candidates, dim)`; row `i` is query `i`'s positive.
        sample_weight: optional `(num_queries,)` weights.
        candidate_sampling_probability: optional `(num_candidates,)` sampling probabilities.
        candidate_ids: optional `(num_candidates,)` ids (for accidental hits).
        compute_metrics: update the factorized metrics.
        compute_batch_metrics: update the batch metrics.
    """

    def __init__(
        self,
        loss: keras.losses.Loss | None = None,
        metrics: Sequence[keras.metrics.Metric] | keras.metrics.Metric | None = None,
        batch_metrics: Sequence[keras.metrics.Metric] | None = None,
        loss_metrics: Sequence[keras.metrics.Metric] | None = None,
        temperature: float | None = None,
        remove_accidental_hits: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.loss_fn = loss or keras.losses.CategoricalCrossentropy(
            from_logits=True, reduction="sum"
        )
        metrics = metrics or []
        self.factorized_metrics = list(metrics if isinstance(metrics, (list, tuple)) else [metrics])
        self.batch_metrics = list(batch_metrics or [])
        self.loss_metrics = list(loss_metrics or [])
        if temperature is not None and not temperature > 0:
            raise ValueError(f"`temperature` must be > 0 or None, got {temperature!r}.")
        self.temperature = temperature
        self.remove_accidental_hits = bool(remove_accidental_hits)
        import keras_rs  # imported where used, as for FeatureCross: keeps package import light

        self.sampling_correction = keras_rs.layers.SamplingProbabilityCorrection(epsilon=1e-6)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "loss": keras.saving.serialize_keras_object(self.loss_fn),
                "metrics": [
                    keras.saving.serialize_keras_object(m) for m in self.factorized_metrics
                ],
                "batch_metrics": [
                    keras.saving.serialize_keras_object(m) for m in self.batch_metrics
                ],
                "loss_metrics": [keras.saving.serialize_keras_object(m) for m in self.loss_metrics],
                "temperature": self.temperature,
                "remove_accidental_hits": self.remove_accidental_hits,
            }
        )
        return config

    @classmethod
    def from_config(cls, config: dict) -> Self:
        return cls(**deserialize_task_objects(config))

    def call(
        self,
        query_embeddings: Tensor,
        candidate_embeddings: Tensor,
        sample_weight: Tensor | None = None,
        candidate_sampling_probability: Tensor | None = None,
        candidate_ids: Tensor | None = None,
        compute_metrics: bool = True,
        compute_batch_metrics: bool = True,
    ) -> Tensor:
        scores = ops.matmul(query_embeddings, ops.transpose(candidate_embeddings))
        num_queries, num_candidates = ops.shape(scores)[0], ops.shape(scores)[1]
        labels = ops.eye(num_queries, num_candidates, dtype=scores.dtype)
        if self.temperature is not None:
            scores = scores / self.temperature
        if candidate_sampling_probability is not None:
            probability = ops.cast(candidate_sampling_probability, scores.dtype)
            scores = self.sampling_correction(scores, probability[None, :])  # logQ correction
        if self.remove_accidental_hits:
            # Hand-written on purpose: keras-rs 0.4.0's RemoveAccidentalHits is a no-op (PR #206).
            if candidate_ids is None:
                raise ValueError("`remove_accidental_hits`=True needs `candidate_ids` in the call.")
            positive_ids = candidate_ids[:num_queries]
            same = ops.equal(positive_ids[:, None], candidate_ids[None, :])
            accidental = ops.logical_and(same, ops.equal(labels, 0))
            scores = scores + ops.cast(accidental, scores.dtype) * MIN_FLOAT
        loss = self.loss_fn(labels, scores, sample_weight=sample_weight)
        for metric in self.loss_metrics:
            metric.update_state(loss)
        if compute_metrics:
            for metric in self.factorized_metrics:
                metric.update_state(
                    query_embeddings, candidate_embeddings[:num_queries], sample_weight
                )
        if compute_batch_metrics:
            for metric in self.batch_metrics:
                metric.update_state(labels, scores, sample_weight=sample_weight)
        return loss


@keras.saving.register_keras_serializable(package="keras_unimixer")
class BruteForceIndex(keras.layers.Layer):
    """Exact top-K retrieval over a fixed candidate set (as TFRS `factorized_top_k.BruteForce`).

    Build it from a trained candidate tower with `index_from(embeddings, ids)`; calling it on query
    embeddings (or on query features, when `query_model` is given) returns `(scores, ids)` of the
    `k` best candidates. The candidates are stored as weights, so `.keras` saving keeps them.

    Args:
        num_candidates: size of the candidate set.
        embedding_dim: size of the embeddings.
        k: number of results.
        query_model: optional model mapping query features to embeddings.
        **kwargs: base `keras.layers.Layer` arguments.

    Example:
    >>> index = keras_unimixer.tasks.BruteForceIndex(num_candidates=3, embedding_dim=2, k=2)
    >>> index.index_from(np.eye(3, 2), np.array([10, 11, 12]))
    >>> scores, ids = index(np.array([[0.0, 1.0]]))
    >>> int(keras.ops.convert_to_numpy(ids)[0, 0])
    11
    """

    def __init__(
        self,
        num_candidates: int,
        embedding_dim: int,
        k: int = 10,
        query_model: keras.Model | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_candidates = check_positive_int("num_candidates", num_candidates)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.k = check_positive_int("k", k)
        if self.k > self.num_candidates:
            raise ValueError(f"`k`={k} must be at most `num_candidates`={num_candidates}.")
        self.query_model = query_model
        self.candidate_embeddings = self.add_weight(
            name="candidate_embeddings",
            shape=(self.num_candidates, self.embedding_dim),
            initializer="zeros",
            trainable=False,
        )
        self.candidate_ids = self.add_weight(
            name="candidate_ids",
            shape=(self.num_candidates,),
            initializer="zeros",
            dtype="int32",
            trainable=False,
        )

    def index_from(self, embeddings: ArrayLike, ids: ArrayLike) -> None:
        """Store the candidates: `(num_candidates, embedding_dim)` embeddings and their int ids."""
        embeddings = np.asarray(keras.ops.convert_to_numpy(embeddings), dtype="float32")
        ids = np.asarray(keras.ops.convert_to_numpy(ids))
        if embeddings.shape != (self.num_candidates, self.embedding_dim):
            raise ValueError(
                f"`embeddings` must have shape ({self.num_candidates}, {self.embedding_dim}), "
                f"got {embeddings.shape}."
            )
        if ids.shape != (self.num_candidates,) or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(
                f"`ids` must be {self.num_candidates} integers, got {ids.dtype} {ids.shape}."
            )
        self.candidate_embeddings.assign(embeddings)
        self.candidate_ids.assign(ids.astype("int32"))

    def call(self, queries: Tensor | dict) -> tuple[Tensor, Tensor]:
        queries = self.query_model(queries) if self.query_model is not None else queries
        scores = ops.matmul(queries, ops.transpose(self.candidate_embeddings))
        top_scores, positions = ops.top_k(scores, self.k)
        return top_scores, ops.take(self.candidate_ids, positions, axis=0)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "num_candidates": self.num_candidates,
                "embedding_dim": self.embedding_dim,
                "k": self.k,
                "query_model": None
                if self.query_model is None
                else keras.saving.serialize_keras_object(self.query_model),
            }
        )
        return config

    @classmethod
    def from_config(cls, config: dict) -> Self:
        config = dict(config)
        if config.get("query_model") is not None:
            config["query_model"] = keras.saving.deserialize_keras_object(config["query_model"])
        return cls(**config)
