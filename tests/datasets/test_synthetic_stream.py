import numpy as np
import pytest

from keras_unimixer import datasets
from keras_unimixer.datasets import synthetic_stream

pytestmark = pytest.mark.backend_independent
SMALL = dict(train_rows=5000, eval_rows=3000, num_fields=6, vocabulary_size=1000)


@pytest.fixture(scope="module")
def small():
    return datasets.make_synthetic_stream(seed=1, **SMALL)


def test_rows_come_from_seed_split_and_block_only(small, monkeypatch):
    again = datasets.make_synthetic_stream(seed=1, **SMALL)
    for split in ("train", "validation", "test"):
        first, second = small.arrays(split)[0]["f0"], again.arrays(split)[0]["f0"]
        np.testing.assert_array_equal(first, second)
    train, test = small.arrays("train")[0], small.arrays("test")[0]
    assert not np.array_equal(train["f0"][:100], test["f0"][:100])  # disjoint streams
    other = datasets.make_synthetic_stream(seed=2, **SMALL)
    assert not np.array_equal(other.arrays("test")[0]["f0"], test["f0"])
    assert set(small.arrays("test")[1]["click"]) == {0.0, 1.0}
    assert min(int(v.min()) for v in test.values()) >= 2  # ids 0 and 1 stay reserved


def test_oracle_auc_is_a_real_ceiling(small):
    assert 0.65 < small.report["oracle_test_auc"] < 0.99


def test_epochs_are_ordered_by_seed_and_epoch(monkeypatch):
    monkeypatch.setattr(synthetic_stream, "BLOCK_ROWS", 1024)  # several blocks
    data = datasets.make_synthetic_stream(seed=1, **SMALL)

    def epoch(batches):
        return np.concatenate([batches[i][0]["f1"] for i in range(len(batches))])

    batches = data.batches("train", 500, shuffle=True, seed=4)
    first = epoch(batches)
    batches.on_epoch_end()
    second = epoch(batches)
    assert len(first) == 5000 and not np.array_equal(first, second)
    np.testing.assert_array_equal(np.sort(first), np.sort(data.arrays("train")[0]["f1"]))
    resumed = data.batches("train", 500, shuffle=True, seed=4, start_epoch=1)
    np.testing.assert_array_equal(epoch(resumed), second)


def test_options_in_the_dataset_name_are_typed_and_checked():
    data = datasets.load_dataset(
        "synthetic_stream:vocabulary_size=300,num_fields=5,zipf=1.3,eval_rows=2000",
        seed=1,
        train_rows=5000,
    )
    assert [f.vocabulary_size for f in data.features] == [302] * 5
    assert data.num_examples("train") == 5000 and data.num_examples("test") == 2000
    train, _ = data.arrays("test")
    assert max(int(values.max()) for values in train.values()) < 302
    for name, message in [
        ("synthetic_stream:vocab=3", "one of"),
        ("synthetic_stream:zipf=abc", "zipf must be float"),
        ("synthetic_stream:vocabulary_size=0", "vocabulary_size must be >= 1"),
    ]:
        with pytest.raises(ValueError, match=message):
            datasets.load_dataset(name)
