import itertools

import keras
import keras_tuner
import numpy as np
import pytest

from keras_unimixer import datasets
from keras_unimixer.experiments.tuning import UniMixerHyperModel
from keras_unimixer.layers.mixing import mixer_names

SPACE = {"num_layers": [1], "num_tokens": [4, 8], "token_dim": [16], "ffn_multiplier": [1]}


@pytest.fixture(scope="module")
def data():
    return datasets.make_synthetic(num_examples=1200, num_categorical=5, num_numeric=1, seed=4)


def test_every_combination_of_the_space_builds_and_runs(data):
    hypermodel = UniMixerHyperModel(data.features, space=SPACE)
    assert hypermodel.space["block_size"] == [4, 8, 16, 32, 64]  # divisors of gcd(64, 128)
    features, _ = data.arrays("test")
    batch = {name: values[:3] for name, values in features.items()}
    built = 0
    for mixer, tokens, block in itertools.product(
        hypermodel.space["mixer"], SPACE["num_tokens"], hypermodel.space["block_size"]
    ):
        if mixer not in ("unimixer", "unimixer_lite") and block != 4:
            continue  # block size only matters to the UniMixing mixers
        hp = keras_tuner.HyperParameters()
        hp.Fixed("mixer", mixer)
        hp.Fixed("num_tokens", tokens)
        hp.Fixed("block_size", block)
        hp.Fixed("rank", 8)  # more than the blocks of some configurations: capped, not an error
        model = hypermodel.build(hp)
        assert keras.ops.convert_to_numpy(model(batch)).shape == (3, 1)
        built += 1
    others = len(hypermodel.space["mixer"]) - 2  # every registered mixer is in the space
    assert hypermodel.space["mixer"] == list(mixer_names()) and others >= 5
    assert built == 2 * 2 * 5 + others * 2


@pytest.mark.parametrize(
    "space,pattern",
    [
        ({"block_size": [3]}, r"`block_size` choices \[3\]"),
        ({"num_tokens": [3], "token_dim": [16]}, "rankmixer"),
        ({"mixer": ["mamba"]}, "`mixer`"),
        ({"depth": [1]}, "Unknown search-space keys"),
    ],
)
def test_invalid_spaces_are_rejected_up_front(data, space, pattern):
    with pytest.raises(ValueError, match=pattern):
        UniMixerHyperModel(data.features, space=space)


def search(data, directory, max_trials):
    tuner = keras_tuner.RandomSearch(
        UniMixerHyperModel(data.features, space=SPACE),
        objective=keras_tuner.Objective("val_auc", "max"),
        max_trials=max_trials,
        directory=str(directory),
        project_name="tiny",
        overwrite=False,
        seed=3,
    )
    features, labels = data.arrays("train")
    valid_features, valid_labels = data.arrays("validation")
    tuner.search(
        features,
        labels["click"][:, None],
        validation_data=(valid_features, valid_labels["click"][:, None]),
        epochs=1,
        batch_size=256,
        verbose=0,
    )
    return tuner


def test_tiny_search_runs_and_resumes_without_repeating_trials(data, tmp_path):
    first = search(data, tmp_path, max_trials=2)
    done = {t.trial_id: t.score for t in first.oracle.trials.values()}
    assert len(done) == 2 and all(0.0 <= score <= 1.0 for score in done.values())
    resumed = search(data, tmp_path, max_trials=3)  # the same command, one more trial allowed
    trials = resumed.oracle.trials
    assert len(trials) == 3
    for trial_id, score in done.items():
        assert trials[trial_id].score == score  # completed trials kept, not rerun
    assert np.isfinite(resumed.oracle.get_best_trials(1)[0].score)


@pytest.mark.parametrize(
    "space, message",
    [
        ({"num_layers": []}, "'num_layers' must list at least one choice"),
        ({"learning_rate": [1e-2, 1e-4]}, "'learning_rate' must be"),
        ({"learning_rate": "fast"}, "'learning_rate' must be"),
    ],
)
def test_bad_search_space_entries_are_named(data, space, message):
    with pytest.raises(ValueError, match=message):
        UniMixerHyperModel(data.features, space=space)


def test_single_values_are_one_choice_lists(data):
    hypermodel = UniMixerHyperModel(
        data.features, space={"mixer": "unimixer_lite", "num_layers": 1, "learning_rate": 1e-3}
    )
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    assert hp.values["mixer"] == "unimixer_lite" and hp.values["num_layers"] == 1
    assert hp.values["learning_rate"] == pytest.approx(1e-3)
    assert model.count_params() > 0
