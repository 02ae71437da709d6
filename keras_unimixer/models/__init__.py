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
    "compile_ranking",
    "default_block_size",
    "feature_inputs",
    "make_mixing",
]
