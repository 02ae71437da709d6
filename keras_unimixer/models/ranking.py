"""`RankingModel`: tokenizer -> UniMixerEncoder -> mean over tokens -> MLP -> one logit per task."""

from __future__ import annotations

import math

import keras

from keras_unimixer.datasets.schema import features_from_config
from keras_unimixer.layers import (
    AttentionMixing,
    FeatureTokenizer,
    FMMixing,
    TokenMixing,
    UniMixerEncoder,
    UniMixing,
    UniMixingLite,
)
from keras_unimixer.layers.validation import check_choice, check_positive_int, divisors
from keras_unimixer.models.common import (
    ConfiguredModel,
    check_dropout,
    check_tasks,
    embedding_options,
    feature_inputs,
    mlp,
    task_heads,
)

MIXERS = ("unimixer", "unimixer_lite", "rankmixer", "attention", "fm")
DEFAULT_NORM = {
    "unimixer": "siamese",
    "unimixer_lite": "siamese",
    "rankmixer": "post",
    "attention": "pre",
    "fm": "pre",
}
DEFAULT_FFN_ACTIVATION = {"rankmixer": "gelu"}
POOLINGS = ("mean", "flatten")


def default_block_size(num_tokens: int, token_dim: int) -> int:
    """The divisor of `T * D` closest to `sqrt(T * D)`, where UniMixing's FLOPs are smallest."""
    flat_size = num_tokens * token_dim
    return min(divisors(flat_size), key=lambda b: (abs(math.log(b / math.sqrt(flat_size))), b))


def make_mixing(
    mixer: str,
    num_tokens: int,
    token_dim: int,
    block_size: int | None = None,
    num_heads: int | None = None,
    num_basis: int = 4,
    rank: int = 4,
    temperature: float | None = 1.0,
    sinkhorn_iterations: int = 10,
    mixing_options: dict | None = None,
):
    """The mixing layer of a named architecture, with valid defaults for `(T, D)`.

    `mixing_options` passes further UniMixing / UniMixing-Lite arguments (`symmetric`,
    `block_specific`, `constrain_local`, ...; the ablations of `scale`).
    """
    check_choice("mixer", mixer, MIXERS)
    options = dict(mixing_options or {})
    if options and mixer not in ("unimixer", "unimixer_lite"):
        raise ValueError(
            f"`mixing_options` {sorted(options)} apply to mixer 'unimixer' or 'unimixer_lite' "
            f"only, got mixer={mixer!r}."
        )
    allowed = UNIMIXING_OPTIONS[mixer] if options else ()
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"`mixing_options` has keys {unknown} that mixer {mixer!r} does not take; valid: "
            f"{sorted(allowed)}."
        )
    if mixer == "rankmixer":
        if token_dim % num_tokens:
            raise ValueError(
                f"mixer='rankmixer' splits each token into num_heads = num_tokens = {num_tokens} "
                f"heads, so `token_dim`={token_dim} must be a multiple of {num_tokens}."
            )
        return TokenMixing(num_heads=num_tokens)
    if mixer == "attention":
        return AttentionMixing(num_heads=num_heads or _default_heads(token_dim))
    if mixer == "fm":
        return FMMixing()
    block_size = block_size or default_block_size(num_tokens, token_dim)
    if mixer == "unimixer":
        return UniMixing(
            block_size=block_size,
            temperature=temperature,
            sinkhorn_iterations=sinkhorn_iterations,
            **options,
        )
    num_blocks = num_tokens * token_dim // block_size if block_size else 0
    return UniMixingLite(
        block_size=block_size,
        num_basis=num_basis,
        rank=min(rank, max(num_blocks, 1)),
        temperature=temperature,
        sinkhorn_iterations=sinkhorn_iterations,
        **options,
    )


UNIMIXING_OPTIONS = {
    "unimixer": (
        "symmetric",
        "block_specific",
        "constrain_local",
        "global_init",
        "local_init",
        "init_scale",
        "init_stddev",
        "sinkhorn_tolerance",
        "sinkhorn_max_iterations",
    ),
    "unimixer_lite": (
        "symmetric",
        "constrain_local",
        "local_init",
        "global_init",
        "init_scale",
        "init_stddev",
        "sinkhorn_tolerance",
        "sinkhorn_max_iterations",
    ),
}


def _default_heads(token_dim: int) -> int:
    return max(h for h in divisors(token_dim) if h <= 4)


