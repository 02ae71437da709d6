import numpy as np
import pytest

from keras_unimixer import datasets

pytestmark = pytest.mark.backend_independent


@pytest.fixture(scope="module")
def small():
    return datasets.make_synthetic(num_examples=3000, seed=3)


def test_deterministic_by_seed(small):
    again = datasets.make_synthetic(num_examples=3000, seed=3)
    other = datasets.make_synthetic(num_examples=3000, seed=4)
    np.testing.assert_array_equal(
        small.splits["train"][0]["cat_0"], again.splits["train"][0]["cat_0"]
    )
    np.testing.assert_array_equal(
        small.splits["test"][1]["click"], again.splits["test"][1]["click"]
    )
    assert not np.array_equal(small.splits["train"][1]["click"], other.splits["train"][1]["click"])


def test_schema_and_label_rate(small):
    kinds = [f.kind for f in small.features]
    assert kinds.count("categorical") == 16 and kinds.count("numeric") == 4
    assert {f.group for f in small.features} == {"user", "item", "context"}
    rate = small.splits["train"][1]["click"].mean()
    assert 0.2 < rate < 0.4


def test_shuffled_epochs_are_reproducible_and_resumable(small):
    full = small.tf_dataset("train", 256, shuffle=True, seed=1, epochs=3)
    batches = [b[1].numpy() for b in full]
    steps = small.steps_per_epoch("train", 256)
    assert len(batches) == 3 * steps
    resumed = [
        b[1].numpy()
        for b in small.tf_dataset("train", 256, shuffle=True, seed=1, epochs=3, start_epoch=2)
    ]
    assert len(resumed) == steps
    for ours, theirs in zip(batches[2 * steps :], resumed, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    first_epoch = np.concatenate(batches[:steps])
    second_epoch = np.concatenate(batches[steps : 2 * steps])
    assert not np.array_equal(first_epoch, second_epoch)  # a new order each epoch
    np.testing.assert_array_equal(np.sort(first_epoch, axis=0), np.sort(second_epoch, axis=0))


def test_labels_are_column_vectors_and_multi_label_is_a_dict(small):
    features, labels = next(iter(small.tf_dataset("test", 8)))
    assert tuple(labels.shape) == (8, 1)
    assert set(features) == {f.name for f in small.features}


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match="`dataset`"):
        datasets.load_dataset("imagenet")
    with pytest.raises(ValueError, match="`split`"):
        datasets.load_dataset("criteo", split="time")


def test_oracle_auc_is_reported_and_well_above_chance(small):
    assert 0.7 < small.report["oracle_test_auc"] < 1.0


def test_batches_order_each_epoch_by_seed_and_epoch(small):
    def epoch_rows(batches):
        return np.concatenate([batches[i][0]["cat_0"] for i in range(len(batches))])

    batches = small.batches("train", 256, shuffle=True, seed=1)
    first = epoch_rows(batches)
    batches.on_epoch_end()
    second = epoch_rows(batches)
    features, _ = small.arrays("train")
    np.testing.assert_array_equal(np.sort(first), np.sort(features["cat_0"]))  # every row once
    assert not np.array_equal(first, second)
    resumed = small.batches("train", 256, shuffle=True, seed=1, start_epoch=1)
    np.testing.assert_array_equal(epoch_rows(resumed), second)
    batches.restart()  # a new fit (e.g. the next tuner trial) starts at epoch 0 again
    np.testing.assert_array_equal(epoch_rows(batches), first)
    in_order = small.batches("test", 8)
    np.testing.assert_array_equal(in_order[0][0]["cat_0"], small.arrays("test")[0]["cat_0"][:8])
    assert in_order[0][1].shape == (8, 1)
