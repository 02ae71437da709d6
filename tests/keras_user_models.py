"""Models a Keras user builds from the package's layers, for tests/test_keras_user.py.

Run as a script (`python keras_user_models.py save|load KIND DIR`) it trains and saves, or loads
and predicts, in a process of its own: a `.keras` file must reload in a fresh process.
"""

import sys

import keras
import numpy as np

from keras_unimixer.datasets import FeatureSpec
from keras_unimixer.layers import FeatureTokenizer, UniMixerEncoder, UniMixingLite

FEATURES = [FeatureSpec(f"f{index}", "categorical", 20) for index in range(4)]


def _tokenizer():
    return FeatureTokenizer(FEATURES, 8, token_dim=64, num_tokens=4)


def _encoder():
    return UniMixerEncoder(num_layers=1, mixing=UniMixingLite(block_size=32))


@keras.saving.register_keras_serializable(package="keras_unimixer_tests")
class SubclassedRanker(keras.Model):
    """FeatureTokenizer -> UniMixerEncoder(UniMixingLite) -> mean over tokens -> Dense."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = _tokenizer()
        self.encoder = _encoder()
        self.head = keras.layers.Dense(1)

    def call(self, inputs):
        return self.head(keras.ops.mean(self.encoder(self.tokenizer(inputs)), axis=1))


def functional_ranker() -> keras.Model:
    inputs = {spec.name: keras.Input((), dtype="int32", name=spec.name) for spec in FEATURES}
    tokens = _encoder()(_tokenizer()(inputs))
    return keras.Model(inputs, keras.layers.Dense(1)(keras.ops.mean(tokens, axis=1)))


def make_model(kind: str) -> keras.Model:
    return SubclassedRanker() if kind == "subclassed" else functional_ranker()


def data(rows: int = 256):
    rng = np.random.default_rng(0)
    features = {spec.name: rng.integers(0, 20, rows).astype("int32") for spec in FEATURES}
    return features, rng.integers(0, 2, rows).astype("float32")


def main(action: str, kind: str, directory: str) -> None:
    features, labels = data()
    if action == "save":
        keras.utils.set_random_seed(1)
        model = make_model(kind)
        model.compile("adam", "binary_crossentropy")
        model.fit(features, labels, batch_size=64, epochs=1, verbose=0)
        np.save(f"{directory}/predictions.npy", model.predict(features, verbose=0))
        model.save(f"{directory}/model.keras")
    else:
        model = keras.saving.load_model(f"{directory}/model.keras")
        np.save(f"{directory}/reloaded.npy", model.predict(features, verbose=0))


if __name__ == "__main__":
    main(*sys.argv[1:4])
