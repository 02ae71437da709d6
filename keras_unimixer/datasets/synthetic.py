"""The embedded default data: a synthetic CTR task with planted feature interactions."""

from __future__ import annotations

import numpy as np

from keras_unimixer.datasets.encoding import RawColumn, encode_dataset
from keras_unimixer.datasets.schema import CATEGORICAL, NUMERIC, RecDataset, random_split
from keras_unimixer.evaluation import roc_auc


def make_synthetic(
    num_examples: int = 60_000,
    num_categorical: int = 16,
    num_numeric: int = 4,
    vocabulary_size: int = 50,
    num_pairs: int = 8,
    interaction_rank: int = 4,
    seed: int = 0,
) -> RecDataset:
    """Synthetic click data, deterministic by `seed`, with interactions a mixer has to find.

    Feature values are Zipf-like draws. The click logit is the sum of
    - first-order effects: one random weight per (categorical field, value), a linear term per
      numeric feature;
    - `num_pairs` planted pairwise interactions between categorical fields, each low-rank
      (`<u_a[v_a], u_b[v_b]>`, rank `interaction_rank`, the FM form);
    - one third-order interaction `z_a[v_a] z_b[v_b] z_c[v_c]` among three fields and one
      numeric-by-categorical interaction;
    and the label is drawn from `sigmoid(logit)`. Fields belong to groups "user", "item",
    "context" in turn (for group tokenization).
    """
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, vocabulary_size + 1) ** 1.1
    popularity /= popularity.sum()
    values = rng.choice(vocabulary_size, size=(num_examples, num_categorical), p=popularity)
    numeric = rng.standard_normal((num_examples, num_numeric))

    logit = np.zeros(num_examples)
    first_order = rng.normal(0.0, 0.4, (num_categorical, vocabulary_size))
    logit += first_order[np.arange(num_categorical), values].sum(axis=1)
    logit += numeric @ rng.normal(0.0, 0.3, num_numeric)
    all_pairs = [(a, b) for a in range(num_categorical) for b in range(a + 1, num_categorical)]
    chosen = rng.choice(len(all_pairs), size=min(num_pairs, len(all_pairs)), replace=False)
    for pair_index in chosen:
        a, b = all_pairs[pair_index]
        u_a = rng.normal(0.0, 0.7, (vocabulary_size, interaction_rank))
        u_b = rng.normal(0.0, 0.7, (vocabulary_size, interaction_rank))
        logit += np.sum(u_a[values[:, a]] * u_b[values[:, b]], axis=1)
    a, b, c = rng.choice(num_categorical, size=3, replace=False)
    z = rng.normal(0.0, 1.2, (3, vocabulary_size))
    logit += z[0, values[:, a]] * z[1, values[:, b]] * z[2, values[:, c]]
    if num_numeric:
        logit += numeric[:, 0] * rng.normal(0.0, 0.8, vocabulary_size)[values[:, 0]]
    logit -= np.quantile(logit, 0.7)  # about 30% positives
    labels = (rng.random(num_examples) < 1.0 / (1.0 + np.exp(-logit))).astype("float32")

    groups = ("user", "item", "context")
    columns = [
        RawColumn(f"cat_{i}", CATEGORICAL, [str(v) for v in values[:, i]], groups[i % 3])
        for i in range(num_categorical)
    ]
    columns += [
        RawColumn(f"num_{i}", NUMERIC, numeric[:, i], "context") for i in range(num_numeric)
    ]
    indices = random_split(num_examples, seed)
    dataset = encode_dataset("synthetic", columns, {"click": labels}, indices)
    # The AUC of the true click probability on the test split: the ceiling any model can reach.
    dataset.report["oracle_test_auc"] = roc_auc(labels[indices["test"]], logit[indices["test"]])
    return dataset
