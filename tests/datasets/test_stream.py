import gzip
import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from keras_unimixer import datasets
from keras_unimixer.datasets import stream

pytestmark = pytest.mark.backend_independent
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "frappe_x1"

ROWS = [  # label, user, item, price, tags
    ("1", "u1", "i1", "3.0", "a|b"),
    ("0", "u1", "i2", "", "b"),
    ("1", "u2", "i1", "5.0", ""),
    ("0", "u3", "i3", "1.0", "a|b|c|d"),
    ("1", "u2", "i9", "7.0", "c"),
    ("0", "", "i1", "nan", "a"),
]


def write_csv(path, rows, delimiter=",", compress=False):
    text = "\n".join(delimiter.join(row) for row in rows) + "\n"
    if compress:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


def describe(tmp_path, **overrides):
    values = {
        "name": "toy",
        "format": "csv",
        "header": True,
        "files": {"train": ["train.csv"], "validation": ["valid.csv"], "test": ["valid.csv"]},
        "labels": {"click": {"column": "label"}},
        "features": {
            "user": {"group": "user", "min_count": 2},
            "item": {"group": "item", "hash_buckets": 50},
            "price": {"kind": "numeric", "transform": "signed_log1p"},
            "tags": {"kind": "multi_categorical", "separator": "|", "max_length": 3},
        },
        "user_feature": "user",
    }
    values.update(overrides)
    path = tmp_path / "toy.json"
    path.write_text(json.dumps(values))
    return path


@pytest.fixture
def toy(tmp_path):
    header = ("label", "user", "item", "price", "tags")
    write_csv(tmp_path / "train.csv", [header] + ROWS)
    write_csv(tmp_path / "valid.csv", [header] + ROWS[:2] + [("1", "u7", "i1", "2.0", "z|a")])
    return datasets.read_streaming_dataset(describe(tmp_path))


def test_vocabularies_ids_and_statistics_follow_the_package_conventions(toy):
    # user: u1 and u2 appear twice (min_count 2), u3 once -> OOV; "" -> missing.
    assert toy.preprocessing["user"]["vocabulary"] == ["u1", "u2"]
    features, labels = toy.arrays("train")
    np.testing.assert_array_equal(features["user"], [2, 2, 3, 1, 3, 0])
    np.testing.assert_array_equal(labels["click"], [1, 0, 1, 0, 1, 0])
    buckets = [2 + zlib.crc32(item.encode()) % 50 for item in ("i1", "i2", "i1", "i3", "i9", "i1")]
    np.testing.assert_array_equal(features["item"], buckets)
    assert toy.feature("item").vocabulary_size == 52
    # tags: vocabulary a, b, c, d (sorted); max_length 3 truncates a|b|c|d; "" -> all zeros.
    np.testing.assert_array_equal(
        features["tags"], [[2, 3, 0], [3, 0, 0], [0, 0, 0], [2, 3, 4], [4, 0, 0], [2, 0, 0]]
    )
    assert toy.report["tags.train.truncated_rows"] == 1
    # price: signed_log1p, standardized with the train mean/std; missing and NaN -> 0.
    logged = np.log1p([3.0, 5.0, 1.0, 7.0])
    mean, std = logged.mean(), logged.std()
    expected = [(np.log1p(3.0) - mean) / std, 0.0, (np.log1p(5.0) - mean) / std]
    np.testing.assert_allclose(features["price"][:3], expected, rtol=1e-5, atol=1e-6)
    assert toy.report["price.train.imputed_missing_or_non_finite"] == 2
    valid, _ = toy.arrays("validation")
    np.testing.assert_array_equal(valid["user"], [2, 2, 1])  # u7: unseen -> OOV
    np.testing.assert_array_equal(valid["tags"][2], [1, 2, 0])  # z: unseen tag -> OOV


def write_tfrecord(path, rows, compress=False):
    """Rows as tf.train.Examples: an empty value is an absent feature, tags a bytes list."""
    import tensorflow as tf

    def feature(kind, values):
        return tf.train.Feature(
            **{kind: getattr(tf.train, kind.title().replace("_", ""))(value=values)}
        )

    options = tf.io.TFRecordOptions(compression_type="GZIP" if compress else "")
    with tf.io.TFRecordWriter(str(path), options) as writer:
        for label, user, item, price, tags in rows:
            features = {
                "label": feature("int64_list", [int(label)]),
                "item": feature("bytes_list", [item.encode()]),
            }
            if user:
                features["user"] = feature("bytes_list", [user.encode()])
            if price:
                features["price"] = feature("float_list", [float(price)])
            if tags:
                features["tags"] = feature("bytes_list", [t.encode() for t in tags.split("|")])
            example = tf.train.Example(features=tf.train.Features(feature=features))
            writer.write(example.SerializeToString())


