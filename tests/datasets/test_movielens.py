import datetime
from pathlib import Path

import numpy as np
import pytest

from keras_unimixer import datasets
from keras_unimixer.datasets import movielens

pytestmark = pytest.mark.backend_independent

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "ml-100k"
SHARED_GROUPLENS = SHARED.parent / "ml-100k-grouplens"
needs_data = pytest.mark.skipif(
    not (SHARED / "ml-100k.inter").is_file(), reason="../shared/data/ml-100k is not present"
)


@pytest.fixture(scope="module")
def random_split():
    return datasets.load_movielens(SHARED)


@needs_data
def test_random_split_sizes_labels_and_schema(random_split):
    data = random_split
    assert [data.num_examples(s) for s in ("train", "validation", "test")] == [80000, 10000, 10000]
    kinds = {f.name: f.kind for f in data.features}
    assert kinds == {
        "user_id": "categorical",
        "age": "categorical",
        "gender": "categorical",
        "occupation": "categorical",
        "zip_prefix": "categorical",
        "item_id": "categorical",
        "release_year": "categorical",
        "genres": "multi_categorical",
        "hour": "categorical",
        "weekday": "categorical",
    }
    assert data.feature("gender").vocabulary_size == 4  # missing, OOV, F, M
    assert data.feature("occupation").vocabulary_size == 21 + 2
    assert data.feature("weekday").vocabulary_size == 7 + 2
    assert data.feature("hour").vocabulary_size == 24 + 2
    ratings = np.concatenate([data.splits[s][1]["rating"] for s in data.splits])
    clicks = np.concatenate([data.splits[s][1]["click"] for s in data.splits])
    np.testing.assert_array_equal(clicks, (ratings >= 4).astype("float32"))
    assert clicks.sum() == 55375  # ratings of 4 and 5 in MovieLens 100K


@needs_data
def test_ids_unseen_in_training_go_to_the_oov_bucket(random_split):
    data = random_split
    train_items = set(data.splits["train"][0]["item_id"].tolist())
    test_items = data.splits["test"][0]["item_id"]
    assert datasets.OOV_ID not in train_items
    num_oov = int(np.sum(test_items == datasets.OOV_ID))
    assert num_oov == data.report["item_id.test.out_of_vocabulary"] > 0
    assert set(test_items.tolist()) - {datasets.OOV_ID} <= train_items


@needs_data
def test_genres_are_multi_hot_with_padding(random_split):
    genres = random_split.splits["train"][0]["genres"]
    assert genres.ndim == 2 and genres.shape[1] == random_split.feature("genres").max_length
    counts = np.sum(genres != 0, axis=1)
    assert counts.min() >= 1 and counts.max() == genres.shape[1]


@needs_data
def test_random_split_is_deterministic_by_seed():
    first = datasets.load_movielens(SHARED, seed=7)
    second = datasets.load_movielens(SHARED, seed=7)
    other = datasets.load_movielens(SHARED, seed=8)
    np.testing.assert_array_equal(first.row_indices["test"], second.row_indices["test"])
    assert not np.array_equal(first.row_indices["test"], other.row_indices["test"])


@needs_data
def test_time_split_puts_the_latest_interactions_in_test():
    data = datasets.load_movielens(SHARED, split="time")
    timestamps = np.loadtxt(SHARED / "ml-100k.inter", skiprows=1, usecols=3)
    times = {split: timestamps[rows] for split, rows in data.row_indices.items()}
    assert times["train"].max() <= times["validation"].min()
    assert times["validation"].max() <= times["test"].min()
    assert len(times["test"]) == 10000


def write_grouplens_copy(directory: Path):
    """The GroupLens u.* layout written from the atomic files (same interactions)."""
    genres = movielens.GROUPLENS_GENRES
    lines = (SHARED / "ml-100k.inter").read_text().splitlines()[1:]
    (directory / "u.data").write_text("\n".join(lines) + "\n")
    users = (SHARED / "ml-100k.user").read_text().splitlines()[1:]
    (directory / "u.user").write_text("\n".join(u.replace("\t", "|") for u in users) + "\n")
    rows = []
    for line in (SHARED / "ml-100k.item").read_text().splitlines()[1:]:
        item_id, title, year, classes = (line.split("\t") + [""] * 4)[:4]
        date = f"01-Jan-{year}" if year else ""
        flags = ["1" if g in classes.split() else "0" for g in genres]
        rows.append("|".join([item_id, title, date, "", "http://x"] + flags))
    (directory / "u.item").write_text("\n".join(rows) + "\n", encoding="latin-1")


