"""Lists for listwise ranking: each user's rows cut into padded lists of `list_size`."""

from __future__ import annotations

import numpy as np

from keras_unimixer.datasets.protocol import Dataset

PAD_LABEL = -1.0  # keras-rs ranking losses and metrics ignore items labelled -1


def make_lists(
    data: Dataset, split: str, list_size: int = 20, label: str = "rating", seed: int = 0
) -> tuple[dict, np.ndarray]:
    """`(features, labels)` of `split` grouped by `data.user_feature` into lists.

    Each user's rows are shuffled (by `seed`) and cut into lists of `list_size`; the last list of
    a user is padded with zero features and label -1 (ignored by keras-rs losses and metrics).
    Users with fewer than two rows are left out (nothing to rank).

    Returns:
        features: dict name -> `(num_lists, list_size, ...)`; labels: `(num_lists, list_size)`.
    """
    if data.user_feature is None:
        raise ValueError(f"{data.name} names no user feature to group lists by.")
    if not isinstance(list_size, int) or list_size < 2:
        raise ValueError(f"`list_size` must be an integer >= 2, got {list_size!r}.")
    features, labels = data.arrays(split, [label])
    users = features[data.user_feature]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(users))
    order = order[np.argsort(users[order], kind="stable")]  # grouped by user, shuffled within
    starts = np.flatnonzero(np.r_[True, users[order][1:] != users[order][:-1]])
    ends = np.r_[starts[1:], len(order)]
    rows = []
    for start, end in zip(starts, ends, strict=True):
        if end - start < 2:
            continue
        for offset in range(start, end, list_size):
            chunk = order[offset : min(offset + list_size, end)]
            rows.append(np.pad(chunk, (0, list_size - len(chunk)), constant_values=-1))
    rows = np.asarray(rows)
    valid = rows >= 0
    taken = np.where(valid, rows, 0)
    lists = {}
    for name, values in features.items():
        gathered = values[taken]
        mask = valid.reshape(valid.shape + (1,) * (gathered.ndim - 2))
        lists[name] = np.where(mask, gathered, 0).astype(values.dtype)
    list_labels = np.where(valid, labels[label][taken], PAD_LABEL).astype("float32")
    return lists, list_labels