@pytest.mark.parametrize("data_format", ["tsv_gzip", "parquet", "tfrecord", "tfrecord_gzip"])
def test_other_formats_give_the_same_ids(tmp_path, toy, data_format):
    header = ("label", "user", "item", "price", "tags")
    if data_format.startswith("tfrecord"):
        pytest.importorskip("tensorflow")
        suffix = ".tfrecord.gz" if data_format.endswith("gzip") else ".tfrecord"
        write_tfrecord(tmp_path / f"train{suffix}", ROWS, compress=suffix.endswith(".gz"))
        write_tfrecord(tmp_path / f"valid{suffix}", ROWS[:2], compress=suffix.endswith(".gz"))
        files = {
            "train": [f"train{suffix}"],
            "validation": [f"valid{suffix}"],
            "test": [f"valid{suffix}"],
        }
        other = datasets.read_streaming_dataset(describe(tmp_path, format="tfrecord", files=files))
    elif data_format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        for name, rows in (("train", ROWS), ("valid", ROWS[:2])):
            columns = list(zip(*rows, strict=True))
            table = pa.table(
                {
                    "label": [float(v) for v in columns[0]],
                    "user": [v or None for v in columns[1]],
                    "item": list(columns[2]),
                    "price": [float(v) if v else None for v in columns[3]],
                    "tags": list(columns[4]),
                }
            )
            pq.write_table(table, tmp_path / f"{name}.parquet")
        files = {
            "train": ["train.parquet"],
            "validation": ["valid.parquet"],
            "test": ["valid.parquet"],
        }
        other = datasets.read_streaming_dataset(describe(tmp_path, format="parquet", files=files))
    else:
        write_csv(tmp_path / "train.tsv.gz", ROWS, "\t", compress=True)
        write_csv(tmp_path / "valid.tsv.gz", ROWS[:2], "\t", compress=True)
        files = {
            "train": ["train.tsv.gz"],
            "validation": ["valid.tsv.gz"],
            "test": ["valid.tsv.gz"],
        }
        other = datasets.read_streaming_dataset(
            describe(tmp_path, format="tsv", header=False, columns=list(header), files=files)
        )
    expected, expected_labels = toy.arrays("train")
    features, labels = other.arrays("train")
    for name in expected:
        np.testing.assert_allclose(features[name], expected[name], rtol=1e-6, err_msg=name)
    np.testing.assert_array_equal(labels["click"], expected_labels["click"])


def test_tfrecord_problems_name_the_file_and_column(tmp_path):
    pytest.importorskip("tensorflow")
    write_tfrecord(tmp_path / "train.tfrecord", [("1", "u1", "i1", "", "a")])
    files = {split: ["train.tfrecord"] for split in ("train", "validation", "test")}
    with pytest.raises(ValueError, match="train.tfrecord: the first record has no feature 'price'"):
        datasets.read_streaming_dataset(describe(tmp_path, format="tfrecord", files=files))
    (tmp_path / "train.tfrecord").write_bytes(b"not a record file")
    with pytest.raises(ValueError, match="train.tfrecord: not a readable TFRecord"):
        datasets.read_streaming_dataset(describe(tmp_path, format="tfrecord", files=files))


def test_bad_labels_and_rows_name_the_file(tmp_path):
    header = ("label", "user", "item", "price", "tags")
    write_csv(tmp_path / "train.csv", [header] + ROWS[:3] + [("3", "u1", "i1", "1", "a")])
    write_csv(tmp_path / "valid.csv", [header] + ROWS[:2])
    with pytest.raises(ValueError, match=r"train.csv: data row 4: label 'click' must be 0 or 1"):
        datasets.read_streaming_dataset(describe(tmp_path)).arrays("train")
    write_csv(tmp_path / "train.csv", [header] + ROWS[:2] + [("1", "u1", "i1", "x", "a")])
    with pytest.raises(ValueError, match="train.csv:4: column .price."):
        datasets.read_streaming_dataset(describe(tmp_path))


def test_malformed_csv_rows_and_values_name_the_line(tmp_path):
    header = ("label", "user", "item", "price", "tags")
    write_csv(tmp_path / "valid.csv", [header] + ROWS[:2])
    extra = ("1", "u2", "i1", "5.0", "a", "EXTRA")
    write_csv(tmp_path / "train.csv", [header] + ROWS[:3] + [extra] + ROWS[3:])
    with pytest.raises(ValueError, match=r"train.csv:5: .*Expected 5 columns, got 6"):
        datasets.read_streaming_dataset(describe(tmp_path))
    write_csv(tmp_path / "train.csv", [header] + ROWS[:4] + [("1", "u2", "i1", "abc", "a")])
    with pytest.raises(ValueError, match=r"train.csv:6: column 'price': .*invalid value 'abc'"):
        datasets.read_streaming_dataset(describe(tmp_path))


