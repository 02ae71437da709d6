"""Keras 3 layers of the UniMixer family."""

from keras_unimixer.layers.constraints import constrain_matrix, log_sinkhorn, sinkhorn
from keras_unimixer.layers.encoder import UniMixerBlock, UniMixerEncoder
from keras_unimixer.layers.ffn import PerTokenFFN
from keras_unimixer.layers.initializers import (
    StackedIdentity,
    TokenMixingPermutation,
    token_mixing_permutation,
)
from keras_unimixer.layers.mixing import (
    AttentionMixing,
    FMMixing,
    HeterogeneousAttention,
    MixerSpec,
    MixingLayer,
    TokenMixing,
    UniMixing,
    UniMixingLite,
    WukongMixing,
    default_block_size,
    frozen_mixing_weights,
    get_mixer,
    make_mixing,
    mixer_names,
    mixing_layers,
    register_mixer,
)
from keras_unimixer.layers.tokenizer import FeatureTokenizer

__all__ = [
    "AttentionMixing",
    "FMMixing",
    "FeatureTokenizer",
    "HeterogeneousAttention",
    "MixerSpec",
    "MixingLayer",
    "PerTokenFFN",
    "StackedIdentity",
    "TokenMixing",
    "TokenMixingPermutation",
    "UniMixerBlock",
    "UniMixerEncoder",
    "UniMixing",
    "UniMixingLite",
    "WukongMixing",
    "constrain_matrix",
    "default_block_size",
    "frozen_mixing_weights",
    "get_mixer",
    "log_sinkhorn",
    "make_mixing",
    "mixer_names",
    "mixing_layers",
    "register_mixer",
    "sinkhorn",
    "token_mixing_permutation",
]
