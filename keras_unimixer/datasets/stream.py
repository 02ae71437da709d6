"""Streaming datasets from description files: sharded CSV/TSV/Parquet, bounded memory, no TF.

`read_streaming_dataset(path)` reads a description (`keras_unimixer.datasets.description`), makes
one pass over the training files to build the vocabularies (`min_count`), numeric statistics and row
counts, and returns a `StreamingDataset`: the same interface as the in-memory `RecDataset`, with
training batches read from the files as `fit` consumes them (`batches()`, a `keras.utils.
PyDataset`, so the JAX backend needs no TensorFlow). Reading and encoding are pyarrow's and
NumPy's vectorized kernels (CSV parsing, `index_in` lookups, group-by counts); only the distinct
values of a batch of a hashed feature pass through Python. Memory is bounded by the reader's
block, the shuffle buffer and the in-memory share of the vocabulary counts (`ValueCounts`, which
spills to disk), whatever the number of rows; validation and test are held in memory when asked
for (`arrays`), as exact metrics need all their predictions.
"""

from __future__ import annotations

import logging
import math
import re
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np

from keras_unimixer.datasets.description import DatasetDescription, read_description
from keras_unimixer.datasets.schema import (
    BINARY,
    MISSING_ID,
    MULTI_CATEGORICAL,
    NUM_RESERVED_IDS,
    NUMERIC,
    OOV_ID,
    SPLITS,
    FeatureSpec,
    log_report,
)
from keras_unimixer.datasets.value_counts import DEFAULT_MEMORY_VALUES, ValueCounts, mix64
from keras_unimixer.utils.types import ArrayLike

if TYPE_CHECKING:
    import pyarrow as pa
    import tensorflow as tf

logger = logging.getLogger("keras_unimixer.datasets")

# pyarrow reads ahead a fixed number of blocks: 16 MiB blocks held ~600 MiB, 4 MiB ~150 MiB
# (and parsed faster: 0.8M vs 0.5M rows/s on 2 cores, generated Criteo TSV).
READ_BLOCK_BYTES = 4 << 20
SHUFFLE_BUFFER_ROWS = 1 << 18
_SPLIT_SALT = 0x5EED5
_SHARD_SALT = 0x5A4D


def row_uniforms(seed: int, file_index: int, first_row: int, count: int) -> np.ndarray:
    """A uniform [0, 1) number per row, from (seed, file, row) only: reproducible splits."""
    rows = np.arange(first_row, first_row + count, dtype=np.uint64)
    mixed = (seed * 1_000_003 + file_index + _SPLIT_SALT) & 0xFFFFFFFFFFFFFFFF
    key = mix64(np.array([mixed], dtype=np.uint64))[0]
    return (mix64(rows ^ key) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def hash_ids(strings: list, buckets: int) -> np.ndarray:
    """`2 + crc32(value) % buckets` for each string (stable across processes and machines)."""
    hashed = np.fromiter(
        (zlib.crc32(value.encode("utf-8")) for value in strings),
        dtype=np.uint64,
        count=len(strings),
    )
    return (hashed % np.uint64(buckets)).astype(np.int64) + NUM_RESERVED_IDS


def signed_log1p(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))


