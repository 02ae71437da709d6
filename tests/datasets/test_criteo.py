from pathlib import Path

import numpy as np
import pytest

from keras_unimixer import datasets
from keras_unimixer.datasets import criteo
from keras_unimixer.datasets.encoding import signed_log1p

pytestmark = pytest.mark.backend_independent

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "criteo-sample"
needs_data = pytest.mark.skipif(
    not (SAMPLE / "criteo_sample.txt").is_file(), reason="criteo sample is not present"
)


@needs_data
def test_sample_loads_with_schema_and_reports():
    data = datasets.load_criteo(SAMPLE, min_count=2)
    assert sum(data.num_examples(s) for s in data.splits) == 200
    names = [f.name for f in data.features]
    assert names == criteo.NUMERIC_NAMES + criteo.CATEGORICAL_NAMES
    assert data.feature("I1").kind == "numeric" and data.feature("C1").kind == "categorical"
    labels = np.concatenate([data.splits[s][1]["click"] for s in data.splits])
    assert set(np.unique(labels)) <= {0.0, 1.0} and 0.1 < labels.mean() < 0.4
    imputed = sum(v for k, v in data.report.items() if k.startswith("I1."))
    assert imputed > 0  # I1 has empty fields in the sample
    assert data.report["C1.values_below_min_count"] > 0
    train = data.splits["train"][0]
    for name in criteo.NUMERIC_NAMES:
        assert np.all(np.isfinite(train[name]))
        assert abs(float(train[name].mean())) < 1e-5  # standardized on train


@needs_data
def test_headerless_tab_file_gives_the_same_arrays(tmp_path):
    lines = (SAMPLE / "criteo_sample.txt").read_text().splitlines()[1:]
    challenge = tmp_path / "train.txt"
    challenge.write_text("\n".join(line.replace(",", "\t") for line in lines) + "\n")
    comma = datasets.load_criteo(SAMPLE, min_count=2)
    tab = datasets.load_criteo(tmp_path, min_count=2)
    for split in ("train", "test"):
        for name in ("I2", "I5", "C3", "C20"):
            np.testing.assert_array_equal(comma.splits[split][0][name], tab.splits[split][0][name])


def test_log_transform_keeps_sign():
    np.testing.assert_allclose(
        signed_log1p(np.array([-1.0, 0.0, 9.0])), [-np.log(2), 0.0, np.log(10)]
    )


def write(tmp_path, rows, header=True):
    path = tmp_path / "data.csv"
    lines = [",".join(criteo.COLUMNS)] if header else []
    path.write_text("\n".join(lines + rows) + "\n")
    return path


def row(label="0", numeric="1", category="aa"):
    return ",".join([label] + [numeric] * 13 + [category] * 26)


def test_categories_below_min_count_and_unseen_go_to_oov(tmp_path):
    rows = [row(category="common")] * 30 + [row(category="rare")] + [row(category="")] * 9
    data = datasets.load_criteo(path=write(tmp_path, rows), min_count=2, seed=0)
    every = np.concatenate([data.splits[s][0]["C1"] for s in data.splits])
    assert set(np.unique(every)) <= {datasets.MISSING_ID, datasets.OOV_ID, 2}
    assert np.sum(every == datasets.MISSING_ID) == 9
    assert data.feature("C1").vocabulary_size == 3  # missing, OOV, "common"


def test_nan_and_inf_are_imputed_and_counted(tmp_path):
    rows = [row(numeric="2")] * 20 + [row(numeric="nan"), row(numeric="inf")] * 10
    data = datasets.load_criteo(path=write(tmp_path, rows), seed=0)
    total = sum(v for k, v in data.report.items() if k.startswith("I3."))
    assert total == 20
    for split in data.splits:
        assert np.all(np.isfinite(data.splits[split][0]["I3"]))


@pytest.mark.parametrize(
    "bad_row,pattern",
    [
        (row(label="2"), r"data\.csv:3: label must be 0 or 1, got '2'"),
        (row(numeric="x"), r"data\.csv:3: column I1 is not a number: 'x'"),
        ("0,1,2", r"data\.csv:3: expected 40 fields"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, bad_row, pattern):
    with pytest.raises(ValueError, match=pattern):
        datasets.load_criteo(path=write(tmp_path, [row(), bad_row]))


def test_header_with_a_missing_column(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text(",".join(criteo.COLUMNS[:-1]) + "\n" + row()[:-3] + "\n")
    with pytest.raises(ValueError, match=r"missing columns: \['C26'\]"):
        datasets.load_criteo(path=path)


def test_a_file_too_large_for_memory_is_refused_naming_the_streaming_description(
    tmp_path, monkeypatch
):
    row = "\t".join(["1"] + ["3"] * 13 + ["ab12"] * 26) + "\n"
    path = tmp_path / "train.txt"
    path.write_text(row * 400)
    monkeypatch.setattr(criteo, "MAX_IN_MEMORY_BYTES", path.stat().st_size - 1)
    monkeypatch.setattr(criteo, "MAX_IN_MEMORY_ROWS", 100)
    with pytest.raises(ValueError, match=r"more than the in-memory Criteo loader.*criteo\.yaml"):
        datasets.load_criteo(path=path)
    data = datasets.load_criteo(path=path, max_rows=100, min_count=1)  # its first rows: fine
    assert sum(data.num_examples(split) for split in data.splits) == 100
    streamed = datasets.read_streaming_dataset(
        datasets.DESCRIPTIONS_DIR / "criteo.yaml", data_dir=tmp_path
    )
    assert streamed.num_examples("train") + streamed.num_examples("test") > 300
