"""Exact value counts of one categorical feature in bounded memory (the vocabulary pass).

A vocabulary built with `min_count` needs a count for every distinct value seen, and the number
of distinct values grows with the rows (open id spaces). `ValueCounts` keeps the counts as pyarrow
tables (no Python object per value): per-batch counts are merged with a vectorized group-by, and
once more than `max_values` distinct values are held, the merged counts are spilled to disk in
`partitions` files by a hash of the value. `kept(min_count)` then merges one partition at a time,
so memory holds at most `max_values` counts while counting and one partition (about
distinct / partitions counts) while filtering. Counts are exact: no sketch, no sampling.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from keras_unimixer.utils.types import ArrayLike

# Distinct values held in memory, over all counted features, before counts spill to disk.
DEFAULT_MEMORY_VALUES = 1 << 22
DEFAULT_PARTITIONS = 32


def mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: a vectorized, well-mixed 64-bit hash of uint64 values."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def string_hashes(strings: ArrayLike) -> np.ndarray:
    """A 64-bit hash of each string of a pyarrow string array without nulls (vectorized; the
    same value gives the same hash in every batch and process)."""
    import pyarrow as pa

    strings = strings.cast(pa.large_string())
    if strings.null_count:
        raise ValueError("string_hashes needs a string array without nulls.")
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int64)
    offsets = offsets[strings.offset : strings.offset + len(strings) + 1]
    data = np.frombuffer(strings.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    starts, lengths = offsets[:-1] - offsets[0], np.diff(offsets)
    position = np.arange(data.size, dtype=np.uint64) - np.repeat(starts, lengths).astype(np.uint64)
    mixed = mix64(data.astype(np.uint64) | (position << np.uint64(8)))
    hashes = np.zeros(len(strings), dtype=np.uint64)
    nonempty = lengths > 0
    if data.size:
        with np.errstate(over="ignore"):
            hashes[nonempty] = np.add.reduceat(mixed, starts[nonempty])
    return mix64(hashes ^ lengths.astype(np.uint64))


def _merge(tables):
    """One table of (value, count) with each value once: the counts of `tables` summed."""
    import pyarrow as pa

    table = pa.concat_tables(tables)
    merged = table.group_by("value").aggregate([("count", "sum")])
    return merged.rename_columns(["value", "count"])


class ValueCounts:
    """Exact counts of one feature's values, bounded in memory (spilled to `directory`).

    Args:
        max_values: distinct values held in memory before the counts spill to disk.
        partitions: hash partitions of the spilled counts (read back one at a time).
        directory: where to spill; a temporary directory by default (removed by `close`).
    """

    def __init__(
        self,
        max_values: int = DEFAULT_MEMORY_VALUES,
        partitions: int = DEFAULT_PARTITIONS,
        directory: str | Path | None = None,
    ) -> None:
        if max_values < 1:
            raise ValueError(f"`max_values` must be >= 1, got {max_values}.")
        if partitions < 1:
            raise ValueError(f"`partitions` must be >= 1, got {partitions}.")
        self.max_values, self.partitions = int(max_values), int(partitions)
        self._directory = Path(directory) if directory else None
        self._owns_directory = directory is None
        self._pending, self._pending_rows = [], 0
        self.spills = 0

    def add(self, values: ArrayLike) -> None:
        """Counts a pyarrow string array (nulls and "" are not values)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        values = pc.drop_null(values).cast(pa.large_string())
        values = pc.filter(values, pc.not_equal(values, ""))
        if not len(values):
            return
        tallies = pc.value_counts(values)
        self._pending.append(
            pa.table({"value": tallies.field("values"), "count": tallies.field("counts")})
        )
        self._pending_rows += len(tallies)
        if self._pending_rows > self.max_values:
            merged = _merge(self._pending)
            self._pending, self._pending_rows = [merged], merged.num_rows
            if merged.num_rows > self.max_values // 2:
                self._spill()

    def _spill(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = _merge(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending, self._pending_rows = [], 0
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="keras_unimixer_counts_"))
        self._directory.mkdir(parents=True, exist_ok=True)
        partition = string_hashes(table["value"].combine_chunks()) % np.uint64(self.partitions)
        order = np.argsort(partition, kind="stable")
        bounds = np.searchsorted(partition[order], np.arange(self.partitions + 1))
        table = table.take(pa.array(order))
        for index in range(self.partitions):
            part = table.slice(bounds[index], bounds[index + 1] - bounds[index])
            if part.num_rows:
                pq.write_table(part, self._directory / f"p{index:04d}-{self.spills:06d}.parquet")
        self.spills += 1

    def kept(self, min_count: int) -> tuple[list, int]:
        """(Values counted at least `min_count` times, sorted; how many other values were seen)."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        if not self.spills:
            parts = [_merge(self._pending)] if self._pending else []
        else:
            if self._pending:
                self._spill()
            parts = (
                _merge([pq.read_table(path) for path in files]) for files in self._partition_files()
            )
        kept, below = [], 0
        for part in parts:
            frequent = pc.greater_equal(part["count"], min_count)
            kept.extend(part["value"].filter(frequent).to_pylist())
            below += part.num_rows - (pc.sum(pc.cast(frequent, "int64")).as_py() or 0)
        return sorted(kept), below

    def _partition_files(self):
        for index in range(self.partitions):
            files = sorted(self._directory.glob(f"p{index:04d}-*.parquet"))
            if files:
                yield files

    def close(self) -> None:
        """Removes the spilled counts (the temporary directory, when this object made it)."""
        if self._directory is not None and self._owns_directory:
            shutil.rmtree(self._directory, ignore_errors=True)
        self._pending, self._pending_rows = [], 0
