"""Ranking models: the UniMixer family (`RankingModel`) and the baselines, one harness."""

from collections.abc import Sequence
from typing import Any

import keras

from keras_unimixer.features import FeatureSpec
from keras_unimixer.models.baselines import DNN, DCNv2, DeepFM, LogisticRegression
from keras_unimixer.models.common import compile_ranking, feature_inputs
from keras_unimixer.models.config import BASELINE_OPTIONS, ModelConfig
from keras_unimixer.models.finalmlp import FinalMLP, InteractionAggregation, LearnedContext
from keras_unimixer.models.listwise import ListwiseModel
from keras_unimixer.models.multitask import MixtureOfExperts
from keras_unimixer.models.options import model_names
from keras_unimixer.models.ranking import RankingModel, Tower, mixer_options

_BASELINE_CLASSES = {
    "logistic_regression": LogisticRegression,
    "dnn": DNN,
    "deepfm": DeepFM,
    "dcnv2": DCNv2,
    "finalmlp": FinalMLP,
}


def build_model(
    name: str, features: Sequence[FeatureSpec], tasks: Sequence[str] = ("click",), **options: Any
) -> keras.Model:
    """Model `name` (`model_names()`) with the options it reads; the others are left out.

    Mixers get a `RankingModel`; the baselines their own class.
    """
    if name not in model_names():
        raise ValueError(f"`model` must be one of {model_names()}, got {name!r}.")
    if name not in BASELINE_OPTIONS:
        readable = mixer_options(name)
        chosen = {k: v for k, v in options.items() if k in readable}
        return RankingModel(features, mixer=name, tasks=tasks, **chosen)
    chosen = {k: v for k, v in options.items() if k in BASELINE_OPTIONS[name] and v is not None}
    return _BASELINE_CLASSES[name](features, tasks=tasks, **chosen)


__all__ = [
    "DCNv2",
    "DNN",
    "DeepFM",
    "FinalMLP",
    "InteractionAggregation",
    "LearnedContext",
    "ListwiseModel",
    "LogisticRegression",
    "MixtureOfExperts",
    "ModelConfig",
    "RankingModel",
    "Tower",
    "build_model",
    "compile_ranking",
    "feature_inputs",
    "model_names",
]
