"""Keras 3 layers of the UniMixer family.

The layers themselves are here; the mixer registry (`register_mixer`, `make_mixing`,
`mixer_names`, ...) and `frozen_mixing_weights` are in `keras_unimixer.layers.mixing`, the
initializers in `keras_unimixer.layers.initializers`, and the Sinkhorn operations in
`keras_unimixer.ops`.
"""

from keras_unimixer.layers.encoder import UniMixerBlock, UniMixerEncoder
from keras_unimixer.layers.ffn import PerTokenFFN
from keras_unimixer.layers.mixing import (
    AttentionMixing,
    FMMixing,
    HeterogeneousAttention,
    MixingLayer,
    TokenMixing,
    UniMixing,
    UniMixingLite,
    WukongMixing,
)
from keras_unimixer.layers.tokenizer import FeatureTokenizer

__all__ = [
    "AttentionMixing",
    "FMMixing",
    "FeatureTokenizer",
    "HeterogeneousAttention",
    "MixingLayer",
    "PerTokenFFN",
    "TokenMixing",
    "UniMixerBlock",
    "UniMixerEncoder",
    "UniMixing",
    "UniMixingLite",
    "WukongMixing",
]
