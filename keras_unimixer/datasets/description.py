"""Dataset description files: where the data is, how it is stored, what each column means.

A description (YAML or JSON) is everything `read_streaming_dataset` needs to stream a dataset of
any size:

```yaml
name: frappe_x1
format: csv                 # csv, tsv, parquet or tfrecord (a .gz file is read through gzip)
header: true                # csv/tsv: first line names the columns (else give `columns:`)
files:                      # per split: paths or glob patterns, relative to this file
  train: [train.csv]        # (or `data_dir`); several files are read as shards
  validation: [valid.csv]
  test: [test.csv]
# files: [part-*.tsv.gz]    # ...or one set of files and `split_fractions: [0.8, 0.1, 0.1]`
labels:
  click: {column: label, kind: binary}        # kind: binary (0/1) or rating (with `range`)
features:
  user: {kind: categorical, group: user}      # vocabulary built from train, min_count 1
  item: {kind: categorical, group: item, min_count: 2}
  city: {kind: categorical, vocabulary_file: cities.txt}   # one value per line
  C1: {kind: categorical, hash_buckets: 1000000}           # open id space: no vocabulary pass
  I1: {kind: numeric, transform: signed_log1p}             # standardized with train statistics
  genres: {kind: multi_categorical, separator: "|", max_length: 6}
user_feature: user          # optional: UAUC / GAUC per user
```

A TFRecord file holds `tf.train.Example`s, one feature per column: a categorical value as a bytes
or int64 list of one value (a multi-categorical one as several values, or one string with the
separator), a numeric value or label as a float or int64 list of one; an absent feature is a
missing value. Reading TFRecord needs TensorFlow (the other formats need only pyarrow).

A feature's `column` defaults to its name. Ids follow the package's convention everywhere: 0 is
a missing value, 1 out of vocabulary (or below `min_count`), vocabulary entries from 2; a hashed
feature maps a value to `2 + crc32(value) % hash_buckets`.
"""

from __future__ import annotations

import dataclasses
import glob
import json
from pathlib import Path

from keras_unimixer.datasets.schema import (
    BINARY,
    CATEGORICAL,
    FEATURE_KINDS,
    LABEL_KINDS,
    MULTI_CATEGORICAL,
    NUMERIC,
    RATING,
    SPLITS,
)

FORMATS = ("csv", "tsv", "parquet", "tfrecord")
SELF_DESCRIBING = ("parquet", "tfrecord")  # columns named in the file itself
TRANSFORMS = (None, "signed_log1p")


@dataclasses.dataclass(frozen=True)
class FeatureDescription:
    name: str
    kind: str
    column: str
    group: str = "default"
    min_count: int = 1
    vocabulary_file: str | None = None
    hash_buckets: int | None = None
    separator: str = "|"
    max_length: int = 8
    transform: str | None = None


@dataclasses.dataclass(frozen=True)
class LabelDescription:
    name: str
    column: str
    kind: str = BINARY
    range: tuple | None = None


@dataclasses.dataclass(frozen=True)
class DatasetDescription:
    """A parsed, checked description (see the module docstring for the file format)."""

    name: str
    format: str
    files: dict  # split -> list of paths, or {"all": [...]} with split_fractions
    features: tuple
    labels: tuple
    header: bool = True
    columns: tuple | None = None
    split_fractions: tuple | None = None
    split_seed: int = 0
    user_feature: str | None = None
    source: str = ""

    @property
    def delimiter(self) -> str:
        return "\t" if self.format == "tsv" else ","

    def split_files(self, split: str) -> list[Path]:
        return list(self.files["all" if self.split_fractions else split])


def _problem(source, message) -> ValueError:
    return ValueError(f"{source}: {message}")


def _expand(patterns, base: Path, source, where) -> list[Path]:
    if isinstance(patterns, str):
        patterns = [patterns]
    paths = []
    for pattern in patterns:
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        matched = sorted(glob.glob(full))
        if not matched:
            raise _problem(source, f"{where}: no file matches {pattern!r} (looked in {base}).")
        paths += [Path(path) for path in matched]
    return paths


