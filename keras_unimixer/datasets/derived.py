"""Features derived from raw values (an age bucket from the age, a zip prefix from the zip code,
the hour and weekday from a Unix timestamp): the transformations, recorded in a dataset's
`preprocessing` under `derived_from`, so that a client can turn the values it has into the
features a model takes (`derive_features`), exactly as the loader did.

Each record is `{"column": <raw input>, "transform": <name>, ...parameters}`:
- `bucketize` (`edges`): the number of edges <= the value, as a string ("0" below the first).
- `prefix` (`length`): the first `length` characters ("" stays missing).
- `utc_hour`, `utc_weekday`: of a Unix timestamp in seconds, in UTC (weekday: Monday = 0).
"""

from __future__ import annotations

import numpy as np

from keras_unimixer.utils.types import ArrayLike

TRANSFORMS = ("bucketize", "prefix", "utc_hour", "utc_weekday")
SECONDS_PER_DAY = 86_400
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday


def bucketize(values: ArrayLike, edges: ArrayLike) -> np.ndarray:
    values = np.asarray(values, dtype="float64")
    buckets = np.searchsorted(np.asarray(edges, dtype="float64"), values, side="right")
    return np.where(np.isfinite(values), buckets.astype(str), "").astype(object)


def prefix(values: ArrayLike, length: int) -> np.ndarray:
    return np.asarray([str(value)[:length] for value in np.asarray(values, dtype=object)], object)


def utc_hour(timestamps: ArrayLike) -> np.ndarray:
    seconds = np.asarray(timestamps, dtype="int64")
    return ((seconds // 3600) % 24).astype(str).astype(object)


def utc_weekday(timestamps: ArrayLike) -> np.ndarray:
    days = np.asarray(timestamps, dtype="int64") // SECONDS_PER_DAY
    return ((days + EPOCH_WEEKDAY) % 7).astype(str).astype(object)


def apply(record: dict, values: ArrayLike) -> np.ndarray:
    """The derived feature's raw (string) values from the raw column's `values`."""
    transform = record["transform"]
    if transform == "bucketize":
        return bucketize(values, record["edges"])
    if transform == "prefix":
        return prefix(values, int(record["length"]))
    if transform == "utc_hour":
        return utc_hour(values)
    if transform == "utc_weekday":
        return utc_weekday(values)
    raise ValueError(f"Unknown derived-feature `transform` {transform!r}; known: {TRANSFORMS}.")


def derive_features(spec: dict, raw: dict) -> dict:
    """A serving request from the raw values a client has: every derived feature computed from
    its raw column (e.g. MovieLens `age` from the age in years), the other features as given.

    Args:
        spec: the run's `preprocessing.json` (`read_serving_spec`).
        raw: dict of raw column or feature name -> array. Needs each derived feature's
            `column` (e.g. `age_years`, `zip_code`, `timestamp`) and every other feature.

    Returns:
        Dict feature name -> array, for the serving signature.
    """
    derived = {
        name: entry["derived_from"]
        for name, entry in spec["preprocessing"].items()
        if "derived_from" in entry
    }
    request = {}
    for feature in spec["features"]:
        name = feature["name"]
        if name in derived:
            column = derived[name]["column"]
            if column not in raw:
                raise ValueError(
                    f"Feature {name!r} is derived from raw column {column!r} "
                    f"({derived[name]['transform']}), which the request lacks."
                )
            request[name] = apply(derived[name], raw[column])
        elif name in raw:
            request[name] = raw[name]
        else:
            raise ValueError(f"The request has no feature {name!r}.")
    return request
