from pathlib import Path

import numpy as np
import pytest

from keras_unimixer import datasets

pytestmark = pytest.mark.backend_independent
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "ml-100k"
needs_data = pytest.mark.skipif(
    not (SHARED / "ml-100k.inter").is_file(), reason="../shared/data/ml-100k is not present"
)


@pytest.fixture(scope="module")
def movielens():
    return datasets.load_movielens(SHARED)


@needs_data
@pytest.mark.parametrize("mode", ["uniform", "popularity"])
def test_positives_are_kept_and_negatives_are_new_items_with_their_features(movielens, mode):
    sampled = datasets.sample_negatives(movielens, per_positive=3, mode=mode, seed=5)
    for split in ("train", "validation", "test"):
        features, labels = sampled.splits[split]
        positives = int((movielens.splits[split][1]["click"] == 1).sum())
        assert int(labels["click"].sum()) == positives
        assert len(labels["click"]) == 4 * positives
        assert sampled.report[f"negatives.{split}.sampled"] == 3 * positives
    features, labels = sampled.splits["train"]
    negative = labels["click"] == 0
    known = set(zip(features["user_id"][~negative], features["item_id"][~negative], strict=True))
    drawn = set(zip(features["user_id"][negative], features["item_id"][negative], strict=True))
    assert not known & drawn  # never an item the user has
    # The item's own features travel with it: one release year per item id.
    pairs = set(zip(features["item_id"], features["release_year"], strict=True))
    assert len(pairs) == len(set(features["item_id"]))
    again = datasets.sample_negatives(movielens, per_positive=3, mode=mode, seed=5)
    np.testing.assert_array_equal(
        again.splits["test"][0]["item_id"], sampled.splits["test"][0]["item_id"]
    )


@needs_data
def test_popularity_sampling_favours_popular_items(movielens):
    def share_of_top_items(mode):
        sampled = datasets.sample_negatives(movielens, per_positive=2, mode=mode, seed=1)
        features, labels = sampled.splits["train"]
        items = features["item_id"]
        popular = np.argsort(-np.bincount(items[labels["click"] == 1]))[:50]
        return np.isin(items[labels["click"] == 0], popular).mean()

    assert share_of_top_items("popularity") > 3 * share_of_top_items("uniform")


def test_bad_arguments_are_named():
    data = datasets.make_synthetic(num_examples=300)
    with pytest.raises(ValueError, match="no user feature"):
        datasets.sample_negatives(data)
    data.user_feature = "cat_0"
    with pytest.raises(ValueError, match="`mode`"):
        datasets.sample_negatives(data, mode="hard")
