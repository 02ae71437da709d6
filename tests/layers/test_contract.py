"""Every registered mixer passes the mixing-layer contract; a user's own mixer joins through it."""

import keras
import numpy as np
import pytest

from keras_unimixer import layers, models
from keras_unimixer.testing import run_mixer_contract_test

SHAPE = (3, 4, 8)


@pytest.mark.parametrize("name", layers.mixing.mixer_names())
def test_every_registered_mixer_passes_the_contract(name):
    spec = layers.mixing.get_mixer(name)
    run_mixer_contract_test(
        lambda: spec.make(SHAPE[1], SHAPE[2]),
        SHAPE,
        flops_shape=(64, 8, 32) if name != "rankmixer" else (64, 8, 32),
        check_training=name != "rankmixer",  # TokenMixing has no weights
    )


@keras.saving.register_keras_serializable(package="tests")
class ScaledIdentity(layers.MixingLayer):
    """A minimal user mixer: `x * s` with one learned scalar."""

    def build(self, input_shape):
        self.set_token_shape(input_shape)
        self.scale = self.add_weight(name="scale", shape=(), initializer="ones")

    def call(self, inputs):
        return inputs * self.scale

    def num_params(self):
        return 1

    def flops_per_example(self):
        return 0


def test_a_registered_user_mixer_reaches_models_tuning_and_counts():
    layers.mixing.register_mixer(
        "scaled_identity", lambda num_tokens, token_dim: ScaledIdentity(), overwrite=True
    )
    assert "scaled_identity" in models.model_names()
    from keras_unimixer.datasets import make_synthetic

    data = make_synthetic(num_examples=400)
    model = models.build_model(
        "scaled_identity", data.features, num_layers=1, num_tokens=4, token_dim=8
    )
    features, _ = data.arrays("test")
    assert model.predict(features, verbose=0).shape == (data.num_examples("test"), 1)
    with pytest.raises(ValueError, match="does not use \\['num_heads'\\]"):
        models.RankingModel(data.features, mixer="scaled_identity", num_heads=2)
    # A layer instance works too, and round-trips through the model's config.
    direct = models.RankingModel(
        data.features, mixer=ScaledIdentity(), num_layers=1, num_tokens=4, token_dim=8
    )
    again = models.RankingModel.from_config(direct.get_config())
    again.set_weights(direct.get_weights())
    np.testing.assert_allclose(
        again.predict(features, verbose=0), direct.predict(features, verbose=0), atol=1e-6
    )


@pytest.mark.parametrize("name", ["unimixer", "unimixer_lite"])
def test_mixing_options_reach_the_sinkhorn_arguments_and_unknown_ones_are_named(name):
    options = {"sinkhorn_max_iterations": 0, "sinkhorn_tolerance": 1e-4}
    layer = layers.mixing.make_mixing(name, 4, 8, mixing_options=options)
    assert (layer.sinkhorn_max_iterations, layer.sinkhorn_tolerance) == (0, 1e-4)
    with pytest.raises(ValueError, match=r"\['rounds'\] .* valid: .*'sinkhorn_max_iter"):
        layers.mixing.make_mixing(name, 4, 8, mixing_options={"rounds": 3})