def test_the_report_counts_repaired_values_once_however_many_epochs_read_them(toy):
    key = "price.train.imputed_missing_or_non_finite"
    for epoch in range(3):
        for _ in toy.batches("train", 2, shuffle=True, seed=0, start_epoch=epoch):
            pass
        assert toy.report[key] == 2  # "" and "nan"
    toy.arrays("train")
    assert toy.report[key] == 2


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"format": "xml"}, "`format` must be one of"),
        ({"files": {"train": ["missing*.csv"], "validation": [], "test": []}}, "no file matches"),
        ({"features": {"user": {"kind": "numeric", "hash_buckets": 3}}}, "no vocabulary"),
        ({"features": {"user": {"colour": 1}}}, "unknown keys \\['colour'\\]"),
        ({"files": ["train.csv"]}, "split_fractions"),
        ({"user_feature": "nobody"}, "`user_feature` 'nobody' is not a feature"),
    ],
)
def test_bad_descriptions_are_named(tmp_path, overrides, message):
    write_csv(tmp_path / "train.csv", [("label", "user", "item", "price", "tags")] + ROWS)
    write_csv(tmp_path / "valid.csv", [("label", "user", "item", "price", "tags")] + ROWS)
    with pytest.raises(ValueError, match=message):
        datasets.read_streaming_dataset(describe(tmp_path, **overrides))


def big_toy(tmp_path, rows=5000, files=3, users=50):
    rng = np.random.default_rng(0)
    header = ("label", "user", "item", "price", "tags")
    names = []
    for index in range(files):
        body = [
            (
                str(int(rng.random() < 0.3)),
                f"u{rng.integers(users)}",
                f"i{rng.integers(200)}",
                f"{rng.random():.3f}",
                "a|b",
            )
            for _ in range(rows)
        ]
        write_csv(tmp_path / f"part-{index}.csv", [header] + body)
        names.append(f"part-{index}.csv")
    return datasets.read_streaming_dataset(
        describe(tmp_path, files=[str(tmp_path / "part-*.csv")], split_fractions=[0.8, 0.1, 0.1])
    )


def test_split_fractions_and_streamed_epochs_are_reproducible(tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "SHUFFLE_BUFFER_ROWS", 1000)  # several buffers per epoch
    data = big_toy(tmp_path)
    sizes = [data.num_examples(split) for split in ("train", "validation", "test")]
    assert sum(sizes) == 15000 and abs(sizes[0] / 15000 - 0.8) < 0.02

    def epoch(batches):
        return np.concatenate([batches[i][0]["price"] for i in range(len(batches))])

    first = data.batches("train", 512, shuffle=True, seed=3)
    epoch0 = epoch(first)
    first.on_epoch_end()
    epoch1 = epoch(first)
    train, _ = data.arrays("train")
    np.testing.assert_allclose(np.sort(epoch0), np.sort(train["price"]))  # every row once
    assert not np.array_equal(epoch0, epoch1)
    np.testing.assert_array_equal(epoch(data.batches("train", 512, shuffle=True, seed=3)), epoch0)
    resumed = data.batches("train", 512, shuffle=True, seed=3, start_epoch=1)
    np.testing.assert_array_equal(epoch(resumed), epoch1)
    # Two workers' shards: disjoint, and together every training row.
    shards = [epoch(data.batches("train", 512, shard=(index, 2))) for index in range(2)]
    assert abs(len(shards[0]) - len(shards[1])) < 0.1 * len(epoch0)
    np.testing.assert_allclose(np.sort(np.concatenate(shards)), np.sort(train["price"]))


@pytest.mark.skipif(not (SHARED / "train.csv").is_file(), reason="no Frappe_x1 files")
def test_frappe_description_gives_the_in_memory_ids():
    streamed = datasets.load_dataset(
        str(datasets.DESCRIPTIONS_DIR / "frappe_x1.yaml"), data_dir=SHARED
    )
    in_memory = datasets.load_frappe(SHARED)
    for split in ("train", "validation", "test"):
        features, labels = streamed.arrays(split)
        expected, expected_labels = in_memory.arrays(split)
        for name in expected:
            np.testing.assert_array_equal(features[name], expected[name], err_msg=name)
        np.testing.assert_array_equal(labels["click"], expected_labels["click"])
    assert streamed.preprocessing == in_memory.preprocessing
