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

BASELINES = ("logistic_regression", "deepfm", "dcnv2")
MODEL_NAMES = MIXERS + BASELINES

_MIXER_ARGS = (
    "num_layers", "num_tokens", "token_dim", "embedding_dim", "block_size", "num_heads",
    "num_basis", "rank", "ffn_multiplier", "ffn_activation", "norm", "tokenizer_mode",
    "hidden_units", "temperature", "sinkhorn_iterations", "mixing_options",
)  # fmt: skip


def build_model(name: str, features, tasks=("click",), **sizes):
    """A model by name (`MODEL_NAMES`); `sizes` not used by that architecture are ignored.

    UniMixer-family names take the `RankingModel` arguments; `"deepfm"` and `"dcnv2"` take
    `embedding_dim` and `hidden_units` (and `num_cross_layers` for DCNv2).
    """
    sizes = {key: value for key, value in sizes.items() if value is not None}
    if name in MIXERS:
        chosen = {k: v for k, v in sizes.items() if k in _MIXER_ARGS}
        return RankingModel(features, mixer=name, tasks=tasks, **chosen)
    if name == "logistic_regression":
        return LogisticRegression(features, tasks=tasks)
    deep_args = {k: v for k, v in sizes.items() if k in ("embedding_dim", "hidden_units")}
    if name == "deepfm":
        return DeepFM(features, tasks=tasks, **deep_args)
    if name == "dcnv2":
        if "num_cross_layers" in sizes:
            deep_args["num_cross_layers"] = sizes["num_cross_layers"]
        return DCNv2(features, tasks=tasks, **deep_args)
    raise ValueError(f"`model` must be one of {MODEL_NAMES}, got {name!r}.")


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
