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
    TokenMixing,
    UniMixing,
    UniMixingLite,
    frozen_mixing_weights,
    mixing_layers,
)
from keras_unimixer.layers.tokenizer import FeatureTokenizer

__all__ = [
    "AttentionMixing",
    "FMMixing",
    "FeatureTokenizer",
    "PerTokenFFN",
    "StackedIdentity",
    "TokenMixing",
    "TokenMixingPermutation",
    "UniMixerBlock",
    "UniMixerEncoder",
    "UniMixing",
    "UniMixingLite",
    "constrain_matrix",
    "frozen_mixing_weights",
    "log_sinkhorn",
    "mixing_layers",
    "sinkhorn",
    "token_mixing_permutation",
]
