"""The UniMixer block and stack: SiameseNorm, post-norm and pre-norm residuals."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_unimixer.layers.ffn import PerTokenFFN
from keras_unimixer.layers.mixing.base import token_major_by_transposing
from keras_unimixer.utils.types import Shape, Tensor
from keras_unimixer.utils.validation import (
    check_choice,
    check_positive_float,
    check_positive_int,
    check_rate,
    check_token_input_shape,
)

NORM_STYLES = ("siamese", "post", "pre")
NORM_TYPES = ("rms", "layer")
SIAMESE_SCOPES = ("sublayer", "block")
LAYOUTS = ("auto", "token_major", "batch_major")


def _make_norm(norm_type: str, epsilon: float, name: str, dtype=None):
    if norm_type == "rms":
        return keras.layers.RMSNormalization(epsilon=epsilon, name=name, dtype=dtype)
    return keras.layers.LayerNormalization(epsilon=epsilon, name=name, dtype=dtype)


def _copy_layer(config: dict, dtype=None):
    """A fresh, unbuilt layer from a serialized one; the name is dropped so copies get new ones,
    and `dtype` (a policy), when given, replaces the serialized one."""
    config = {key: value for key, value in config.items() if key != "build_config"}
    config["config"] = {k: v for k, v in config["config"].items() if k != "name"}
    if dtype is not None:
        config["config"]["dtype"] = keras.dtype_policies.serialize(dtype)
    return keras.saving.deserialize_keras_object(config)


def _is_shape_pair(shape) -> bool:
    """True for the two SiameseNorm stream shapes, False for one shape (JSON makes both lists)."""
    return (
        isinstance(shape, (list, tuple)) and len(shape) == 2 and isinstance(shape[0], (list, tuple))
    )


def _token_major(layer):
    """`layer`'s token-major call: its own `call_token_major`, or one that transposes."""
    own = getattr(layer, "call_token_major", None)
    return own or (lambda inputs: token_major_by_transposing(layer, inputs))


def prefers_token_major(mixing: keras.Layer) -> bool:
    """Whether `layout="auto"` runs blocks of this mixing layer token-major under this backend: its
    `token_major_backends` (measured per layer; none for layers without their own token-major
    path, which would only add transposes)."""
    return keras.backend.backend() in getattr(mixing, "token_major_backends", ())


def _as_layer(mixing, dtype_policy=None):
    """`mixing` as a layer. With `dtype_policy` (the block's own, when given explicitly), a
    config dict is deserialized under that policy, and a layer under another one is refused."""
    if isinstance(mixing, keras.layers.Layer):
        if dtype_policy is not None and mixing.dtype_policy.name != dtype_policy.name:
            raise ValueError(
                f"The block's dtype policy is {dtype_policy.name!r} but its `mixing` layer "
                f"{mixing.name!r} runs {mixing.dtype_policy.name!r}: pass the same `dtype` to "
                "both, or leave the block's `dtype` unset."
            )
        return mixing
    if isinstance(mixing, dict):
        if dtype_policy is not None:
            mixing = {**mixing, "config": {**mixing["config"]}}
            mixing["config"]["dtype"] = keras.dtype_policies.serialize(dtype_policy)
        return keras.saving.deserialize_keras_object(mixing)
    raise ValueError(
        "`mixing` must be a keras Layer (e.g. keras_unimixer.layers.UniMixing(block_size=16)) or "
        f"its serialized config dict, got {type(mixing).__name__}: {mixing!r}."
    )


