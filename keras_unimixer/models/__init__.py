"""Ranking models: the UniMixer family (`RankingModel`) and the baselines, one harness."""

from keras_unimixer.models.baselines import DNN, DCNv2, DeepFM, LogisticRegression
from keras_unimixer.models.common import compile_ranking, feature_inputs
from keras_unimixer.models.finalmlp import FinalMLP, InteractionAggregation, LearnedContext
from keras_unimixer.models.ranking import (
    MIXERS,
    RankingModel,
    Tower,
    default_block_size,
    make_mixing,
)

BASELINES = ("logistic_regression", "dnn", "deepfm", "dcnv2", "finalmlp")
MODEL_NAMES = MIXERS + BASELINES

_MIXER_ARGS = (
    "num_layers", "num_tokens", "token_dim", "embedding_dim", "block_size", "num_heads",
    "num_basis", "rank", "ffn_multiplier", "ffn_activation", "norm", "tokenizer_mode",
    "hidden_units", "temperature", "sinkhorn_iterations", "mixing_options", "embedding_l2",
    "embedding_init_stddev", "pooling", "siamese_scope",
)  # fmt: skip
_DEEP_ARGS = (
    "embedding_dim", "hidden_units", "dropout", "batch_norm", "embedding_l2",
    "embedding_init_stddev",
)  # fmt: skip
_BASELINE_ARGS = {
    "logistic_regression": (),
    "dnn": _DEEP_ARGS,
    "deepfm": _DEEP_ARGS,
    "dcnv2": _DEEP_ARGS + ("num_cross_layers",),
    "finalmlp": (
        "embedding_dim",
        "dropout",
        "batch_norm",
        "embedding_l2",
        "embedding_init_stddev",
    ),  # fmt: skip
}
_BASELINE_CLASSES = {
    "logistic_regression": LogisticRegression,
    "dnn": DNN,
    "deepfm": DeepFM,
    "dcnv2": DCNv2,
    "finalmlp": FinalMLP,
}


# Options that only some architectures use: a value set for another one is refused, not ignored.
_ONLY_FOR = {
    "num_heads": ("attention",),
    "block_size": ("unimixer", "unimixer_lite"),
    "num_basis": ("unimixer_lite",),
    "rank": ("unimixer_lite",),
    "mixing_options": ("unimixer", "unimixer_lite"),
    "siamese_scope": MIXERS,
    "num_cross_layers": ("dcnv2",),
    "num_tokens": MIXERS,
    "token_dim": MIXERS,
    "num_layers": MIXERS,
    "ffn_multiplier": MIXERS,
    "norm": MIXERS,
    "tokenizer_mode": MIXERS,
    "pooling": MIXERS,
    "embedding_dim": MIXERS + ("dnn", "deepfm", "dcnv2", "finalmlp"),
    "hidden_units": MIXERS + ("dnn", "deepfm", "dcnv2"),
    "dropout": MIXERS + ("dnn", "deepfm", "dcnv2", "finalmlp"),
    "batch_norm": MIXERS + ("dnn", "deepfm", "dcnv2", "finalmlp"),
    "embedding_l2": MIXERS + ("dnn", "deepfm", "dcnv2", "finalmlp"),
    "embedding_init_stddev": MIXERS + ("dnn", "deepfm", "dcnv2", "finalmlp"),
    "temperature_start": ("unimixer", "unimixer_lite"),
    "temperature_end": ("unimixer", "unimixer_lite"),
    "temperature_schedule": ("unimixer", "unimixer_lite"),
    "anneal_epochs": ("unimixer", "unimixer_lite"),
}


def check_options_apply(name: str, options) -> None:
    """Refuse options (set explicitly, e.g. on the command line) that model `name` does not use.

    Example:
    >>> check_options_apply("rankmixer", ["num_heads"])
    Traceback (most recent call last):
    ...
    ValueError: `num_heads` does not apply to model 'rankmixer'; it applies to: attention.
    """
    for option in options:
        models_using = _ONLY_FOR.get(option)
        if models_using is not None and name not in models_using:
            raise ValueError(
                f"`{option}` does not apply to model {name!r}; it applies to: "
                f"{', '.join(models_using)}."
            )


def build_model(name: str, features, tasks=("click",), **sizes):
    """A model by name (`MODEL_NAMES`); `sizes` not used by that architecture are ignored.

    UniMixer-family names take the `RankingModel` arguments (`dropout` and `batch_norm` apply to
    its head MLP); the baselines take the embedding and MLP arguments of their constructors.
    """
    sizes = {key: value for key, value in sizes.items() if value is not None}
    if name in MIXERS:
        chosen = {k: v for k, v in sizes.items() if k in _MIXER_ARGS}
        for own, head in (("dropout", "head_dropout"), ("batch_norm", "head_batch_norm")):
            if own in sizes:
                chosen[head] = sizes[own]
        return RankingModel(features, mixer=name, tasks=tasks, **chosen)
    if name not in _BASELINE_CLASSES:
        raise ValueError(f"`model` must be one of {MODEL_NAMES}, got {name!r}.")
    chosen = {k: v for k, v in sizes.items() if k in _BASELINE_ARGS[name]}
    return _BASELINE_CLASSES[name](features, tasks=tasks, **chosen)


__all__ = [
    "BASELINES",
    "DCNv2",
    "DNN",
    "DeepFM",
    "FinalMLP",
    "InteractionAggregation",
    "LearnedContext",
    "LogisticRegression",
    "MIXERS",
    "MODEL_NAMES",
    "RankingModel",
    "Tower",
    "build_model",
    "check_options_apply",
    "compile_ranking",
    "default_block_size",
    "feature_inputs",
    "make_mixing",
]