def encode_features(
    features,
    mixer,
    num_layers,
    num_tokens,
    token_dim,
    embedding_dim,
    block_size,
    num_heads,
    num_basis,
    rank,
    ffn_multiplier,
    ffn_activation,
    norm,
    tokenizer_mode,
    temperature,
    sinkhorn_iterations,
    mixing_options=None,
    embedding_l2=0.0,
    embedding_init_stddev=None,
    pooling="mean",
    siamese_scope="sublayer",
):
    """Typed inputs and the pooled encoding: tokenizer -> encoder -> token mean (or flatten)."""
    check_choice("mixer", mixer, MIXERS)
    inputs = feature_inputs(features)
    tokenizer = FeatureTokenizer(
        features,
        embedding_dim=embedding_dim,
        token_dim=token_dim,
        num_tokens=num_tokens,
        mode=tokenizer_mode,
        name="tokenizer",
        **embedding_options(embedding_l2, embedding_init_stddev),
    )
    mixing = make_mixing(
        mixer,
        tokenizer.num_tokens,
        token_dim,
        block_size=block_size,
        num_heads=num_heads,
        num_basis=num_basis,
        rank=rank,
        temperature=temperature,
        sinkhorn_iterations=sinkhorn_iterations,
        mixing_options=mixing_options,
    )
    encoder = UniMixerEncoder(
        num_layers=num_layers,
        mixing=mixing,
        ffn_multiplier=ffn_multiplier,
        ffn_activation=ffn_activation or DEFAULT_FFN_ACTIVATION.get(mixer, "swiglu"),
        norm=norm or DEFAULT_NORM[mixer],
        siamese_scope=siamese_scope,
        name="encoder",
    )
    check_choice("pooling", pooling, POOLINGS)
    encoded = encoder(tokenizer(inputs))
    if pooling == "flatten":
        return inputs, keras.layers.Flatten(name="token_concat")(encoded)
    return inputs, keras.layers.GlobalAveragePooling1D(name="token_mean")(encoded)


@keras.saving.register_keras_serializable(package="keras_unimixer")
class RankingModel(ConfiguredModel):
    """A ranking (CTR) model of the UniMixer family: one class for all five mixers.

    `FeatureTokenizer` -> `UniMixerEncoder(mixing)` -> mean over tokens -> ReLU MLP -> one logit per
    task. `mixer` picks the architecture: `"unimixer"` (UniMixing + SiameseNorm), `"unimixer_lite"`
    (UniMixing-Lite + SiameseNorm), `"rankmixer"` (TokenMixing(T) + post-norm + GELU FFN),
    `"attention"` (multi-head self-attention + pre-norm) or `"fm"` (Wukong-style + pre-norm).

    Args:
        features: the dataset's `FeatureSpec`s (or dicts).
        mixer: one of `"unimixer"`, `"unimixer_lite"`, `"rankmixer"`, `"attention"`, `"fm"`.
        num_layers: depth `L` of the encoder.
        num_tokens: tokens `T` (RankMixer tokenization; fields/groups in the other modes).
        token_dim: width `D` of each token.
        embedding_dim: size of each feature embedding.
        block_size: UniMixing block size (default: the divisor of `T * D` nearest `sqrt(T * D)`).
        num_heads: attention heads (default: largest divisor of `D` up to 4).
        num_basis: UniMixing-Lite basis matrices.
        rank: UniMixing-Lite global rank (capped at the number of blocks).
        ffn_multiplier: per-token FFN width multiplier.
        ffn_activation: `"swiglu"` or `"gelu"` (default: GELU for RankMixer, SwiGLU otherwise).
        norm: `"siamese"`, `"post"` or `"pre"` (default: per mixer, see above).
        tokenizer_mode: `"rankmixer"`, `"field"` or `"group"`.
        hidden_units: sizes of the MLP between the pooled tokens and the task logits.
        tasks: label names; one logit output per task (a dict when there are several).
        temperature: initial UniMixing temperature (anneal it with `TemperatureAnnealing`).
        sinkhorn_iterations: UniMixing Sinkhorn rounds.
        mixing_options: further UniMixing arguments (`symmetric`, `block_specific`, ...).
        pooling: `"mean"` over tokens (RankMixer, UniMixer) or `"flatten"` (concatenate them).
        siamese_scope: SiameseNorm around each sublayer (`"sublayer"`) or each block (`"block"`).
        head_dropout: dropout after every hidden layer of the head MLP.
        head_batch_norm: batch normalization in every hidden layer of the head MLP.
        embedding_l2: adds `(embedding_l2 / 2) * ||E||^2` over the embedding tables to the loss.
        embedding_init_stddev: normal embedding initialization; `None` for Keras' uniform.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Example:
    >>> from keras_unimixer import datasets, models
    >>> data = datasets.make_synthetic(num_examples=1000)
    >>> model = models.RankingModel(data.features, mixer="unimixer_lite", num_tokens=8,
    ...                             token_dim=16)
    >>> features, labels = data.arrays("train")
    >>> model.predict(features, verbose=0).shape
    (800, 1)
    """

    def __init__(
        self,
        features,
        mixer: str = "unimixer_lite",
        num_layers: int = 2,
        num_tokens: int = 8,
        token_dim: int = 32,
        embedding_dim: int = 16,
        block_size: int | None = None,
        num_heads: int | None = None,
        num_basis: int = 4,
        rank: int = 4,
        ffn_multiplier: int = 2,
        ffn_activation: str | None = None,
        norm: str | None = None,
        tokenizer_mode: str = "rankmixer",
        hidden_units=(64,),
        tasks=("click",),
        temperature: float | None = 1.0,
        sinkhorn_iterations: int = 10,
        mixing_options: dict | None = None,
        head_dropout: float = 0.0,
        head_batch_norm: bool = False,
        embedding_l2: float = 0.0,
        embedding_init_stddev: float | None = None,
        pooling: str = "mean",
        siamese_scope: str = "sublayer",
        **kwargs,
    ):
        features = features_from_config(features)
        tasks = check_tasks(tasks)
        check_dropout(head_dropout)
        inputs, pooled = encode_features(
            features, mixer, num_layers, num_tokens, token_dim, embedding_dim, block_size,
            num_heads, num_basis, rank, ffn_multiplier, ffn_activation, norm, tokenizer_mode,
            temperature, sinkhorn_iterations, mixing_options, embedding_l2, embedding_init_stddev,
            pooling, siamese_scope,
        )  # fmt: skip
        head = mlp(pooled, hidden_units, "head", head_dropout, head_batch_norm)
        outputs = task_heads(head, tasks)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.set_init_config(
            features=features,
            mixer=mixer,
            num_layers=num_layers,
            num_tokens=num_tokens,
            token_dim=token_dim,
            embedding_dim=embedding_dim,
            block_size=block_size,
            num_heads=num_heads,
            num_basis=num_basis,
            rank=rank,
            ffn_multiplier=ffn_multiplier,
            ffn_activation=ffn_activation,
            norm=norm,
            tokenizer_mode=tokenizer_mode,
            hidden_units=list(hidden_units),
            tasks=tasks,
            temperature=temperature,
            sinkhorn_iterations=sinkhorn_iterations,
            mixing_options=dict(mixing_options or {}),
            head_dropout=float(head_dropout),
            head_batch_norm=bool(head_batch_norm),
            embedding_l2=float(embedding_l2),
            embedding_init_stddev=embedding_init_stddev,
            pooling=pooling,
            siamese_scope=siamese_scope,
        )