class TableReader:
    """Batches of one split's rows, as pyarrow tables with the described columns.

    Yields `(path, first_row, table)`; `first_row` is the 0-based data row in its file.
    """

    def __init__(self, description: DatasetDescription):
        import pyarrow as pa

        self.description = description
        types = {}
        for feature in description.features:
            types[feature.column] = pa.float64() if feature.kind == NUMERIC else pa.string()
        for label in description.labels:
            types[label.column] = pa.float64()
        self.column_types = types

    def _csv_batches(self, path: Path):
        import pyarrow as pa
        from pyarrow import csv

        description = self.description
        read_options = csv.ReadOptions(
            block_size=READ_BLOCK_BYTES,
            column_names=list(description.columns) if description.columns else None,
            skip_rows=1 if (description.header and description.columns) else 0,
        )
        parse_options = csv.ParseOptions(delimiter=description.delimiter)
        convert_options = csv.ConvertOptions(
            column_types=self.column_types,
            include_columns=list(self.column_types),
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        )
        try:
            reader = csv.open_csv(
                str(path),
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
            for batch in reader:
                yield pa.Table.from_batches([batch])
        except (pa.ArrowInvalid, pa.ArrowKeyError) as error:
            message = self._name_column(path, str(error))
            line = _bad_csv_line(path, self.description.delimiter, str(error))
            where = f"{path}:{line}" if line else str(path)
            raise ValueError(f"{where}: {message}") from None

    def _name_column(self, path: Path, message: str) -> str:
        """pyarrow names a CSV column by its number: add its name."""
        match = re.search(r"column #(\d+)", message)
        if not match:
            return message
        names = self.description.columns
        if names is None:
            from pyarrow import csv

            options = csv.ParseOptions(delimiter=self.description.delimiter)
            names = csv.open_csv(str(path), parse_options=options).schema.names
        index = int(match.group(1))
        return f"column {names[index]!r}: {message}" if index < len(names) else message

    def _parquet_batches(self, path: Path):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(str(path))
            for batch in parquet.iter_batches(batch_size=1 << 16, columns=list(self.column_types)):
                table = pa.Table.from_batches([batch])
                yield table.cast(pa.schema([(n, self.column_types[n]) for n in table.column_names]))
        except (pa.ArrowInvalid, pa.ArrowKeyError) as error:
            raise ValueError(f"{path}: {error}") from None

    def _tfrecord_batches(self, path: Path):
        try:
            import tensorflow as tf
        except ImportError:
            raise ValueError(
                f"{path}: `format: tfrecord` needs TensorFlow, which is not installed; convert the "
                "shards to parquet (pyarrow only) to read them without it."
            ) from None
        compression = "GZIP" if str(path).endswith(".gz") else ""
        records = tf.data.TFRecordDataset(str(path), compression_type=compression)
        spec = None
        try:
            for serialized in records.batch(1 << 16):
                spec = spec or self._tfrecord_spec(path, serialized[0].numpy())
                parsed = tf.io.parse_example(serialized, spec)
                yield self._tfrecord_table(path, parsed, int(serialized.shape[0]))
        except tf.errors.OpError as error:
            raise ValueError(
                f"{path}: not a readable TFRecord file of tf.train.Example: "
                f"{error.message.splitlines()[0]}"
            ) from None

    def _tfrecord_spec(self, path: Path, first_record: bytes) -> dict:
        """Each column's stored type, from the first record (TFRecord files carry no schema)."""
        import tensorflow as tf

        stored = tf.train.Example.FromString(first_record).features.feature
        dtypes = {"bytes_list": tf.string, "int64_list": tf.int64, "float_list": tf.float32}
        spec = {}
        for column in self.column_types:
            if column not in stored:
                raise ValueError(f"{path}: the first record has no feature {column!r}.")
            spec[column] = tf.io.VarLenFeature(dtypes[stored[column].WhichOneof("kind")])
        return spec

    def _tfrecord_table(self, path: Path, parsed: dict, count: int):
        import pyarrow as pa
        import pyarrow.compute as pc

        separators = {f.column: f.separator for f in self.description.features}
        columns = {}
        for column, values in parsed.items():
            rows = values.indices.numpy()[:, 0]
            flat = values.values.numpy()
            offsets = np.searchsorted(rows, np.arange(count + 1)).astype(np.int32)
            lengths = np.diff(offsets)
            if self.column_types[column] == pa.string():
                if flat.dtype == object:
                    strings = pa.array(flat, type=pa.binary()).cast(pa.string())
                else:
                    strings = pa.array(flat).cast(pa.string())
                lists = pa.ListArray.from_arrays(pa.array(offsets), strings)
                joined = pc.binary_join(lists, separators.get(column, "|"))
                columns[column] = pc.if_else(pa.array(lengths > 0), joined, None)
                continue
            if (lengths > 1).any():
                row = int(np.argmax(lengths > 1))
                raise ValueError(
                    f"{path}: record {row}: numeric column {column!r} holds "
                    f"{lengths[row]} values; expected one."
                )
            dense = np.full(count, np.nan)
            dense[rows] = flat
            columns[column] = pa.array(dense, mask=lengths == 0)
        return pa.table(columns)

    def tables(
        self,
        split: str,
        files: Sequence[str | Path] | None = None,
        shard: tuple[int, int] | None = None,
    ) -> Iterator[tuple[Path, int, pa.Table]]:
        """`(path, first_row, table)` of `split`, over `files` (default: the split's, in order);
        `shard=(index, count)` keeps the rows of one of `count` disjoint shards."""
        description = self.description
        all_files = description.split_files(split)
        for path in files if files is not None else all_files:
            file_index = all_files.index(path)
            read = {"parquet": self._parquet_batches, "tfrecord": self._tfrecord_batches}
            batches = read.get(description.format, self._csv_batches)(path)
            first_row = 0
            for table in batches:
                count = table.num_rows
                keep = None
                if description.split_fractions:
                    keep = _split_mask(description, split, file_index, first_row, count)
                if shard is not None:
                    uniforms = row_uniforms(_SHARD_SALT + shard[1], file_index, first_row, count)
                    mine = np.floor(uniforms * shard[1]).astype(np.int64) == shard[0]
                    keep = mine if keep is None else keep & mine
                rows = np.arange(first_row, first_row + count)
                if keep is not None:
                    table, rows = table.filter(keep), rows[keep]
                if table.num_rows:
                    yield path, rows, table
                first_row += count


def _split_mask(description, split: str, file_index, first_row, count) -> np.ndarray:
    uniforms = row_uniforms(description.split_seed, file_index, first_row, count)
    bounds = np.cumsum((0.0,) + description.split_fractions)
    position = SPLITS.index(split)
    return (uniforms >= bounds[position]) & (uniforms < bounds[position + 1])


class _Vocabulary:
    """Value -> id for one categorical feature: a sorted vocabulary (ids 2..) or a hash."""

    def __init__(self, feature, values: ArrayLike | None = None):
        import pyarrow as pa

        self.feature = feature
        self.values = None if values is None else list(values)
        self.value_set = None if values is None else pa.array(self.values, pa.string())

    @property
    def size(self) -> int:
        if self.feature.hash_buckets:
            return self.feature.hash_buckets + NUM_RESERVED_IDS
        return len(self.values) + NUM_RESERVED_IDS

    def ids(self, strings: ArrayLike) -> tuple[np.ndarray, int]:
        """Ids of a pyarrow string array (null or "" = missing), and how many went to OOV."""
        import pyarrow as pa
        import pyarrow.compute as pc

        missing = pc.fill_null(pc.or_(pc.is_null(strings), pc.equal(strings, "")), True)
        missing = missing.to_numpy(zero_copy_only=False)
        if self.feature.hash_buckets:
            encoded = pc.dictionary_encode(pc.fill_null(strings, ""))
            if isinstance(encoded, pa.ChunkedArray):
                encoded = encoded.combine_chunks()
            table = hash_ids(encoded.dictionary.to_pylist(), self.feature.hash_buckets)
            ids = table[encoded.indices.to_numpy(zero_copy_only=False)]
            ids[missing] = MISSING_ID
            return ids.astype(np.int32), 0
        positions = pc.index_in(strings, value_set=self.value_set)
        ids = pc.fill_null(pc.add(positions, NUM_RESERVED_IDS), OOV_ID)
        ids = ids.to_numpy(zero_copy_only=False).astype(np.int32)
        ids[missing] = MISSING_ID
        return ids, int(np.sum((ids == OOV_ID) & ~missing))


def _chunk(array):
    import pyarrow as pa

    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _split_lists(strings: ArrayLike, separator: str):
    import pyarrow.compute as pc

    lists = _chunk(pc.split_pattern(pc.fill_null(strings, ""), pattern=separator))
    return lists, _chunk(lists.flatten())


def _fit(description: DatasetDescription, reader: TableReader):
    """One pass over the training rows: value counts (bounded in memory, see `ValueCounts`),
    numeric sums, row count."""
    counted = [f for f in description.features if _needs_counts(f)]
    max_values = max(1 << 10, DEFAULT_MEMORY_VALUES // max(len(counted), 1))
    counts = {f.name: ValueCounts(max_values) for f in counted}
    sums = {f.name: np.zeros(3) for f in description.features if f.kind == NUMERIC}
    rows = 0
    for _, _, table in reader.tables("train"):
        rows += table.num_rows
        for feature in description.features:
            column = _chunk(table[feature.column])
            if feature.name in counts:
                values = (
                    _split_lists(column, feature.separator)[1]
                    if (feature.kind == MULTI_CATEGORICAL)
                    else column
                )
                counts[feature.name].add(values)
            elif feature.kind == NUMERIC:
                values = _numeric(column, feature)
                finite = values[np.isfinite(values)]
                sums[feature.name] += (finite.size, finite.sum(), np.square(finite).sum())
    return counts, sums, rows


def _needs_counts(feature) -> bool:
    return feature.kind != NUMERIC and not feature.hash_buckets and not feature.vocabulary_file


def _numeric(column, feature) -> np.ndarray:
    values = column.to_numpy(zero_copy_only=False).astype(np.float64)
    return signed_log1p(values) if feature.transform == "signed_log1p" else values


class StreamingDataset:
    """A dataset streamed from its files, with `RecDataset`'s interface (see
    `read_streaming_dataset`)."""

    def __init__(self, description: DatasetDescription):
        self.description = description
        self.name = description.name
        self.reader = TableReader(description)
        self.label_names = [label.name for label in description.labels]
        self.label_kinds = {label.name: label.kind for label in description.labels}
        self.label_ranges = {
            label.name: label.range for label in description.labels if label.range is not None
        }
        self.user_feature = description.user_feature
        self.report: dict = {}
        self._counted_chunks: set = set()  # (split, file, first row): each counted on first read
        self._arrays: dict = {}
        self._row_counts: dict = {}
        self._build_vocabularies()

    def _build_vocabularies(self):
        counts, sums, rows = _fit(self.description, self.reader)
        self._row_counts["train"] = rows
        if not rows:
            raise ValueError(f"{self.description.source}: the training files have no rows.")
        self.vocabularies, self.statistics, self.preprocessing, self.features = {}, {}, {}, []
        for feature in self.description.features:
            if feature.kind == NUMERIC:
                count, total, squares = sums[feature.name]
                mean = total / count if count else 0.0
                std = math.sqrt(max(squares / count - mean**2, 0.0)) if count else 1.0
                std = std if std > 0 else 1.0
                self.statistics[feature.name] = (mean, std)
                self.preprocessing[feature.name] = {
                    "mean": mean,
                    "std": std,
                    "transform": feature.transform,
                }
                self.features.append(FeatureSpec(feature.name, NUMERIC, 0, feature.group))
                continue
            if feature.hash_buckets:
                vocabulary = _Vocabulary(feature)
                self.preprocessing[feature.name] = {"hash_buckets": feature.hash_buckets}
            else:
                if feature.vocabulary_file:
                    values = _read_vocabulary_file(self.description, feature)
                else:
                    values, below = counts[feature.name].kept(feature.min_count)
                    counts[feature.name].close()
                    self.report[f"{feature.name}.values_below_min_count"] = below
                vocabulary = _Vocabulary(feature, values)
                self.preprocessing[feature.name] = {"vocabulary": list(values)}
                if feature.kind == MULTI_CATEGORICAL:
                    self.preprocessing[feature.name]["max_length"] = feature.max_length
            self.vocabularies[feature.name] = vocabulary
            self.features.append(
                FeatureSpec(
                    feature.name,
                    feature.kind,
                    vocabulary.size,
                    feature.group,
                    max_length=feature.max_length if feature.kind == MULTI_CATEGORICAL else 1,
                )
            )

    # -- encoding ------------------------------------------------------------------------------

    def encode(
        self,
        table: pa.Table,
        split: str,
        path: str | Path | None = None,
        rows: np.ndarray | None = None,
    ) -> tuple[dict, dict]:
        """`(features, labels)` numpy arrays of a pyarrow table of raw rows.

        The report counts a chunk's repaired values on its first read only (`path` and `rows`
        name the chunk): epochs re-read the same rows."""
        chunk = (split, str(path), int(rows[0]) if rows is not None and len(rows) else None)
        first_read = path is None or chunk not in self._counted_chunks
        self._counted_chunks.add(chunk)
        # A local counter, not a flag on self: batches may be encoded by several threads at once.
        count = self._count if first_read else _ignore_count
        features = {}
        for feature in self.description.features:
            column = _chunk(table[feature.column])
            if feature.kind == NUMERIC:
                values = _numeric(column, feature)
                bad = ~np.isfinite(values)
                count(f"{feature.name}.{split}.imputed_missing_or_non_finite", bad.sum())
                mean, std = self.statistics[feature.name]
                features[feature.name] = ((np.where(bad, mean, values) - mean) / std).astype(
                    "float32"
                )
            elif feature.kind == MULTI_CATEGORICAL:
                features[feature.name] = self._encode_multi(column, feature, split, count)
            else:
                ids, oov = self.vocabularies[feature.name].ids(column)
                count(f"{feature.name}.{split}.out_of_vocabulary", oov)
                count(f"{feature.name}.{split}.missing", np.sum(ids == MISSING_ID))
                features[feature.name] = ids
        labels = {}
        for label in self.description.labels:
            values = _chunk(table[label.column]).to_numpy(zero_copy_only=False).astype("float32")
            _check_label_values(label, values, path, rows)
            labels[label.name] = values
        return features, labels

    def _encode_multi(self, column, feature, split: str, count) -> np.ndarray:
        import pyarrow.compute as pc

        lists, flat = _split_lists(column, feature.separator)
        token_ids, oov = self.vocabularies[feature.name].ids(flat)
        count(f"{feature.name}.{split}.out_of_vocabulary", oov)
        parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
        offsets = lists.offsets.to_numpy(zero_copy_only=False)
        positions = np.arange(len(parents)) - offsets[parents]
        keep = positions < feature.max_length
        count(f"{feature.name}.{split}.truncated_rows", np.unique(parents[~keep]).size)
        ids = np.zeros((len(lists), feature.max_length), dtype=np.int32)
        ids[parents[keep], positions[keep]] = token_ids[keep]
        return ids

    def _count(self, key: str, value) -> None:
        self.report[key] = self.report.get(key, 0) + int(value)

    # -- RecDataset's interface ----------------------------------------------------------------

    def feature(self, name: str) -> FeatureSpec:
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(f"No feature {name!r}; features: {[f.name for f in self.features]}.")

    def label_kind(self, name: str) -> str:
        return self.label_kinds.get(name, BINARY)

    def check_labels(self, names: Sequence[str]) -> None:
        """Labels are checked as they are read (every split, naming file and line)."""
        unknown = [name for name in names if name not in self.label_names]
        if unknown:
            raise ValueError(f"Unknown labels {unknown}; labels: {self.label_names}.")

    def num_examples(self, split: str) -> int:
        if split not in self._row_counts:
            self._row_counts[split] = sum(t.num_rows for _, _, t in self.reader.tables(split))
        return self._row_counts[split]

    def steps_per_epoch(self, split: str, batch_size: int) -> int:
        return math.ceil(self.num_examples(split) / batch_size)

    def arrays(self, split: str, labels: Sequence[str] | None = None) -> tuple[dict, dict]:
        """All rows of `split` as numpy arrays (held in memory: meant for validation and test)."""
        if split not in SPLITS:
            raise ValueError(f"`split` must be one of {list(SPLITS)}, got {split!r}.")
        if split not in self._arrays:
            parts = [self.encode(t, split, p, r) for p, r, t in self.reader.tables(split)]
            features = {
                name: np.concatenate([part[0][name] for part in parts]) for name in parts[0][0]
            }
            label_arrays = {
                name: np.concatenate([part[1][name] for part in parts]) for name in parts[0][1]
            }
            self._arrays[split] = (features, label_arrays)
            self._row_counts[split] = len(next(iter(label_arrays.values())))
            log_report(self.name, {k: v for k, v in self.report.items() if f".{split}." in k})
        features, label_arrays = self._arrays[split]
        names = list(labels or self.label_names)
        return features, {name: label_arrays[name] for name in names}

    @property
    def splits(self) -> dict:
        return {split: self.arrays(split) for split in SPLITS}

    def batches(
        self,
        split: str,
        batch_size: int,
        labels: Sequence[str] | None = None,
        shuffle: bool = False,
        seed: int = 0,
        start_epoch: int = 0,
        shard: tuple[int, int] | None = None,
    ) -> keras.utils.PyDataset:
        """Streamed `(features, labels)` batches of `split` for `fit` (see `StreamBatches`)."""
        return StreamBatches(
            self,
            split,
            batch_size,
            list(labels or self.label_names),
            shuffle,
            seed,
            start_epoch,
            shard,
        )

    def tf_dataset(
        self,
        split: str,
        batch_size: int,
        labels: Sequence[str] | None = None,
        shuffle: bool = False,
        seed: int = 0,
        epochs: int | None = None,
        start_epoch: int = 0,
    ) -> tf.data.Dataset:
        """A `tf.data` pipeline over the same streamed batches (epochs `start_epoch..epochs-1`)."""
        import tensorflow as tf

        first = self.batches(split, batch_size, labels, shuffle, seed, start_epoch)
        signature = tf.nest.map_structure(
            lambda a: tf.TensorSpec((None,) + a.shape[1:], tf.as_dtype(a.dtype)), first[0]
        )

        def epoch_batches(epoch: int):
            stream = self.batches(split, batch_size, labels, shuffle, seed, int(epoch))
            return tf.data.Dataset.from_generator(
                lambda: (stream[i] for i in range(len(stream))), output_signature=signature
            )

        if not shuffle:
            return epoch_batches(0).prefetch(2)
        if epochs is None:
            raise ValueError("`epochs` is required with shuffle=True (each epoch has its order).")
        combined = epoch_batches(start_epoch)
        for epoch in range(start_epoch + 1, epochs):
            combined = combined.concatenate(epoch_batches(epoch))
        return combined.prefetch(2)


def _check_label_values(label: str, values: ArrayLike, path: str | Path, rows) -> None:
    if label.kind == BINARY:
        bad = ~np.isin(values, (0.0, 1.0))
        rule = "0 or 1 (a binary label)"
    else:
        low, high = label.range
        bad = ~(np.isfinite(values) & (values >= low) & (values <= high))
        rule = f"finite within [{low:g}, {high:g}] (a rating)"
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        where = f"{path}: data row {int(rows[index]) + 1}" if path is not None else "a row"
        raise ValueError(f"{where}: label {label.name!r} must be {rule}, got {values[index]!r}.")


def _read_vocabulary_file(description, feature) -> list:
    path = Path(feature.vocabulary_file)
    if not path.is_absolute():
        path = Path(description.source).parent / path
    if not path.is_file():
        raise FileNotFoundError(
            f"{description.source}: feature {feature.name!r}: vocabulary file {path} not found."
        )
    values = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return list(dict.fromkeys(values))


class StreamBatches(keras.utils.PyDataset):
    """Batches of a streamed split, read from the files as `fit` asks for them.

    With `shuffle`, epoch `e` visits the files in an order drawn from `(seed, e)` and shuffles
    rows in a buffer of `SHUFFLE_BUFFER_ROWS` with the same seed: the order depends only on
    `(seed, e)`, so a resumed run sees the batches of an uninterrupted one. `shard=(index,
    count)` keeps one of `count` disjoint shards of the rows (one per worker).
    """

    def __init__(
        self,
        dataset: StreamingDataset,
        split: str,
        batch_size: int,
        labels: Sequence[str] | None,
        shuffle: bool,
        seed: int,
        epoch: int,
        shard: tuple[int, int] | None,
    ) -> None:
        super().__init__()
        self.dataset = dataset
        self.split = split
        self.batch_size = batch_size
        self.labels = labels
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = epoch
        self.shard = shard
        self._stream = None
        self._next_index = 0
        rows = dataset.num_examples(split) if shard is None else self._count_shard_rows()
        self.num_rows = rows

    def _count_shard_rows(self) -> int:
        reader = self.dataset.reader
        return sum(t.num_rows for _, _, t in reader.tables(self.split, shard=self.shard))

    def __len__(self):
        return math.ceil(self.num_rows / self.batch_size)

    def _epoch_stream(self):
        files = list(self.dataset.description.split_files(self.split))
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.shuffle:
            files = [files[i] for i in rng.permutation(len(files))]
        buffer_features, buffer_labels, buffered = [], [], 0
        pending = None

        def emit(features: dict[str, np.ndarray], labels: dict[str, np.ndarray]):
            size = len(next(iter(labels.values())))
            order = rng.permutation(size) if self.shuffle else np.arange(size)
            for start in range(0, size, self.batch_size):
                rows = order[start : start + self.batch_size]
                yield (
                    {name: values[rows] for name, values in features.items()},
                    {name: values[rows] for name, values in labels.items()},
                )

        for path, rows, table in self.dataset.reader.tables(self.split, files, self.shard):
            features, labels = self.dataset.encode(table, self.split, path, rows)
            buffer_features.append(features)
            buffer_labels.append(labels)
            buffered += table.num_rows
            if buffered >= SHUFFLE_BUFFER_ROWS:
                pending = _merge(buffer_features, buffer_labels, pending)
                buffer_features, buffer_labels, buffered = [], [], 0
                full = (len(next(iter(pending[1].values()))) // self.batch_size) * self.batch_size
                head, pending = _cut(pending, full)
                yield from emit(*head)
        pending = _merge(buffer_features, buffer_labels, pending)
        if pending is not None and len(next(iter(pending[1].values()))):
            yield from emit(*pending)

    def __getitem__(self, index):
        if self._stream is None or index != self._next_index:
            self._stream = self._epoch_stream()
            for _ in range(index):
                next(self._stream)
        features, labels = next(self._stream)
        self._next_index = index + 1
        targets = {name: labels[name][:, None] for name in self.labels}
        if len(targets) == 1:
            targets = next(iter(targets.values()))
        return features, targets

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._stream = None
        self._next_index = 0

    def restart(self, epoch: int = 0) -> None:
        """Start over at `epoch` (a new `fit` on the same batches, e.g. a tuner trial)."""
        self.epoch = epoch
        self._stream = None
        self._next_index = 0


def _merge(features_list, labels_list, pending):
    parts_features = ([pending[0]] if pending else []) + features_list
    parts_labels = ([pending[1]] if pending else []) + labels_list
    if not parts_labels:
        return pending
    features = {
        name: np.concatenate([p[name] for p in parts_features]) for name in parts_features[0]
    }
    labels = {name: np.concatenate([p[name] for p in parts_labels]) for name in parts_labels[0]}
    return features, labels


def _cut(pending, size):
    features, labels = pending
    head = ({k: v[:size] for k, v in features.items()}, {k: v[:size] for k, v in labels.items()})
    tail = ({k: v[size:] for k, v in features.items()}, {k: v[size:] for k, v in labels.items()})
    return head, tail


def read_streaming_dataset(
    path: str | Path, data_dir: str | Path | None = None
) -> StreamingDataset:
    """A `StreamingDataset` from a description file (YAML or JSON; see
    `keras_unimixer.datasets.description`).

    Example:
    >>> data = keras_unimixer.datasets.read_streaming_dataset(
    ...     keras_unimixer.datasets.DESCRIPTIONS_DIR / "frappe_x1.yaml",
    ...     data_dir="../shared/data/frappe_x1")  # doctest: +SKIP
    >>> model.fit(data.batches("train", 4096, shuffle=True), epochs=3)  # doctest: +SKIP
    """
    return StreamingDataset(read_description(path, data_dir))


def _ignore_count(key: str, value) -> None:
    """The report's counter for a chunk read before: its values were counted then."""


def _bad_csv_line(path: str | Path, delimiter: str, message: str) -> int | None:
    """The 1-based line of `path` that pyarrow's CSV `message` is about (it names none): the first
    line with another field count ("Expected N columns, got M"), or the first holding the value
    that failed to convert ("column #i ... invalid value 'x'"). Read only after an error."""
    import csv

    columns = re.search(r"Expected (\d+) columns, got (\d+)", message)
    conversion = re.search(r"column #(\d+).*invalid value '(.*)'", message)
    if not columns and not conversion:
        return None
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        for number, fields in enumerate(csv.reader(handle, delimiter=delimiter), start=1):
            if columns and fields and len(fields) == int(columns.group(2)):
                return number
            index = int(conversion.group(1)) if conversion else -1
            if conversion and index < len(fields) and fields[index] == conversion.group(2):
                return number
    return None
