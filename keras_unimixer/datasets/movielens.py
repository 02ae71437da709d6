"""MovieLens 100K as a CTR task: click = rating >= 4, with user, item and context features."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from keras_unimixer.datasets import derived
from keras_unimixer.datasets.encoding import RawColumn, encode_dataset
from keras_unimixer.datasets.files import find_files
from keras_unimixer.datasets.schema import (
    BINARY,
    CATEGORICAL,
    MULTI_CATEGORICAL,
    RATING,
    RecDataset,
    random_split,
    time_split,
)

LAYOUTS = {
    "atomic": ["ml-100k.inter", "ml-100k.user", "ml-100k.item"],
    "grouplens": ["u.data", "u.user", "u.item"],
}
HOW_TO_GET = (
    "Get them from GroupLens (ml-100k.zip: u.data, u.user, u.item) or from the recbole==1.2.1 "
    "wheel on PyPI (recbole/dataset_example/ml-100k/)."
)
# Genre flags of u.item, in the order of GroupLens' u.genre.
GROUPLENS_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]
AGE_BUCKETS = [18, 25, 35, 45, 50, 56]  # the MovieLens-1M age groups
RATING_RANGE = (1.0, 5.0)


def _rows(path: Path, separator: str, num_fields: int, header: bool, encoding="utf-8"):
    """Split lines, checking the field count; errors name the file and the line."""
    with open(path, encoding=encoding) as handle:
        for line_number, line in enumerate(handle, start=1):
            if header and line_number == 1:
                continue
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.split(separator)
            if len(fields) < num_fields:
                raise ValueError(
                    f"{path}:{line_number}: expected {num_fields} {separator!r}-separated fields, "
                    f"got {len(fields)}: {line[:120]!r}"
                )
            yield line_number, fields


def _number(path: str | Path, line_number, name, text, kind=float, valid=None):
    """`kind(text)`, finite and within `valid` (inclusive); errors name the file and the line."""
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(
            f"{path}:{line_number}: column {name!r} is not a number: {text!r}"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"{path}:{line_number}: column {name!r} is not finite: {text!r}")
    if valid is not None and not valid[0] <= value <= valid[1]:
        raise ValueError(
            f"{path}:{line_number}: column {name!r} must be in [{valid[0]:g}, {valid[1]:g}], "
            f"got {text!r}"
        )
    return value


def _read_interactions(path: Path, header: bool) -> list:
    """`(user_id, item_id, rating, timestamp)` rows of a tab-separated ratings file."""
    return [
        (
            f[0],
            f[1],
            _number(path, line, "rating", f[2], valid=RATING_RANGE),
            _number(path, line, "timestamp", f[3]),
        )
        for line, f in _rows(path, "\t", 4, header=header)
    ]


def _read_atomic(directory: Path):
    inter_path, user_path, item_path = (directory / n for n in LAYOUTS["atomic"])
    interactions = _read_interactions(inter_path, header=True)
    users = {f[0]: (f[1], f[2], f[3], f[4]) for _, f in _rows(user_path, "\t", 5, header=True)}
    items = {}
    for _, f in _rows(item_path, "\t", 4, header=True):
        items[f[0]] = (f[2] or None, f[3].split() if f[3] else [])
    return interactions, users, items


def _read_grouplens(directory: Path):
    data_path, user_path, item_path = (directory / n for n in LAYOUTS["grouplens"])
    interactions = _read_interactions(data_path, header=False)
    users = {f[0]: (f[1], f[2], f[3], f[4]) for _, f in _rows(user_path, "|", 5, header=False)}
    items = {}
    for _, f in _rows(item_path, "|", 24, header=False, encoding="latin-1"):
        release = f[2].strip()
        year = release[-4:] if len(release) >= 4 else None
        flags = f[5:24]
        genres = [g for g, flag in zip(GROUPLENS_GENRES, flags, strict=True) if flag.strip() == "1"]
        items[f[0]] = (year, genres)
    return interactions, users, items


# How the derived features come from the raw values a client has (recorded in preprocessing.json,
# applied by `keras_unimixer.datasets.derive_features`, and by this loader itself).
DERIVED = {
    "age": {"column": "age_years", "transform": "bucketize", "edges": AGE_BUCKETS},
    "zip_prefix": {"column": "zip_code", "transform": "prefix", "length": 3},
    "hour": {"column": "timestamp", "transform": "utc_hour"},
    "weekday": {"column": "timestamp", "transform": "utc_weekday"},
}


def _age_years(age_text) -> float:
    try:
        return float(int(age_text))
    except (TypeError, ValueError):
        return float("nan")  # bucketize leaves it missing


def load_movielens(
    data_dir: str | Path | None = None, split: str = "random", seed: int = 42
) -> RecDataset:
    """MovieLens 100K (either the GroupLens `u.*` files or the atomic `ml-100k.*` files).

    Labels: `click` (rating >= 4) and `rating` (1-5). Features: user_id, age (bucketized), gender,
    occupation, zip_prefix (first 3 characters) [user]; item_id, release_year, genres
    (multi-valued) [item]; hour, weekday of the rating's timestamp (UTC) [context].

    Args:
        data_dir: directory with the files (default: `$KERAS_UNIMIXER_DATA/ml-100k`, then
            `../shared/data/ml-100k`).
        split: `"random"` (80/10/10 with `seed`) or `"time"` (last 10% test, previous 10%
            validation).
        seed: seed of the random split.
    """
    if split not in ("random", "time"):
        raise ValueError(f"`split` must be 'random' or 'time', got {split!r}.")
    layout, directory = find_files("ml-100k", LAYOUTS, data_dir, HOW_TO_GET)
    reader = _read_atomic if layout == "atomic" else _read_grouplens
    interactions, users, items = reader(directory)

    report = {"unknown_user_rows": 0, "unknown_item_rows": 0}
    columns = {name: [] for name in ("user_id", "age", "gender", "occupation", "zip_prefix")}
    columns.update({name: [] for name in ("item_id", "release_year", "genres", "hour", "weekday")})
    ratings, timestamps = [], []
    for user_id, item_id, rating, timestamp in interactions:
        user = users.get(user_id)
        item = items.get(item_id)
        report["unknown_user_rows"] += user is None
        report["unknown_item_rows"] += item is None
        age, gender, occupation, zip_code = user or (None, None, None, None)
        year, genres = item or (None, [])
        row = {
            "user_id": user_id,
            "age": _age_years(age),
            "gender": gender,
            "occupation": occupation,
            "zip_prefix": zip_code or "",
            "item_id": item_id,
            "release_year": year,
            "genres": genres,
            "hour": int(timestamp),
            "weekday": int(timestamp),
        }
        for name, value in row.items():
            columns[name].append(value)
        ratings.append(rating)
        timestamps.append(timestamp)

    for name, record in DERIVED.items():  # raw values -> the derived features
        values = derived.apply(record, columns[name])
        columns[name] = [value or None for value in values]  # "" is missing
    ratings = np.asarray(ratings, dtype="float32")
    indices = (
        random_split(len(ratings), seed)
        if split == "random"
        else time_split(np.asarray(timestamps))
    )
    groups = {
        "user_id": "user",
        "age": "user",
        "gender": "user",
        "occupation": "user",
        "zip_prefix": "user",
        "item_id": "item",
        "release_year": "item",
        "genres": "item",
        "hour": "context",
        "weekday": "context",
    }
    raw = [
        RawColumn(
            name, MULTI_CATEGORICAL if name == "genres" else CATEGORICAL, values, groups[name]
        )
        for name, values in columns.items()
    ]
    labels = {"click": (ratings >= 4).astype("float32"), "rating": ratings}
    if not len(ratings):
        raise ValueError(f"{directory}: the ratings file has no rows.")
    dataset = encode_dataset("movielens", raw, labels, indices, report)
    for name, record in DERIVED.items():
        dataset.preprocessing[name]["derived_from"] = record
    dataset.user_feature = "user_id"
    dataset.label_kinds = {"click": BINARY, "rating": RATING}
    dataset.label_ranges = {"rating": RATING_RANGE}
    return dataset
