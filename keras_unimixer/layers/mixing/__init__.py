"""The token-mixing family of UniMixer, as one set of Keras 3 layers.

Every layer maps `(batch, num_tokens, token_dim)` to a tensor with the same number of elements per
sample, `L = num_tokens * token_dim`. Cut the flattened sample into `n` blocks of size `b`; each
layer is then `out = W_G @ [x_1 W_B[1]; ...; x_n W_B[n]]` for some global `(n, n)` matrix `W_G`
and local `(b, b)` matrices `W_B`:

| layer            | `W_G`                                   | `W_B`                          |
| ---------------- | --------------------------------------- | ------------------------------ |
| `TokenMixing`    | fixed permutation `Pi`                  | identity                       |
| `AttentionMixing`| `softmax(Q K^T / sqrt(d))`, per sample  | `W_V W_O`, shared              |
| `FMMixing`       | `X X^T / D`, per sample                 | a learned projection, shared   |
| `UniMixing`      | learned, constrained                    | learned, one per block         |
| `UniMixingLite`  | `Sinkhorn(A B^T)` (low rank)            | `Sinkhorn(sum_j a_ij E_j)`     |
| `HeterogeneousAttention` | `softmax(Q K^T)`, token-specific maps | `W_V[s] W_O[t]` per pair  |

`WukongMixing` (FM block + linear compression) is not linear in its input, so it has no matrix.
Every layer follows the `MixingLayer` contract (`base.py`) and is registered as an architecture
(`register_mixer`): `rankmixer`, `unimixer`, `unimixer_lite`, `attention`, `fm`, `hiformer`,
`wukong`.

`mixing_matrix()` returns the effective `(L, L)` matrix `M` with `flat(out) = M @ flat(x)`: a single
matrix for the static layers, and one per sample (`mixing_matrix(inputs)`) for attention and FM.
"""

from keras_unimixer.layers.mixing.attention import AttentionMixing
from keras_unimixer.layers.mixing.base import (
    MixerSpec,
    MixingLayer,
    get_mixer,
    make_mixing,
    mixer_names,
    register_mixer,
)
from keras_unimixer.layers.mixing.constrained import default_block_size
from keras_unimixer.layers.mixing.fm import FMMixing
from keras_unimixer.layers.mixing.frozen import frozen_mixing_weights, mixing_layers
from keras_unimixer.layers.mixing.hiformer import HeterogeneousAttention
from keras_unimixer.layers.mixing.statistics import mixing_statistics
from keras_unimixer.layers.mixing.token_mixing import TokenMixing
from keras_unimixer.layers.mixing.unimixing import UniMixing
from keras_unimixer.layers.mixing.unimixing_lite import UniMixingLite
from keras_unimixer.layers.mixing.wukong import WukongMixing

__all__ = [
    "AttentionMixing",
    "FMMixing",
    "HeterogeneousAttention",
    "MixerSpec",
    "MixingLayer",
    "TokenMixing",
    "UniMixing",
    "UniMixingLite",
    "WukongMixing",
    "default_block_size",
    "frozen_mixing_weights",
    "get_mixer",
    "make_mixing",
    "mixer_names",
    "mixing_layers",
    "mixing_statistics",
    "register_mixer",
]
