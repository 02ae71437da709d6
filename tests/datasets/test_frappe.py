from pathlib import Path

import numpy as np
import pytest

from keras_unimixer import datasets
from keras_unimixer.datasets import frappe

pytestmark = pytest.mark.backend_independent
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "frappe_x1"
needs_data = pytest.mark.skipif(
    not (SHARED / "train.csv").is_file(), reason="../shared/data/frappe_x1 is not present"
)


@needs_data
def test_bars_split_sizes_labels_and_schema():
    data = datasets.load_dataset("frappe_x1", data_dir=SHARED)
    sizes = [data.num_examples(s) for s in ("train", "validation", "test")]
    assert sizes == [202_027, 57_722, 28_860]  # SOURCE.md
    assert [f.name for f in data.features] == frappe.COLUMNS[1:]
    assert {f.group for f in data.features} == {"user", "item", "context"}
    assert data.user_feature == "user"
    _, labels = data.arrays("test")
    assert set(np.unique(labels["click"])) == {0.0, 1.0}
    assert labels["click"].mean() == pytest.approx(0.3304, abs=1e-4)


@needs_data
def test_ids_are_the_train_vocabulary_positions():
    data = datasets.load_frappe(SHARED)
    raw = frappe.read_frappe_csv(SHARED / "valid.csv")
    vocabulary = data.preprocessing["item"]["vocabulary"]
    ids = data.splits["validation"][0]["item"]
    position = {value: index + 2 for index, value in enumerate(vocabulary)}
    expected = np.array([position.get(str(value), 1) for value in raw[:, 2]])
    np.testing.assert_array_equal(ids, expected)
    assert data.feature("item").vocabulary_size == len(vocabulary) + 2
    # Ids seen only outside train are out of vocabulary (id 1) and counted.
    assert data.report["user.validation.out_of_vocabulary"] == int(
        np.sum(data.splits["validation"][0]["user"] == 1)
    )


def write(directory, name, text):
    path = directory / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "body, message",
    [
        ("1,0,957,5039,5046,5053,5055,5058,5060,5069\n", "expected 11 comma-separated fields"),
        ("1,0,957,5039,5046,5053,5055,5058,5060,5069,x\n", "column 'city' is not an integer"),
        ("2,0,957,5039,5046,5053,5055,5058,5060,5069,5149\n", "label must be 0 or 1"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, body, message):
    header = ",".join(frappe.COLUMNS) + "\n"
    good = "0,1,958,5040,5047,5054,5056,5059,5061,5070,5150\n"
    path = write(tmp_path, "train.csv", header + good + body)
    with pytest.raises(ValueError, match=f"train.csv:3: .*{message}"):
        frappe.read_frappe_csv(path)


def test_missing_files_say_where_to_get_them(tmp_path):
    with pytest.raises(datasets.DataFilesNotFound, match="BARS"):
        datasets.load_frappe(tmp_path)
