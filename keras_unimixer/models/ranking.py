"""`RankingModel` and `Tower`: tokenizer -> UniMixerEncoder(mixer) -> pooling -> MLP."""

from __future__ import annotations

import keras

from keras_unimixer.features import features_from_config
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
from keras_unimixer.utils.validation import check_choice, check_positive_int

POOLINGS = ("mean", "flatten")
_KERAS_ARGUMENTS = ("name", "dtype", "trainable")


def _mixing_layer(mixer):
    """`mixer` as a layer when it is one (or its serialized config), else None (a name)."""
    if isinstance(mixer, keras.layers.Layer):
        return mixer
    if isinstance(mixer, dict):
        return keras.saving.deserialize_keras_object(mixer)
    return None


def mixer_options(mixer) -> tuple:
    """The model options an architecture reads: the encoder's, plus the mixer's own."""
    if _mixing_layer(mixer) is not None:
        return ENCODER_OPTIONS
    return ENCODER_OPTIONS + get_mixer(mixer).options


def split_model_arguments(mixer, arguments: dict) -> tuple[ModelConfig, dict]:
    """`(ModelConfig, keras.Model keyword arguments)` from a model constructor's `**arguments`;
    options the mixer does not read are refused (a `None` value counts as unset)."""
    keras_arguments = {k: v for k, v in arguments.items() if k in _KERAS_ARGUMENTS}
    options = {k: v for k, v in arguments.items() if k not in _KERAS_ARGUMENTS}
    unknown = sorted(set(options) - set(MODEL_OPTIONS))
    if unknown:
        raise TypeError(f"Unknown model options {unknown}; valid: {sorted(MODEL_OPTIONS)}.")
    readable = mixer_options(mixer)
    unused = sorted(k for k, v in options.items() if k not in readable and v is not None)
    if unused:
        name = mixer if isinstance(mixer, str) else type(_mixing_layer(mixer)).__name__
        raise ValueError(f"Mixer {name!r} does not use {unused}; it reads: {sorted(readable)}.")
    return ModelConfig(**options), keras_arguments


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


def encode_features(features, mixer, config: ModelConfig):
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
    def from_config(cls, config):
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
        features: the dataset's `FeatureSpec`s (or dicts).
        mixer: a registered mixer name or a mixing layer.
        tasks: label names; one output per task (a dict when there are several).
        **options: `keras_unimixer.models.ModelConfig` fields read by this mixer (the encoder's
            and head's options, plus the mixer's own, e.g. `block_size` for UniMixing,
            `num_heads` for attention), and `keras.Model` arguments (`name`, ...).

    Example:
    >>> from keras_unimixer import datasets, models
    >>> data = datasets.make_synthetic(num_examples=1000)
    >>> model = models.RankingModel(data.features, mixer="unimixer_lite", num_tokens=8,
    ...                             token_dim=16)
    >>> features, labels = data.arrays("train")
    >>> model.predict(features, verbose=0).shape
    (800, 1)
    """

    def __init__(self, features, mixer="unimixer_lite", tasks=("click",), **options):
        features = features_from_config(features)
        tasks = check_tasks(tasks)
        config, keras_arguments = split_model_arguments(mixer, options)
        check_dropout(config.dropout)
        inputs, pooled = encode_features(features, mixer, config)
        outputs = multitask_heads(
            pooled, tasks, config.heads, config.num_experts, config.expert_units,
            config.hidden_units,
            lambda x: mlp(x, config.hidden_units, "head", config.dropout, config.batch_norm),
        )  # fmt: skip
        super().__init__(inputs=inputs, outputs=outputs, **keras_arguments)
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
    `output_dim` (optionally L2-normalized). Arguments as `RankingModel`, plus:

    Args:
        output_dim: size of the output embedding (1 for a scalar score such as a rating).
        normalize: L2-normalize the output (cosine-similarity retrieval).

    Example:
    >>> from keras_unimixer import datasets, models
    >>> data = datasets.make_synthetic(num_examples=500)
    >>> user = [f for f in data.features if f.group == "user"]
    >>> tower = models.Tower(user, output_dim=16, num_tokens=4, token_dim=16)
    >>> tower.predict({f.name: data.arrays("test")[0][f.name] for f in user}, verbose=0).shape
    (50, 16)
    """

    def __init__(
        self, features, output_dim: int = 32, normalize: bool = False, mixer="unimixer_lite",
        **options,
    ):  # fmt: skip
        features = features_from_config(features)
        check_positive_int("output_dim", output_dim)
        config, keras_arguments = split_model_arguments(mixer, options)
        check_dropout(config.dropout)
        if config.heads != "independent":
            raise ValueError("A Tower has one output: `heads` applies to RankingModel only.")
        inputs, pooled = encode_features(features, mixer, config)
        hidden = mlp(pooled, config.hidden_units, "head", config.dropout, config.batch_norm)
        outputs = keras.layers.Dense(output_dim, name="embedding")(hidden)
        if normalize:
            outputs = keras.layers.UnitNormalization(name="l2_normalize")(outputs)
        super().__init__(inputs=inputs, outputs=outputs, **keras_arguments)
        self.set_init_config(
            features=features,
            output_dim=output_dim,
            normalize=normalize,
            mixer=_serialized_mixer(mixer),
            **_stored_options(mixer, config),
        )
