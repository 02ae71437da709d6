"""Ranking models: the UniMixer family (`RankingModel`) and the baselines, one harness."""

from keras_unimixer.layers.mixing import default_block_size, get_mixer, make_mixing, mixer_names
from keras_unimixer.models.baselines import DNN, DCNv2, DeepFM, LogisticRegression
from keras_unimixer.models.common import compile_ranking, feature_inputs
from keras_unimixer.models.config import (
    BASELINE_OPTIONS,
    ENCODER_OPTIONS,
    MODEL_OPTIONS,
    ModelConfig,
)
from keras_unimixer.models.finalmlp import FinalMLP, InteractionAggregation, LearnedContext
from keras_unimixer.models.listwise import ListwiseModel
from keras_unimixer.models.multitask import HEADS, MixtureOfExperts
from keras_unimixer.models.ranking import RankingModel, Tower, mixer_options

BASELINES = tuple(BASELINE_OPTIONS)
_BASELINE_CLASSES = {
    "logistic_regression": LogisticRegression,
    "dnn": DNN,
    "deepfm": DeepFM,
    "dcnv2": DCNv2,
    "finalmlp": FinalMLP,
}
# Training options that only architectures with a temperature read.
TEMPERATURE_OPTIONS = ("temperature_start", "temperature_end", "temperature_schedule",
                       "anneal_epochs")  # fmt: skip


def model_names() -> tuple[str, ...]:
    """Every model `build_model` knows: the registered mixers, then the baselines."""
    return mixer_names() + BASELINES


def options_of(name: str) -> tuple:
    """The `ModelConfig` (and temperature) options model `name` reads."""
    if name in BASELINE_OPTIONS:
        return BASELINE_OPTIONS[name]
    spec = get_mixer(name)
    return mixer_options(name) + (TEMPERATURE_OPTIONS if spec.annealed else ())


def check_options_apply(name: str, options) -> None:
    """Refuse options (set explicitly, e.g. on the command line) that model `name` does not read.

    Example:
    >>> check_options_apply("rankmixer", ["num_heads"])
    Traceback (most recent call last):
    ...
    ValueError: `num_heads` does not apply to model 'rankmixer'; it applies to: attention, hiformer.
    """
    known = set(MODEL_OPTIONS) | set(TEMPERATURE_OPTIONS)
    readable = set(options_of(name))
    for option in options:
        if option in known and option not in readable:
            users = [model for model in model_names() if option in options_of(model)]
            raise ValueError(
                f"`{option}` does not apply to model {name!r}; it applies to: {', '.join(users)}."
            )


def build_model(name: str, features, tasks=("click",), **options):
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
    "BASELINES",
    "BASELINE_OPTIONS",
    "DCNv2",
    "DNN",
    "DeepFM",
    "ENCODER_OPTIONS",
    "FinalMLP",
    "HEADS",
    "InteractionAggregation",
    "LearnedContext",
    "ListwiseModel",
    "LogisticRegression",
    "MODEL_OPTIONS",
    "MixtureOfExperts",
    "ModelConfig",
    "RankingModel",
    "TEMPERATURE_OPTIONS",
    "Tower",
    "build_model",
    "check_options_apply",
    "compile_ranking",
    "default_block_size",
    "feature_inputs",
    "make_mixing",
    "mixer_names",
    "model_names",
    "options_of",
]
