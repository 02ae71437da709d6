"""Keras Tuner integration: a search space over the UniMixer family, and the `tune` command."""

from keras_unimixer.experiments.tuning.hypermodel import DEFAULT_SPACE, UniMixerHyperModel
from keras_unimixer.experiments.tuning.search import (
    TUNERS,
    TuneConfig,
    results_table,
    run_search,
    tune,
)

__all__ = [
    "DEFAULT_SPACE",
    "TUNERS",
    "TuneConfig",
    "UniMixerHyperModel",
    "results_table",
    "run_search",
    "tune",
]
