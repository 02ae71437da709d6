"""What a Keras user does with the layers, outside the package's own models and `train`."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_unimixer.callbacks import TemperatureAnnealing, temperature_variables
from keras_unimixer.layers import UniMixing, initializers
from keras_unimixer.layers.mixing import constrained
from tests import keras_user_models

HELPER = Path(keras_user_models.__file__)


def _run_helper(action, kind, directory):
    environment = {**os.environ, "PYTHONPATH": str(HELPER.parents[1])}
    result = subprocess.run(
        [sys.executable, str(HELPER), action, kind, str(directory)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


@pytest.mark.parametrize("kind", ["subclassed", "functional"])
def test_model_from_the_layers_trains_without_a_build_call_and_reloads_exactly(kind, tmp_path):
    stderr = _run_helper("save", kind, tmp_path)
    _run_helper("load", kind, tmp_path)  # a fresh process: nothing cached from training
    trained = np.load(tmp_path / "predictions.npy")
    reloaded = np.load(tmp_path / "reloaded.npy")
    assert np.max(np.abs(trained - reloaded)) <= 1e-6
    assert "Skipping variable loading" not in stderr


def test_noisy_initializers_draw_their_seed_when_made():
    keras.utils.set_random_seed(3)
    first = initializers.StackedIdentity(noise_stddev=0.1)
    second = initializers.StackedIdentity(noise_stddev=0.1)
    keras.utils.set_random_seed(3)
    again = initializers.StackedIdentity(noise_stddev=0.1)
    assert isinstance(first.seed, int) and first.seed == again.seed != second.seed
    values = keras.ops.convert_to_numpy(first((3, 4, 4)))
    np.testing.assert_array_equal(values, keras.ops.convert_to_numpy(again((3, 4, 4))))
    assert first.get_config()["seed"] is None  # a config stays "unseeded", as Keras' own


def test_temperature_annealing_anneals_a_subclassed_model_fit_builds():
    features, labels = keras_user_models.data()
    model = keras_user_models.SubclassedRanker()
    model.compile("adam", "binary_crossentropy")
    history = model.fit(
        features,
        labels,
        batch_size=64,
        epochs=2,
        verbose=0,
        callbacks=[TemperatureAnnealing(start=2.0, end=0.05)],
    )
    assert history.history["temperature"][-1] == pytest.approx(0.05)
    (variable,) = temperature_variables(model)
    assert float(keras.ops.convert_to_numpy(variable)) == pytest.approx(0.05)


def test_training_a_temperature_without_a_schedule_warns_once(monkeypatch):
    monkeypatch.setattr(constrained, "_warned_unscheduled", False)
    features, labels = keras_user_models.data(64)
    model = keras_user_models.functional_ranker()
    model.compile("adam", "binary_crossentropy")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.predict(features, verbose=0)  # inference: no warning
        assert not [w for w in caught if "constant temperature" in str(w.message)]
        model.fit(features, labels, epochs=2, verbose=0)
        model.fit(features, labels, epochs=1, verbose=0)
    assert len([w for w in caught if "constant temperature" in str(w.message)]) == 1


def test_an_unbuilt_layer_with_no_temperature_is_not_annealed():
    layer = UniMixing(block_size=4, temperature=None, sinkhorn_iterations=0)
    model = keras.Sequential([keras.Input((2, 8)), layer, keras.layers.Flatten()])
    model.compile("adam", "mse")
    with pytest.raises(ValueError, match="found no layer with a temperature"):
        model.fit(
            np.ones((4, 2, 8)), np.ones((4, 16)), verbose=0, callbacks=[TemperatureAnnealing()]
        )