@needs_data
def test_grouplens_layout_gives_the_same_dataset(tmp_path, random_split):
    write_grouplens_copy(tmp_path)
    copy = datasets.load_movielens(tmp_path)
    for split in ("train", "test"):
        ours, theirs = random_split.splits[split][0], copy.splits[split][0]
        for name in ("user_id", "item_id", "age", "zip_prefix", "release_year", "hour"):
            np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
        # Genre vocabularies may order differently; compare the sets of genre names per row.
        np.testing.assert_array_equal(
            np.sum(ours["genres"] > 1, 1), np.sum(theirs["genres"] > 1, 1)
        )


def test_missing_files_name_the_files_and_places(tmp_path):
    with pytest.raises(datasets.DataFilesNotFound) as error:
        datasets.load_movielens(tmp_path)
    message = str(error.value)
    assert "ml-100k.inter" in message and "u.data" in message and str(tmp_path) in message


def test_unparsable_row_names_file_and_line(tmp_path):
    (tmp_path / "u.data").write_text("1\t2\t5\t881250949\n1\t3\tfive\t881250950\n")
    (tmp_path / "u.user").write_text("1|24|M|technician|85711\n")
    (tmp_path / "u.item").write_text("2|X|01-Jan-1995||u" + "|0" * 19 + "\n")
    with pytest.raises(ValueError, match=r"u\.data:2: column 'rating' is not a number: 'five'"):
        datasets.load_movielens(tmp_path)


def test_short_row_names_file_and_line(tmp_path):
    (tmp_path / "u.data").write_text("1\t2\t5\t881250949\n1\t3\n")
    (tmp_path / "u.user").write_text("1|24|M|technician|85711\n")
    (tmp_path / "u.item").write_text("2|X|01-Jan-1995||u" + "|0" * 19 + "\n")
    with pytest.raises(ValueError, match=r"u\.data:2: expected 4"):
        datasets.load_movielens(tmp_path)


def test_context_features_come_from_the_utc_timestamp(tmp_path):
    timestamp = 881250949
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
    rows = "\n".join(f"{u}\t2\t{r}\t{timestamp}" for u, r in [(1, 5), (1, 2), (1, 4)] * 4)
    (tmp_path / "u.data").write_text(rows + "\n")
    (tmp_path / "u.user").write_text("1|24|M|technician|85711\n")
    (tmp_path / "u.item").write_text("2|X|01-Jan-1995||u" + "|0" * 5 + "|1" + "|0" * 13 + "\n")
    data = datasets.load_movielens(tmp_path)
    assert data.preprocessing["hour"]["vocabulary"] == [str(moment.hour)]
    assert data.preprocessing["weekday"]["vocabulary"] == [str(moment.weekday())]
    assert data.preprocessing["genres"]["vocabulary"] == ["Comedy"]
    assert data.preprocessing["age"]["vocabulary"] == ["1"]  # 18-24


@pytest.mark.skipif(not (SHARED_GROUPLENS / "u.data").is_file(), reason="no GroupLens files")
@pytest.mark.parametrize(
    "rating, timestamp, message",
    [
        ("99", "881250949", r"'rating' must be in \[1, 5\]"),
        ("-3", "881250949", "'rating'"),
        ("nan", "881250949", "'rating' is not finite"),
        ("4", "nan", "'timestamp' is not finite"),
    ],
)
def test_bad_ratings_and_timestamps_name_file_and_line(tmp_path, rating, timestamp, message):
    source = SHARED_GROUPLENS
    for name in ("u.user", "u.item"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    lines = (source / "u.data").read_text().splitlines()[:50]
    fields = lines[7].split("\t")
    lines[7] = "\t".join([fields[0], fields[1], rating, timestamp])
    (tmp_path / "u.data").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"u.data:8: column {message}"):
        datasets.load_movielens(tmp_path)