@keras.saving.register_keras_serializable(package="keras_unimixer")
class UniMixerBlock(keras.layers.Layer):
    """One mixing layer and one per-token FFN, each with a residual connection.

    The residual style is selected by `norm`:
    - `"post"` (RankMixer): `S = N(X + Mix(X))`, `X' = N(S + FFN(S))`.
    - `"pre"`: `S = X + Mix(N(X))`, `X' = S + FFN(N(S))`.
    - `"siamese"` (UniMixer's SiameseNorm): two streams `Xb` (post-norm) and `Yb` (pre-norm).
      With `siamese_scope="block"`: `Z = Xb + N(Yb)`, the block's update
      `O = Mix(Z) + FFN(Z + Mix(Z))` (the sublayers with their plain residuals, minus `Z`), then
      `Xb <- N(Xb + O)`, `Yb <- Yb + O`. With `"sublayer"`, the same update is applied around each
      sublayer `f` (mixing, then FFN) separately: `O = f(Xb + N(Yb))`. The block takes and
      returns the pair `[Xb, Yb]`; a single tensor input starts both streams at it.
      `UniMixerEncoder` combines the streams at the end as `Xb + N(Yb)`.

    Args:
        mixing: the mixing layer (any layer of `keras_unimixer.layers` whose output shape equals its
            input shape, e.g. `UniMixing`, `UniMixingLite`, `AttentionMixing`, `FMMixing`, or
            `TokenMixing(num_heads=T)`), or its serialized config. With the block's `dtype`
            given, a config is built under that policy, and a layer must already run it.
        ffn_multiplier: int. Hidden width of the per-token FFN, as a multiple of `token_dim`.
            Defaults to `4`.
        ffn_activation: str. `"swiglu"` or `"gelu"`. Defaults to `"swiglu"`.
        norm: str. `"siamese"`, `"post"` or `"pre"`. Defaults to `"siamese"`.
        norm_type: str. `"rms"` (RMSNorm) or `"layer"` (LayerNorm). Defaults to `"rms"`.
        norm_epsilon: float. Epsilon of the normalization layers. Defaults to `1e-6`.
        siamese_scope: str. With `norm="siamese"`, `"sublayer"` (around the mixing and around the
            FFN) or `"block"` (once around the whole block, as the UniMixer paper writes it).
            Defaults to `"sublayer"`.
        dropout: float. Dropout rate on the output of the mixing and of the FFN branch, before
            its residual sum, in `[0, 1)`; active in training only. Defaults to `0.0`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, T, D)` tensor; with `norm="siamese"`, also a list `[Xb, Yb]` of two.
            `call_token_major` takes and returns the same in token-major layout, `(T, batch, D)`.

    Example:
    >>> x = keras.random.normal((2, 4, 8))
    >>> block = keras_unimixer.layers.UniMixerBlock(
    ...     keras_unimixer.layers.UniMixing(block_size=8), norm="pre")
    >>> block(x).shape
    (2, 4, 8)

    References:
        - [UniMixer: A Unified Architecture for Scaling Laws in Recommendation Systems](https://arxiv.org/abs/2604.00590)
        - [RankMixer: Scaling Up Ranking Models in Industrial Recommenders](https://arxiv.org/abs/2507.15551)
    """

    def __init__(
        self,
        mixing: keras.Layer | dict,
        ffn_multiplier: int = 4,
        ffn_activation: str = "swiglu",
        norm: str = "siamese",
        norm_type: str = "rms",
        norm_epsilon: float = 1e-6,
        siamese_scope: str = "sublayer",
        dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dropout = check_rate("dropout", dropout)
        # One Dropout per branch: each draws its own masks (seeded from the global seed).
        self.mixing_dropout = keras.layers.Dropout(
            self.dropout, name="mixing_dropout", dtype=self.dtype_policy
        )
        self.ffn_dropout = keras.layers.Dropout(
            self.dropout, name="ffn_dropout", dtype=self.dtype_policy
        )
        explicit_policy = self.dtype_policy if kwargs.get("dtype") is not None else None
        self.mixing = _as_layer(mixing, explicit_policy)
        self.ffn_multiplier = check_positive_int("ffn_multiplier", ffn_multiplier)
        self.ffn_activation = ffn_activation
        self.norm = check_choice("norm", norm, NORM_STYLES)
        self.norm_type = check_choice("norm_type", norm_type, NORM_TYPES)
        self.norm_epsilon = check_positive_float("norm_epsilon", norm_epsilon)
        self.siamese_scope = check_choice("siamese_scope", siamese_scope, SIAMESE_SCOPES)
        self.ffn = PerTokenFFN(
            multiplier=self.ffn_multiplier,
            activation=ffn_activation,
            name="ffn",
            dtype=self.dtype_policy,
        )
        # Attribute names are the saved names of the sublayers. A block-scope SiameseNorm has one
        # pair of norms, named as the mixing sublayer's.
        for name in self._norm_names():
            setattr(
                self, name, _make_norm(self.norm_type, self.norm_epsilon, name, self.dtype_policy)
            )

    def _norm_names(self):
        if self.norm == "siamese" and self.siamese_scope == "block":
            return ["mixing_norm", "mixing_stream_norm"]
        names = ["mixing_norm", "ffn_norm"]
        if self.norm == "siamese":
            names += ["mixing_stream_norm", "ffn_stream_norm"]
        return names

    def _norm_layers(self):
        return [getattr(self, name) for name in self._norm_names()]

    def build(self, input_shape: Shape) -> None:
        if _is_shape_pair(input_shape):
            if self.norm != "siamese":
                raise ValueError(
                    f"A list of inputs (the two SiameseNorm streams) needs norm='siamese'; "
                    f"this block has norm={self.norm!r}."
                )
            input_shape = input_shape[0]
        input_shape = tuple(input_shape)
        check_token_input_shape(type(self).__name__, input_shape)
        if not self.mixing.built:  # a deserialized mixing layer arrives built
            self.mixing.build(input_shape)
        mixed_shape = tuple(self.mixing.compute_output_shape(input_shape))
        if mixed_shape[1:] != input_shape[1:]:
            raise ValueError(
                f"The residual around `mixing` needs its output shape to equal its input shape "
                f"{input_shape[1:]}, but {type(self.mixing).__name__} gives {mixed_shape[1:]}. "
                "TokenMixing keeps the shape only with num_heads == num_tokens (RankMixer's "
                "constraint); UniMixing lifts it."
            )
        for layer in [self.ffn, *self._norm_layers()]:
            if not layer.built:
                layer.build(input_shape)

    def call(self, inputs: Tensor) -> Tensor:
        return self._forward(inputs, self.mixing, self.ffn)

    def call_token_major(self, inputs: Tensor) -> Tensor:
        """The block on token-major `(T, batch, D)` inputs (or the pair of streams), in that
        layout: the norms act on the last axis either way, and the mixing and FFN use their
        token-major paths."""
        return self._forward(inputs, _token_major(self.mixing), self.ffn.call_token_major)

    def _forward(self, inputs, mixing, ffn):
        if self.dropout:
            mixing, ffn = (
                self._with_dropout(mixing, self.mixing_dropout),
                self._with_dropout(ffn, self.ffn_dropout),
            )
        if self.norm == "siamese":
            if isinstance(inputs, (list, tuple)):
                post_stream, pre_stream = inputs
            else:
                post_stream = pre_stream = inputs
            if self.siamese_scope == "block":
                block_input = post_stream + self.mixing_stream_norm(pre_stream)
                mixed = block_input + mixing(block_input)
                update = mixed + ffn(mixed) - block_input
                return [self.mixing_norm(post_stream + update), pre_stream + update]
            for sublayer, name in ((mixing, "mixing"), (ffn, "ffn")):
                branch = sublayer(post_stream + getattr(self, f"{name}_stream_norm")(pre_stream))
                post_stream = getattr(self, f"{name}_norm")(post_stream + branch)
                pre_stream = pre_stream + branch
            return [post_stream, pre_stream]
        outputs = inputs
        for sublayer, name in ((mixing, "mixing"), (ffn, "ffn")):
            norm_layer = getattr(self, f"{name}_norm")
            if self.norm == "pre":
                outputs = outputs + sublayer(norm_layer(outputs))
            else:
                outputs = norm_layer(outputs + sublayer(outputs))
        return outputs

    @staticmethod
    def _with_dropout(branch, dropout):
        return lambda inputs: dropout(branch(inputs))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if self.norm == "siamese":
            shape = tuple(input_shape[0] if _is_shape_pair(input_shape) else input_shape)
            return [shape, shape]
        return tuple(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "mixing": keras.saving.serialize_keras_object(self.mixing),
                "ffn_multiplier": self.ffn_multiplier,
                "ffn_activation": self.ffn_activation,
                "norm": self.norm,
                "norm_type": self.norm_type,
                "norm_epsilon": self.norm_epsilon,
                "siamese_scope": self.siamese_scope,
                "dropout": self.dropout,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_unimixer")
class UniMixerEncoder(keras.layers.Layer):
    """A stack of `UniMixerBlock`s: UniMixer, RankMixer, Transformer-style or Wukong-style.

    The same class builds every architecture of the family; only the mixing layer changes:
    `TokenMixing(T)` + `norm="post"` + GELU FFN is RankMixer, `AttentionMixing` is a Transformer
    over feature tokens, `FMMixing` is Wukong-style, `UniMixing`/`UniMixingLite` + SiameseNorm is
    UniMixer. Each block gets its own copy of `mixing` (same config, its own weights).

    Output: `"siamese"`: `Xb + N(Yb)`; `"pre"`: `N(X)`; `"post"`: `X` (already normalized).

    With `layout="token_major"` the activations are transposed once to `(T, batch, D)` on entry
    and back on exit, and every block runs in that layout (`call_token_major`): the per-token FFN
    is then one batched matmul per projection, and UniMixing's blocks-first layout a reshape (see
    `UniMixing.call_token_major`), instead of transposes around every sublayer. `"batch_major"`
    runs the blocks on `(batch, T, D)` as they are. Both compute the same function with the same
    weights (to float rounding); the layout only changes speed. `"auto"` (the default) is
    token-major where the mixing layer lists the backend in its `token_major_backends` (UniMixing
    and UniMixing-Lite: JAX and TensorFlow; TokenMixing: JAX only, since its head transpose is
    slower token-major under TensorFlow+XLA; `benchmarks/results/mixer_speed_*.md`), batch-major
    otherwise. Encoders saved before this option existed load with `"auto"`.

    Args:
        num_layers: int. Number of blocks.
        mixing: the mixing layer to copy into every block (a layer or its serialized config).
        ffn_multiplier: int. Hidden width of the per-token FFNs, as a multiple of `token_dim`.
            Defaults to `4`.
        ffn_activation: str. `"swiglu"` or `"gelu"`. Defaults to `"swiglu"`.
        norm: str. `"siamese"`, `"post"` or `"pre"`. Defaults to `"siamese"`.
        norm_type: str. `"rms"` or `"layer"`. Defaults to `"rms"`.
        norm_epsilon: float. Epsilon of the normalization layers. Defaults to `1e-6`.
        siamese_scope: str. `"sublayer"` or `"block"` (see `UniMixerBlock`). Defaults to
            `"sublayer"`.
        layout: str. `"auto"`, `"token_major"` or `"batch_major"`: the layout of the activations
            between blocks. Defaults to `"auto"`.
        dropout: float. Every block's `dropout` (see `UniMixerBlock`). Defaults to `0.0`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, T, D)` tensor.

    Example:
    >>> x = keras.random.normal((2, 4, 8))
    >>> encoder = keras_unimixer.layers.UniMixerEncoder(
    ...     num_layers=2, mixing=keras_unimixer.layers.UniMixingLite(block_size=8, rank=2))
    >>> encoder(x).shape
    (2, 4, 8)

    References:
        - [UniMixer: A Unified Architecture for Scaling Laws in Recommendation Systems](https://arxiv.org/abs/2604.00590)
        - [RankMixer: Scaling Up Ranking Models in Industrial Recommenders](https://arxiv.org/abs/2507.15551)
    """

    def __init__(
        self,
        num_layers: int,
        mixing: keras.Layer | dict,
        ffn_multiplier: int = 4,
        ffn_activation: str = "swiglu",
        norm: str = "siamese",
        norm_type: str = "rms",
        norm_epsilon: float = 1e-6,
        siamese_scope: str = "sublayer",
        layout: str = "auto",
        dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dropout = check_rate("dropout", dropout)
        self.layout = check_choice("layout", layout, LAYOUTS)
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.mixing_config = keras.saving.serialize_keras_object(_as_layer(mixing))
        self.ffn_multiplier = ffn_multiplier
        self.ffn_activation = ffn_activation
        self.norm = check_choice("norm", norm, NORM_STYLES)
        self.norm_type = norm_type
        self.norm_epsilon = norm_epsilon
        self.siamese_scope = check_choice("siamese_scope", siamese_scope, SIAMESE_SCOPES)
        self.blocks = [
            UniMixerBlock(
                _copy_layer(self.mixing_config, self.dtype_policy),
                ffn_multiplier=ffn_multiplier,
                ffn_activation=ffn_activation,
                norm=norm,
                norm_type=norm_type,
                norm_epsilon=norm_epsilon,
                siamese_scope=siamese_scope,
                dropout=self.dropout,
                name=f"block_{index}",
                dtype=self.dtype_policy,
            )
            for index in range(self.num_layers)
        ]
        self.output_norm = (
            None
            if self.norm == "post"
            else _make_norm(norm_type, norm_epsilon, "output_norm", self.dtype_policy)
        )

    def build(self, input_shape: Shape) -> None:
        input_shape = tuple(input_shape)
        check_token_input_shape(type(self).__name__, input_shape)
        for block in self.blocks:
            block.build([input_shape, input_shape] if self.norm == "siamese" else input_shape)
        if self.output_norm is not None:
            self.output_norm.build(input_shape)

    def resolved_layout(self) -> str:
        """`"token_major"` or `"batch_major"`: the layout `call` uses (see `layout`)."""
        if self.layout != "auto":
            return self.layout
        return "token_major" if prefers_token_major(self.blocks[0].mixing) else "batch_major"

    def call(self, inputs: Tensor) -> Tensor:
        if self.resolved_layout() == "batch_major":
            return self._forward(inputs, self.blocks)
        tokens = ops.transpose(inputs, (1, 0, 2))
        outputs = self._forward(tokens, [block.call_token_major for block in self.blocks])
        return ops.transpose(outputs, (1, 0, 2))

    def _forward(self, inputs, blocks):
        if self.norm == "siamese":
            streams = [inputs, inputs]
            for block in blocks:
                streams = block(streams)
            post_stream, pre_stream = streams
            return post_stream + self.output_norm(pre_stream)
        outputs = inputs
        for block in blocks:
            outputs = block(outputs)
        return outputs if self.output_norm is None else self.output_norm(outputs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "num_layers": self.num_layers,
                "mixing": self.mixing_config,
                "ffn_multiplier": self.ffn_multiplier,
                "ffn_activation": self.ffn_activation,
                "norm": self.norm,
                "norm_type": self.norm_type,
                "norm_epsilon": self.norm_epsilon,
                "siamese_scope": self.siamese_scope,
                "layout": self.layout,
                "dropout": self.dropout,
            }
        )
        return config
