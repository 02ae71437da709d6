import numpy as np
import pytest
from sklearn.metrics import log_loss as sklearn_log_loss
from sklearn.metrics import roc_auc_score

from keras_unimixer import evaluation

pytestmark = pytest.mark.backend_independent


def tied_scores(size, seed=0):
    rng = np.random.default_rng(seed)
    labels = (rng.random(size) < 0.3).astype("float32")
    scores = np.round(rng.standard_normal(size) + labels, 1)  # rounding makes ties
    return labels, scores


def test_roc_auc_matches_a_brute_force_pair_count():
    labels, scores = tied_scores(300)
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert evaluation.roc_auc(labels, scores) == pytest.approx(pairs / (len(pos) * len(neg)))


@pytest.mark.parametrize("size", [10, 1000, 50_000])
def test_auc_and_log_loss_equal_scikit_learn(size):
    labels, scores = tied_scores(size, seed=size)
    probabilities = 1 / (1 + np.exp(-scores))
    assert evaluation.roc_auc(labels, scores) == pytest.approx(
        roc_auc_score(labels, scores), abs=1e-12
    )
    assert evaluation.log_loss(labels, probabilities) == pytest.approx(
        sklearn_log_loss(labels, probabilities), abs=1e-12
    )


def test_user_auc_by_hand():
    # user a: pairs (0.9 > 0.1) -> 1.0; user b: (0.2 < 0.8) -> 0.0; user c: one label, skipped;
    # user d: positive 0.5 ties one negative 0.5 and beats 0.4 -> 0.75.
    labels = [0, 1, 0, 1, 1, 1, 0, 0]
    scores = [0.1, 0.9, 0.8, 0.2, 0.5, 0.5, 0.5, 0.4]
    users = ["a", "a", "b", "b", "c", "d", "d", "d"]
    result = evaluation.user_auc(labels, scores, users)
    assert result["uauc"] == pytest.approx((1.0 + 0.0 + 0.75) / 3)
    assert result["gauc"] == pytest.approx((2 * 1.0 + 2 * 0.0 + 3 * 0.75) / 7)
    assert (result["users_evaluated"], result["users_skipped"]) == (3, 1)


def test_user_auc_equals_per_user_scikit_learn():
    rng = np.random.default_rng(1)
    users = rng.integers(0, 40, 2000)
    labels, scores = tied_scores(2000, seed=2)
    aucs, weights = [], []
    for user in np.unique(users):
        mask = users == user
        if len(set(labels[mask])) == 2:
            aucs.append(roc_auc_score(labels[mask], scores[mask]))
            weights.append(mask.sum())
    result = evaluation.user_auc(labels, scores, users)
    assert result["uauc"] == pytest.approx(np.mean(aucs), abs=1e-12)
    assert result["gauc"] == pytest.approx(np.average(aucs, weights=weights), abs=1e-12)


def test_binary_metrics_of_logits():
    labels, scores = tied_scores(500)
    metrics = evaluation.binary_metrics(labels, scores, users=np.arange(500) % 7)
    assert metrics["auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert metrics["logloss"] == pytest.approx(sklearn_log_loss(labels, 1 / (1 + np.exp(-scores))))
    assert set(metrics) == {"auc", "logloss", "uauc", "gauc"}


@pytest.mark.parametrize(
    "labels, scores, message",
    [
        ([0, 2], [0.1, 0.2], "0 or 1"),
        ([0, 1], [0.1, np.nan], "non-finite"),
        ([0, 1], [0.1], "2"),
    ],
)
def test_bad_inputs_are_named(labels, scores, message):
    with pytest.raises(ValueError, match=message):
        evaluation.roc_auc(labels, scores)