@keras.saving.register_keras_serializable(package="keras_unimixer")
class Tower(ConfiguredModel):
    """An embedding tower of the UniMixer family, for two-tower retrieval or as a ranking tower.

    `FeatureTokenizer` -> `UniMixerEncoder(mixing)` -> mean over tokens -> ReLU MLP -> a linear
    layer to `output_dim` (optionally L2-normalized). Arguments as `RankingModel`, plus:

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
        self,
        features,
        output_dim: int = 32,
        normalize: bool = False,
        mixer: str = "unimixer_lite",
        num_layers: int = 2,
        num_tokens: int = 8,
        token_dim: int = 32,
        embedding_dim: int = 16,
        block_size: int | None = None,
        num_heads: int | None = None,
        num_basis: int = 4,
        rank: int = 4,
        ffn_multiplier: int = 2,
        ffn_activation: str | None = None,
        norm: str | None = None,
        tokenizer_mode: str = "rankmixer",
        hidden_units=(64,),
        temperature: float | None = 1.0,
        sinkhorn_iterations: int = 10,
        **kwargs,
    ):
        features = features_from_config(features)
        check_positive_int("output_dim", output_dim)
        inputs, pooled = encode_features(
            features, mixer, num_layers, num_tokens, token_dim, embedding_dim, block_size,
            num_heads, num_basis, rank, ffn_multiplier, ffn_activation, norm, tokenizer_mode,
            temperature, sinkhorn_iterations,
        )  # fmt: skip
        outputs = keras.layers.Dense(output_dim, name="embedding")(
            mlp(pooled, hidden_units, "head")
        )
        if normalize:
            outputs = keras.layers.UnitNormalization(name="l2_normalize")(outputs)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.set_init_config(
            features=features, output_dim=output_dim, normalize=normalize, mixer=mixer,
            num_layers=num_layers, num_tokens=num_tokens, token_dim=token_dim,
            embedding_dim=embedding_dim, block_size=block_size, num_heads=num_heads,
            num_basis=num_basis, rank=rank, ffn_multiplier=ffn_multiplier,
            ffn_activation=ffn_activation, norm=norm, tokenizer_mode=tokenizer_mode,
            hidden_units=list(hidden_units), temperature=temperature,
            sinkhorn_iterations=sinkhorn_iterations,
        )  # fmt: skip
