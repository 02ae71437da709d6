"""Frappe_x1: the BARS / FuxiCTR benchmark split of the Frappe app-usage log (10 fields).

The files are `train.csv`, `valid.csv` and `test.csv` with the header
`label,user,item,daytime,weekday,isweekend,homework,cost,weather,country,city`, every field an
integer id. The split is fixed (no `seed`); vocabularies are fit on `train.csv` as everywhere in
this package (0 missing, 1 out of vocabulary), so an id seen only in validation or test is OOV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_unimixer.datasets.files import find_files
from keras_unimixer.datasets.schema import (
    CATEGORICAL,
    MISSING_ID,
    NUM_RESERVED_IDS,
    OOV_ID,
    FeatureSpec,
    RecDataset,
    log_report,
)

COLUMNS = [
    "label",
    "user",
    "item",
    "daytime",
    "weekday",
    "isweekend",
    "homework",
    "cost",
    "weather",
    "country",
    "city",
]
GROUPS = {"user": "user", "item": "item"}  # every other field is "context"
SPLIT_FILES = {"train": "train.csv", "validation": "valid.csv", "test": "test.csv"}
LAYOUTS = {"bars": list(SPLIT_FILES.values())}
HOW_TO_GET = (
    "Frappe_x1 is the BARS split (https://github.com/reczoo/BARS, datasets/Frappe); its license "
    "forbids redistribution, so get the files from BARS or rebuild them from the official Frappe "
    "archive."
)


def read_frappe_csv(path: Path) -> np.ndarray:
    """The `(rows, 11)` int64 array of one Frappe_x1 file; bad rows raise naming file and line."""
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
        if header != COLUMNS:
            raise ValueError(f"{path}:1: header must be {','.join(COLUMNS)}, got {header}.")
        lines = handle.read().splitlines()
    lines = [line for line in lines if line]
    fields = np.char.split(np.array(lines, dtype=str), ",")
    counts = np.fromiter((len(row) for row in fields), dtype=np.int64, count=len(lines))
    bad = np.flatnonzero(counts != len(COLUMNS))
    if bad.size:
        line = int(bad[0]) + 2
        raise ValueError(
            f"{path}:{line}: expected {len(COLUMNS)} comma-separated fields, got {counts[bad[0]]}."
        )
    try:
        values = np.array(fields.tolist(), dtype=np.int64)
    except ValueError:
        for index, row in enumerate(fields):
            for name, text in zip(COLUMNS, row, strict=True):
                if not text.strip().lstrip("-").isdigit():
                    raise ValueError(
                        f"{path}:{index + 2}: column {name!r} is not an integer id: {text!r}"
                    ) from None
        raise
    labels = values[:, 0]
    wrong = np.flatnonzero((labels != 0) & (labels != 1))
    if wrong.size:
        raise ValueError(
            f"{path}:{int(wrong[0]) + 2}: label must be 0 or 1, got {labels[wrong[0]]}."
        )
    return values


def _encode_ids(name: str, columns: dict, report: dict, preprocessing: dict) -> FeatureSpec:
    """Vocabulary from train (values sorted as strings, as every vocabulary of the package, ->
    ids 2..), then a vectorized lookup for every split."""
    vocabulary = np.unique(columns["train"].astype(str))
    for split, raw in columns.items():
        raw = raw.astype(str)
        position = np.searchsorted(vocabulary, raw)
        found = (position < len(vocabulary)) & (
            vocabulary[np.minimum(position, len(vocabulary) - 1)] == raw
        )
        columns[split] = np.where(found, position + NUM_RESERVED_IDS, OOV_ID).astype("int32")
        report[f"{name}.{split}.out_of_vocabulary"] = int(np.sum(~found))
        report[f"{name}.{split}.missing"] = int(np.sum(columns[split] == MISSING_ID))
    preprocessing[name] = {"vocabulary": [str(value) for value in vocabulary]}
    return FeatureSpec(
        name, CATEGORICAL, len(vocabulary) + NUM_RESERVED_IDS, GROUPS.get(name, "context")
    )


def load_frappe(data_dir: str | Path | None = None) -> RecDataset:
    """Frappe_x1 with its fixed train / validation / test split (BARS protocol).

    Args:
        data_dir: folder with `train.csv`, `valid.csv`, `test.csv` (default: `--data-dir`,
            `$KERAS_UNIMIXER_DATA/frappe_x1`, or `../shared/data/frappe_x1`).

    Returns:
        A `RecDataset` named `"frappe_x1"` with label `click` and 10 categorical features (groups
        `user`, `item`, `context`).
    """
    _, directory = find_files("frappe_x1", LAYOUTS, data_dir, HOW_TO_GET)
    raw = {split: read_frappe_csv(directory / name) for split, name in SPLIT_FILES.items()}
    report: dict = {}
    preprocessing: dict = {}
    specs = []
    encoded = {split: {} for split in raw}
    for column, name in enumerate(COLUMNS[1:], start=1):
        columns = {split: values[:, column] for split, values in raw.items()}
        specs.append(_encode_ids(name, columns, report, preprocessing))
        for split in raw:
            encoded[split][name] = columns[split]
    splits = {
        split: (encoded[split], {"click": values[:, 0].astype("float32")})
        for split, values in raw.items()
    }
    log_report("frappe_x1", report)
    row_indices = {split: np.arange(len(values)) for split, values in raw.items()}
    return RecDataset(
        "frappe_x1", specs, ["click"], splits, report, preprocessing, row_indices, "user"
    )
