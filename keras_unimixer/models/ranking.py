"""`RankingModel` and `Tower`: tokenizer -> UniMixerEncoder(mixer) -> pooling -> MLP."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import keras

from keras_unimixer.features import FeatureSpec, features_from_config
from keras_unimixer.layers import FeatureTokenizer, UniMixerEncoder
from keras_unimixer.layers.mixing import get_mixer
from keras_unimixer.models.common import (
    ConfiguredModel,
    check_dropout,
    check_tasks,
    embedding_options,
    feature_inputs,
    mlp,
)
from keras_unimixer.models.config import ENCODER_OPTIONS, MODEL_OPTIONS, ModelConfig
from keras_unimixer.models.multitask import multitask_heads
from keras_unimixer.utils.types import Tensor
from keras_unimixer.utils.validation import check_choice, check_positive_int

if TYPE_CHECKING:
    from typing import Self  # Python 3.11+; annotations only

POOLINGS = ("mean", "flatten")
_KERAS_ARGUMENTS = ("name", "dtype", "trainable")


def _mixing_layer(mixer):
    """`mixer` as a layer when it is one (or its serialized config), else None (a name)."""
    if isinstance(mixer, keras.layers.Layer):
        return mixer
    if isinstance(mixer, dict):
        return keras.saving.deserialize_keras_object(mixer)
    return None


def mixer_options(mixer: str | keras.Layer) -> tuple:
    """The model options an architecture reads: the encoder's, plus the mixer's own."""
    if _mixing_layer(mixer) is not None:
        return ENCODER_OPTIONS
    return ENCODER_OPTIONS + get_mixer(mixer).options


def model_config(mixer: str | keras.Layer, options: dict) -> ModelConfig:
    """The `ModelConfig` of a model's constructor arguments; an option that differs from its
    default and that the mixer does not read is refused, naming what it reads."""
    options = dict(options)
    if options.get("mixing_options") is None:
        options["mixing_options"] = {}
    readable = mixer_options(mixer)
    defaults = ModelConfig()
    unused = sorted(
        key
        for key, value in options.items()
        if key not in readable and _differs(value, getattr(defaults, key))
    )
    if unused:
        name = mixer if isinstance(mixer, str) else type(_mixing_layer(mixer)).__name__
        raise ValueError(f"Mixer {name!r} does not use {unused}; it reads: {sorted(readable)}.")
    return ModelConfig(**options)


def _differs(value, default) -> bool:
    if isinstance(default, tuple) and isinstance(value, list):
        value = tuple(value)
    return value != default


_DEFAULT = ModelConfig()
# RankingModel's multi-task heads; a Tower has one output.
_MULTITASK_OPTIONS = ("heads", "num_experts", "expert_units")


def _stored_options(mixer, config: ModelConfig) -> dict:
    options = {k: getattr(config, k) for k in mixer_options(mixer)}
    for key in ("hidden_units", "expert_units"):
        if key in options:
            options[key] = list(options[key])
    if "mixing_options" in options:
        options["mixing_options"] = dict(options["mixing_options"])
    return options


def _serialized_mixer(mixer):
    layer = _mixing_layer(mixer)
    return mixer if layer is None else keras.saving.serialize_keras_object(layer)


def encode_features(
    features: Sequence[FeatureSpec | dict], mixer: str | keras.Layer, config: ModelConfig
) -> tuple[dict, Tensor]:
    """Typed inputs and the pooled encoding: tokenizer -> encoder -> token mean (or flatten).

    Args:
        features: `FeatureSpec`s.
        mixer: a registered mixer name or a mixing layer (copied into every block).
        config: the model options.
    """
    check_choice("pooling", config.pooling, POOLINGS)
    inputs = feature_inputs(features)
    tokenizer = FeatureTokenizer(
        features,
        embedding_dim=config.embedding_dim,
        token_dim=config.token_dim,
        num_tokens=config.num_tokens,
        mode=config.tokenizer_mode,
        embedding=config.embedding,
        name="tokenizer",
        **embedding_options(config.embedding_l2, config.embedding_init_stddev),
    )
    layer = _mixing_layer(mixer)
    if layer is None:
        spec = get_mixer(mixer)
        options = {key: getattr(config, key) for key in spec.options}
        layer = spec.make(tokenizer.num_tokens, config.token_dim, **options)
        norm, activation = spec.norm, spec.ffn_activation
    else:
        norm = getattr(layer, "default_norm", "pre")
        activation = getattr(layer, "default_ffn_activation", "swiglu")
    encoder = UniMixerEncoder(
        num_layers=config.num_layers,
        mixing=layer,
        ffn_multiplier=config.ffn_multiplier,
        ffn_activation=config.ffn_activation or activation,
        norm=config.norm or norm,
        siamese_scope=config.siamese_scope,
        dropout=config.block_dropout,
        name="encoder",
    )
    encoded = encoder(tokenizer(inputs))
    if config.pooling == "flatten":
        return inputs, keras.layers.Flatten(name="token_concat")(encoded)
    return inputs, keras.layers.GlobalAveragePooling1D(name="token_mean")(encoded)


# Options renamed since models were first saved (commit 0ff50db): older `.keras` files still load.
_RENAMED_OPTIONS = {"head_dropout": "dropout", "head_batch_norm": "batch_norm"}


class _RenamedOptionsLoad(ConfiguredModel):
    @classmethod
    def from_config(cls, config: dict) -> Self:
        config = dict(config)
        for old, new in _RENAMED_OPTIONS.items():
            if old in config:
                value = config.pop(old)
                config.setdefault(new, value)
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_unimixer")
class RankingModel(_RenamedOptionsLoad):
    """A ranking (CTR) model of the UniMixer family: one class for every registered mixer.

    `FeatureTokenizer` -> `UniMixerEncoder(mixing)` -> mean over tokens (or their concatenation)
    -> MLP -> one logit per task. `mixer` names a registered architecture
    (`keras_unimixer.layers.mixing.mixer_names()`: `"unimixer"`, `"unimixer_lite"`, `"rankmixer"`,
    `"attention"`, `"fm"`, `"hiformer"`, `"wukong"`, and any registered with `register_mixer`)
    or is a mixing layer instance (any `MixingLayer`; each block gets a copy). Norm and FFN
    activation default to the architecture's own.

    Args:
        features: list of `FeatureSpec` (or their dicts). The dataset's features.
        mixer: str or `MixingLayer`. A registered mixer name, or a mixing layer (each block gets
            a copy). Defaults to `"unimixer_lite"`.
        tasks: tuple of str. Label names; one output per task (a dict when there are several).
            Defaults to `("click",)`.
        num_layers: int. Encoder blocks. Defaults to `2`.
        num_tokens: int. Tokens `T` of the `"rankmixer"` tokenizer. Defaults to `8`.
        token_dim: int. Token width `D`. Defaults to `32`.
        embedding_dim: int. Feature embedding size. Defaults to `16`.
        tokenizer_mode: str. `"rankmixer"` (features cut into `T` equal tokens), `"field"` (one
            token per feature) or `"group"` (one per feature group). Defaults to `"rankmixer"`.
        embedding: str. `"dense"` tables, or `"distributed"` (one keras-rs
            `DistributedEmbedding`). Defaults to `"dense"`.
        embedding_l2: float. Adds `(embedding_l2 / 2) * ||E||^2` over the tables to the loss.
            Defaults to `0.0`.
        embedding_init_stddev: float or `None`. Normal embedding initialization with this
            standard deviation; `None`: Keras' uniform. Defaults to `None`.
        ffn_multiplier: int. Per-token FFN width as a multiple of `D`. Defaults to `2`.
        ffn_activation: str or `None`. `"swiglu"` or `"gelu"`; `None`: the mixer's own.
            Defaults to `None`.
        norm: str or `None`. `"siamese"`, `"post"` or `"pre"`; `None`: the mixer's own.
            Defaults to `None`.
        siamese_scope: str. SiameseNorm per `"sublayer"` or per `"block"`. Defaults to
            `"sublayer"`.
        block_dropout: float. Dropout on the mixing and FFN branches inside every encoder block,
            in `[0, 1)`. Defaults to `0.0`.
        pooling: str. `"mean"` over tokens or `"flatten"`. Defaults to `"mean"`.
        hidden_units: tuple of int. Sizes of the MLP head. Defaults to `(64,)`.
        dropout: float. MLP dropout, in `[0, 1)`. Defaults to `0.0`.
        batch_norm: bool. Batch normalization in the MLP. Defaults to `False`.
        heads: str. `"independent"` (one MLP, a linear head per task), `"mmoe"` or `"ple"`
            (gated experts). Defaults to `"independent"`.
        num_experts: int. MMoE experts, or PLE experts per task. Defaults to `4`.
        expert_units: tuple of int. Hidden sizes of each expert MLP. Defaults to `(64,)`.
        block_size: int or `None`. UniMixing block size `b`; `None`: the divisor of `T * D`
            nearest its square root. Defaults to `None`.
        num_heads: int or `None`. Attention heads (attention, HiFormer). Defaults to `None`.
        num_basis: int. UniMixing-Lite basis matrices. Defaults to `4`.
        rank: int or `"full"`. UniMixing-Lite global rank (capped at the number of blocks), or
            `"full"`: an unfactorized global matrix. Defaults to `4`.
        temperature: float or `None`. Initial UniMixing temperature; `None`: none.
            Defaults to `1.0`.
        sinkhorn_iterations: int. Differentiable Sinkhorn rounds of UniMixing. Defaults to `10`.
        mixing_options: dict or `None`. Further UniMixing / UniMixing-Lite constructor
            arguments. Defaults to `None`.
        name: str or `None`. The model's name. Defaults to `None`.
        dtype: dtype policy or `None`. Keras dtype policy of the model. Defaults to `None`.
        trainable: bool. Whether the weights train. Defaults to `True`.

    An option that the mixer does not read (e.g. `num_heads` for `"unimixer_lite"`) is refused
    when it differs from its default.

    Example:
    >>> from keras_unimixer import datasets, models
    >>> data = datasets.make_synthetic(num_examples=1000)
    >>> model = models.RankingModel(data.features, mixer="unimixer_lite", num_tokens=8,
    ...                             token_dim=16)
    >>> features, labels = data.arrays("train")
    >>> model.predict(features, verbose=0).shape
    (800, 1)

    References:
        - [UniMixer: A Unified Architecture for Scaling Laws in Recommendation Systems](https://arxiv.org/abs/2604.00590)
        - [RankMixer: Scaling Up Ranking Models in Industrial Recommenders](https://arxiv.org/abs/2507.15551)
    """

    def __init__(
        self,
        features: Sequence[FeatureSpec | dict],
        mixer: str | keras.Layer = "unimixer_lite",
        tasks: str | Sequence[str] = ("click",),
        *,
        num_layers: int = _DEFAULT.num_layers,
        num_tokens: int = _DEFAULT.num_tokens,
        token_dim: int = _DEFAULT.token_dim,
        embedding_dim: int = _DEFAULT.embedding_dim,
        tokenizer_mode: str = _DEFAULT.tokenizer_mode,
        embedding: str = _DEFAULT.embedding,
        embedding_l2: float = _DEFAULT.embedding_l2,
        embedding_init_stddev: float | None = _DEFAULT.embedding_init_stddev,
        ffn_multiplier: int = _DEFAULT.ffn_multiplier,
        ffn_activation: str | None = _DEFAULT.ffn_activation,
        norm: str | None = _DEFAULT.norm,
        siamese_scope: str = _DEFAULT.siamese_scope,
        block_dropout: float = _DEFAULT.block_dropout,
        pooling: str = _DEFAULT.pooling,
        hidden_units: tuple = _DEFAULT.hidden_units,
        dropout: float = _DEFAULT.dropout,
        batch_norm: bool = _DEFAULT.batch_norm,
        heads: str = _DEFAULT.heads,
        num_experts: int = _DEFAULT.num_experts,
        expert_units: tuple = _DEFAULT.expert_units,
        block_size: int | None = _DEFAULT.block_size,
        num_heads: int | None = _DEFAULT.num_heads,
        num_basis: int = _DEFAULT.num_basis,
        rank: int | str = _DEFAULT.rank,
        temperature: float | None = _DEFAULT.temperature,
        sinkhorn_iterations: int = _DEFAULT.sinkhorn_iterations,
        mixing_options: dict | None = None,
        name: str | None = None,
        dtype: str | keras.DTypePolicy | None = None,
        trainable: bool = True,
    ) -> None:
        options = {key: value for key, value in locals().items() if key in MODEL_OPTIONS}
        features = features_from_config(features)
        tasks = check_tasks(tasks)
        config = model_config(mixer, options)
        check_dropout(config.dropout)
        inputs, pooled = encode_features(features, mixer, config)
        outputs = multitask_heads(
            pooled,
            tasks,
            config.heads,
            config.num_experts,
            config.expert_units,
            config.hidden_units,
            lambda x: mlp(x, config.hidden_units, "head", config.dropout, config.batch_norm),
        )
        super().__init__(
            inputs=inputs, outputs=outputs, name=name, dtype=dtype, trainable=trainable
        )
        self.set_init_config(
            features=features,
            mixer=_serialized_mixer(mixer),
            tasks=tasks,
            **_stored_options(mixer, config),
        )


@keras.saving.register_keras_serializable(package="keras_unimixer")
class Tower(_RenamedOptionsLoad):
    """An embedding tower of the UniMixer family, for two-tower retrieval or as a ranking tower.

    `FeatureTokenizer` -> `UniMixerEncoder(mixing)` -> pooling -> MLP -> a linear layer to
    `output_dim` (optionally L2-normalized).

    Args:
        features: list of `FeatureSpec` (or their dicts). The tower's features.
        output_dim: int. Size of the output embedding (1 for a scalar score such as a rating).
            Defaults to `32`.
        normalize: bool. L2-normalize the output (cosine-similarity retrieval). Defaults to
            `False`.
        mixer: str or `MixingLayer`. As `RankingModel`'s. Defaults to `"unimixer_lite"`.

    The encoder and head arguments (`num_layers` ... `mixing_options`) and `name`, `dtype`,
    `trainable` are `RankingModel`'s, with the same defaults; a tower has one output, so it takes
    no `tasks`, `heads`, `num_experts` or `expert_units`.

    Example:
    >>> from keras_unimixer import datasets, models
    >>> data = datasets.make_synthetic(num_examples=500)
    >>> user = [f for f in data.features if f.group == "user"]
    >>> tower = models.Tower(user, output_dim=16, num_tokens=4, token_dim=16)
    >>> test_features = data.arrays("test")[0]
    >>> tower.predict({f.name: test_features[f.name] for f in user}, verbose=0).shape
    (50, 16)

    References:
        - [UniMixer: A Unified Architecture for Scaling Laws in Recommendation Systems](https://arxiv.org/abs/2604.00590)
    """

    def __init__(
        self,
        features: Sequence[FeatureSpec | dict],
        output_dim: int = 32,
        normalize: bool = False,
        mixer: str | keras.Layer = "unimixer_lite",
        *,
        num_layers: int = _DEFAULT.num_layers,
        num_tokens: int = _DEFAULT.num_tokens,
        token_dim: int = _DEFAULT.token_dim,
        embedding_dim: int = _DEFAULT.embedding_dim,
        tokenizer_mode: str = _DEFAULT.tokenizer_mode,
        embedding: str = _DEFAULT.embedding,
        embedding_l2: float = _DEFAULT.embedding_l2,
        embedding_init_stddev: float | None = _DEFAULT.embedding_init_stddev,
        ffn_multiplier: int = _DEFAULT.ffn_multiplier,
        ffn_activation: str | None = _DEFAULT.ffn_activation,
        norm: str | None = _DEFAULT.norm,
        siamese_scope: str = _DEFAULT.siamese_scope,
        block_dropout: float = _DEFAULT.block_dropout,
        pooling: str = _DEFAULT.pooling,
        hidden_units: tuple = _DEFAULT.hidden_units,
        dropout: float = _DEFAULT.dropout,
        batch_norm: bool = _DEFAULT.batch_norm,
        block_size: int | None = _DEFAULT.block_size,
        num_heads: int | None = _DEFAULT.num_heads,
        num_basis: int = _DEFAULT.num_basis,
        rank: int | str = _DEFAULT.rank,
        temperature: float | None = _DEFAULT.temperature,
        sinkhorn_iterations: int = _DEFAULT.sinkhorn_iterations,
        mixing_options: dict | None = None,
        name: str | None = None,
        dtype: str | keras.DTypePolicy | None = None,
        trainable: bool = True,
    ) -> None:
        options = {key: value for key, value in locals().items() if key in MODEL_OPTIONS}
        features = features_from_config(features)
        check_positive_int("output_dim", output_dim)
        config = model_config(mixer, options)
        check_dropout(config.dropout)
        inputs, pooled = encode_features(features, mixer, config)
        hidden = mlp(pooled, config.hidden_units, "head", config.dropout, config.batch_norm)
        outputs = keras.layers.Dense(output_dim, name="embedding")(hidden)
        if normalize:
            outputs = keras.layers.UnitNormalization(name="l2_normalize")(outputs)
        super().__init__(
            inputs=inputs, outputs=outputs, name=name, dtype=dtype, trainable=trainable
        )
        self.set_init_config(
            features=features,
            output_dim=output_dim,
            normalize=normalize,
            mixer=_serialized_mixer(mixer),
            **{
                key: value
                for key, value in _stored_options(mixer, config).items()
                if key not in _MULTITASK_OPTIONS
            },
        )

    @classmethod
    def from_config(cls, config: dict) -> Self:
        # Towers saved before the arguments were explicit stored the (unused) multi-task options.
        config = {key: value for key, value in config.items() if key not in _MULTITASK_OPTIONS}
        return super().from_config(config)