def _feature(name: str, entry: dict, source) -> FeatureDescription:
    entry = dict(entry or {})
    known = {f.name for f in dataclasses.fields(FeatureDescription)} - {"name"}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise _problem(source, f"feature {name!r}: unknown keys {unknown}; valid: {sorted(known)}.")
    kind = entry.pop("kind", CATEGORICAL)
    if kind not in FEATURE_KINDS:
        raise _problem(source, f"feature {name!r}: `kind` must be one of {FEATURE_KINDS}.")
    feature = FeatureDescription(name=name, kind=kind, column=entry.pop("column", name), **entry)
    if feature.transform not in TRANSFORMS:
        raise _problem(source, f"feature {name!r}: `transform` must be one of {TRANSFORMS}.")
    if feature.hash_buckets is not None and (
        not isinstance(feature.hash_buckets, int) or feature.hash_buckets < 1
    ):
        raise _problem(source, f"feature {name!r}: `hash_buckets` must be a positive integer.")
    if feature.hash_buckets and feature.vocabulary_file:
        raise _problem(source, f"feature {name!r}: give `hash_buckets` or `vocabulary_file`.")
    if not isinstance(feature.min_count, int) or feature.min_count < 1:
        raise _problem(source, f"feature {name!r}: `min_count` must be a positive integer.")
    if kind == NUMERIC and (feature.hash_buckets or feature.vocabulary_file):
        raise _problem(source, f"feature {name!r}: a numeric feature has no vocabulary.")
    if kind == MULTI_CATEGORICAL and feature.max_length < 1:
        raise _problem(source, f"feature {name!r}: `max_length` must be >= 1.")
    return feature


def _label(name: str, entry: dict, source) -> LabelDescription:
    entry = dict(entry or {})
    kind = entry.get("kind", BINARY)
    if kind not in LABEL_KINDS:
        raise _problem(source, f"label {name!r}: `kind` must be one of {LABEL_KINDS}.")
    value_range = entry.get("range")
    if kind == RATING:
        if not (isinstance(value_range, (list, tuple)) and len(value_range) == 2):
            raise _problem(source, f"label {name!r}: a rating needs `range: [low, high]`.")
        value_range = (float(value_range[0]), float(value_range[1]))
    return LabelDescription(name, entry.get("column", name), kind, value_range)


def parse_description(values: dict, base: Path, source: str = "description") -> DatasetDescription:
    """Check a description's values and expand its file patterns relative to `base`."""
    known = {
        "name",
        "format",
        "files",
        "features",
        "labels",
        "header",
        "columns",
        "split_fractions",
        "split_seed",
        "user_feature",
    }
    unknown = sorted(set(values) - known)
    if unknown:
        raise _problem(source, f"unknown keys {unknown}; valid: {sorted(known)}.")
    data_format = values.get("format", "csv")
    if data_format not in FORMATS:
        raise _problem(source, f"`format` must be one of {FORMATS}, got {data_format!r}.")
    files = values.get("files")
    fractions = values.get("split_fractions")
    if isinstance(files, dict):
        missing = [split for split in SPLITS if split not in files]
        if missing or fractions:
            raise _problem(
                source,
                "`files` per split needs train, validation and test (and no split_fractions)"
                + (f"; missing: {missing}" if missing else "."),
            )
        expanded = {
            split: _expand(files[split], base, source, f"files.{split}") for split in SPLITS
        }
    elif files:
        if not (isinstance(fractions, (list, tuple)) and len(fractions) == 3):
            raise _problem(
                source, "one set of `files` needs `split_fractions: [train, val, test]`."
            )
        if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
            raise _problem(source, "`split_fractions` must be >= 0 and sum to 1.")
        expanded = {"all": _expand(files, base, source, "files")}
    else:
        raise _problem(source, "`files` is missing.")
    features = tuple(
        _feature(name, entry, source) for name, entry in (values.get("features") or {}).items()
    )
    labels = tuple(
        _label(name, entry, source) for name, entry in (values.get("labels") or {}).items()
    )
    if not features or not labels:
        raise _problem(source, "a description needs at least one feature and one label.")
    header = bool(values.get("header", True))
    columns = values.get("columns")
    if data_format not in SELF_DESCRIBING and not header and not columns:
        raise _problem(source, "a file without a header needs `columns:` (their names, in order).")
    user_feature = values.get("user_feature")
    if user_feature is not None and user_feature not in {f.name for f in features}:
        raise _problem(source, f"`user_feature` {user_feature!r} is not a feature.")
    return DatasetDescription(
        name=str(values.get("name", "dataset")),
        format=data_format,
        files=expanded,
        features=features,
        labels=labels,
        header=header,
        columns=tuple(columns) if columns else None,
        split_fractions=tuple(float(f) for f in fractions) if fractions else None,
        split_seed=int(values.get("split_seed", 0)),
        user_feature=user_feature,
        source=source,
    )


def read_description(path: str | Path, data_dir: str | Path | None = None) -> DatasetDescription:
    """Parse a YAML or JSON description file; file patterns are relative to `data_dir` (default:
    the description's own folder)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Dataset description {path} does not exist.")
    text = path.read_text()
    if path.suffix == ".json":
        values = json.loads(text)
    else:
        import yaml

        values = yaml.safe_load(text)
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a description is a mapping of keys to values.")
    base = Path(data_dir) if data_dir else path.parent
    return parse_description(values, base, str(path))
