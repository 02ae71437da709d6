"""Keras Tuner integration: a search space over the UniMixer family."""

from keras_unimixer.tuning.hypermodel import DEFAULT_SPACE, UniMixerHyperModel

__all__ = ["DEFAULT_SPACE", "UniMixerHyperModel"]
