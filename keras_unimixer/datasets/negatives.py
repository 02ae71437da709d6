"""Negative sampling for implicit feedback: positives only in, positives plus sampled negatives out.

Ranking needs negatives; implicit data (clicks, plays, purchases) has none. For every positive
row `sample_negatives` adds `per_positive` rows with the same user and context features and an
item drawn from the training items, uniformly or by popularity (training positives, smoothed by
`popularity_power`), never one the user has among the positives of that split or of training;
the item's own features (every feature of the item's group) come with it. Seeded per split, so
runs and evaluations are reproducible.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_unimixer.datasets.schema import RecDataset

MODES = ("uniform", "popularity")


def _item_table(features: dict, item_feature: str, item_columns: list, positives: np.ndarray):
    """Per item id (first occurrence among the positive rows): its item-side feature values."""
    items = features[item_feature][positives]
    unique, first = np.unique(items, return_index=True)
    rows = np.flatnonzero(positives)[first]
    return unique, {name: features[name][rows] for name in item_columns}


def sample_negatives(
    data: RecDataset,
    per_positive: int = 4,
    mode: str = "uniform",
    label: str = "click",
    item_feature: str | None = None,
    popularity_power: float = 0.75,
    seed: int = 0,
) -> RecDataset:
    """A copy of `data` whose splits hold its positives and `per_positive` sampled negatives each.

    Args:
        data: an in-memory dataset with a user feature (`data.user_feature`).
        per_positive: negatives drawn for each positive row.
        mode: `"uniform"` over training items, or `"popularity"` (count ** `popularity_power`).
        label: the binary label whose 1s are the positives (its 0s are dropped).
        item_feature: the feature that identifies an item (default: the first of group "item").
        popularity_power: exponent of the popularity distribution (word2vec's 0.75).
        seed: seed of the draws (each split gets its own stream).

    Returns:
        A new `RecDataset` (labels other than `label` are dropped); `report` counts the draws.
    """
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}, got {mode!r}.")
    if not isinstance(per_positive, int) or per_positive < 1:
        raise ValueError(f"`per_positive` must be a positive integer, got {per_positive!r}.")
    if data.user_feature is None:
        raise ValueError(f"{data.name} names no user feature: negatives are drawn per user.")
    item_feature = item_feature or next((f.name for f in data.features if f.group == "item"), None)
    if item_feature is None:
        raise ValueError(f"{data.name} has no feature of group 'item': pass `item_feature`.")
    item_columns = [f.name for f in data.features if f.group == data.feature(item_feature).group]
    train_features, train_labels = data.splits["train"]
    train_positive = train_labels[label] == 1
    items, item_values = _item_table(train_features, item_feature, item_columns, train_positive)
    counts = np.bincount(
        np.searchsorted(items, train_features[item_feature][train_positive]), minlength=len(items)
    ).astype("float64")
    weights = np.ones(len(items)) if mode == "uniform" else counts**popularity_power
    weights /= weights.sum()
    users = data.user_feature
    train_pairs = set(
        zip(
            train_features[users][train_positive],
            train_features[item_feature][train_positive],
            strict=True,
        )
    )
    splits, report = {}, {}
    for index, (split, (features, labels)) in enumerate(data.splits.items()):
        positive = labels[label] == 1
        rng = np.random.default_rng([seed, index])
        seen = train_pairs | set(
            zip(features[users][positive], features[item_feature][positive], strict=True)
        )
        source = np.repeat(np.flatnonzero(positive), per_positive)
        drawn = rng.choice(len(items), size=len(source), p=weights)
        redraws = 0
        for _ in range(20):  # redraw items the user already has (rarely needed twice)
            clash = np.array(
                [(u, i) in seen for u, i in zip(features[users][source], items[drawn], strict=True)]
            )
            if not clash.any():
                break
            redraws += int(clash.sum())
            drawn[clash] = rng.choice(len(items), size=int(clash.sum()), p=weights)
        negatives = {name: values[source].copy() for name, values in features.items()}
        for name in item_columns:
            negatives[name] = item_values[name][drawn]
        combined = {
            name: np.concatenate([values[positive], negatives[name]])
            for name, values in features.items()
        }
        clicks = np.concatenate(
            [np.ones(int(positive.sum()), "float32"), np.zeros(len(source), "float32")]
        )
        splits[split] = (combined, {label: clicks})
        report[f"negatives.{split}.positives"] = int(positive.sum())
        report[f"negatives.{split}.sampled"] = len(source)
        report[f"negatives.{split}.redrawn_known_items"] = redraws
    return dataclasses.replace(
        data,
        name=f"{data.name}+{mode}_negatives",
        label_names=[label],
        splits=splits,
        report={**data.report, **report},
        row_indices={},
        label_kinds={label: "binary"},
        label_ranges={},
    )
