"""Criteo display-advertising format: label, 13 numeric (I1..I13) and 26 categorical (C1..C26)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_unimixer.datasets.encoding import RawColumn, encode_dataset
from keras_unimixer.datasets.files import find_files
from keras_unimixer.datasets.schema import CATEGORICAL, NUMERIC, RecDataset, random_split

NUMERIC_NAMES = [f"I{i}" for i in range(1, 14)]
CATEGORICAL_NAMES = [f"C{i}" for i in range(1, 27)]
COLUMNS = ["label"] + NUMERIC_NAMES + CATEGORICAL_NAMES
LAYOUTS = {"challenge": ["train.txt"], "sample": ["criteo_sample.txt"]}
HOW_TO_GET = (
    "The challenge's train.txt (tab-separated, no header) comes from Criteo's Display "
    "Advertising Challenge release; a comma-separated file with a header row works too "
    "(pass --data-dir or path)."
)


# The in-memory loader holds every row in Python lists (measured: 1M generated rows, 3.7 GB peak
# RSS, 98 s); beyond this a file goes through the streaming description (`criteo.yaml`).
MAX_IN_MEMORY_BYTES = 128 * 2**20
MAX_IN_MEMORY_ROWS = 500_000


def read_criteo_rows(path: Path, max_rows: int | None = None) -> tuple:
    """Rows of a Criteo file as `(labels, numeric (N, 13) float with NaN, categorical list)`.

    Reads the challenge form (tab-separated, no header) and the comma-separated form with a
    `label,I1,...,C26` header. Empty fields are missing values. A row with the wrong number of
    fields, a non-numeric count or a label other than 0/1 raises `ValueError` naming file and line.
    """
    labels, numeric, categorical = [], [], []
    with open(path, encoding="utf-8") as handle:
        first = handle.readline()
        separator = "\t" if "\t" in first else ","
        has_header = first.split(separator)[0].strip().lower() == "label"
        if has_header:
            header = [name.strip() for name in first.rstrip("\r\n").split(separator)]
            if header != COLUMNS:
                missing = [c for c in COLUMNS if c not in header]
                raise ValueError(
                    f"{path}:1: header must be {','.join(COLUMNS[:3])},...,C26; "
                    f"missing columns: {missing or 'none (wrong order)'}."
                )
        lines = handle if has_header else _chain(first, handle)
        for line_number, line in enumerate(lines, start=2 if has_header else 1):
            if max_rows is not None and len(labels) >= max_rows:
                break
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.split(separator)
            if len(fields) != len(COLUMNS):
                raise ValueError(
                    f"{path}:{line_number}: expected {len(COLUMNS)} fields (label, I1..I13, "
                    f"C1..C26), got {len(fields)}."
                )
            if fields[0] not in ("0", "1"):
                raise ValueError(f"{path}:{line_number}: label must be 0 or 1, got {fields[0]!r}.")
            labels.append(float(fields[0]))
            row = []
            for name, text in zip(NUMERIC_NAMES, fields[1:14], strict=True):
                try:
                    row.append(float(text) if text else np.nan)
                except ValueError:
                    raise ValueError(
                        f"{path}:{line_number}: column {name} is not a number: {text!r}."
                    ) from None
            numeric.append(row)
            categorical.append(fields[14:])
    return np.asarray(labels, "float32"), np.asarray(numeric, "float64"), categorical


def _check_fits_in_memory(path: Path, max_rows: int | None) -> None:
    size = path.stat().st_size
    if size <= MAX_IN_MEMORY_BYTES or (max_rows is not None and max_rows <= MAX_IN_MEMORY_ROWS):
        return
    descriptions = Path(__file__).resolve().parent / "descriptions"
    raise ValueError(
        f"{path} is {size / 2**20:,.0f} MiB, more than the in-memory Criteo loader takes "
        f"({MAX_IN_MEMORY_BYTES / 2**20:.0f} MiB; it holds every row in memory: 1M rows took "
        "3.7 GB). Stream it through its description instead: --dataset "
        f"{descriptions / 'criteo.yaml'} --data-dir {path.parent} (Python: "
        "datasets.read_streaming_dataset(path, data_dir=...)), or read its first rows with "
        f"--max-examples <= {MAX_IN_MEMORY_ROWS:,}."
    )


def _chain(first, rest):
    yield first
    yield from rest


def load_criteo(
    data_dir: str | Path | None = None,
    path: str | Path | None = None,
    min_count: int = 10,
    seed: int = 42,
    max_rows: int | None = None,
) -> RecDataset:
    """A Criteo-format file as a `RecDataset` (random 80/10/10 split with `seed`).

    Numerics: `sign(x) log(1 + |x|)`, then standardized; missing (and NaN/Inf) values are imputed
    with the training mean and counted. Categoricals seen fewer than `min_count` times in the
    training split go to the out-of-vocabulary id (1); empty values to the missing id (0).

    Args:
        data_dir: directory holding `train.txt` or `criteo_sample.txt`.
        path: a specific file instead (either form).
        min_count: frequency threshold of the categorical vocabularies.
        seed: seed of the split.
        max_rows: read at most this many rows.
    """
    if path is None:
        layout, directory = find_files("criteo-sample", LAYOUTS, data_dir, HOW_TO_GET)
        path = directory / LAYOUTS[layout][0]
    _check_fits_in_memory(Path(path), max_rows)
    labels, numeric, categorical = read_criteo_rows(Path(path), max_rows)
    columns = [
        RawColumn(name, NUMERIC, numeric[:, i], "dense", transform="signed_log1p")
        for i, name in enumerate(NUMERIC_NAMES)
    ]
    columns += [
        RawColumn(name, CATEGORICAL, [row[i] for row in categorical], "sparse", min_count=min_count)
        for i, name in enumerate(CATEGORICAL_NAMES)
    ]
    indices = random_split(len(labels), seed)
    return encode_dataset("criteo", columns, {"click": labels}, indices)
