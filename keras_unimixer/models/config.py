"""`ModelConfig`: every model option in one place.

`RankingModel`, `Tower`, the baselines and `build_model` read their options from it, the
experiments' `TrainConfig` extends it with the data and training options, and the command line's
model options are its fields, so an option exists once. Which architecture uses an
option is known from the mixer registry (`keras_unimixer.layers.mixing.register_mixer`) and from
`BASELINE_OPTIONS`.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class ModelConfig:
    """The options of every model of the package (each architecture reads its own).

    Attributes:
        model: a registered mixer (`keras_unimixer.layers.mixing.mixer_names()`) or a baseline.
        num_layers: encoder blocks (mixers).
        num_tokens: tokens `T` of the `"rankmixer"` tokenizer.
        token_dim: token width `D`.
        embedding_dim: feature embedding size.
        block_size: UniMixing block size `b` (default: the divisor of `T * D` nearest its root).
        num_heads: attention heads (attention, HiFormer).
        num_basis: UniMixing-Lite basis matrices.
        rank: UniMixing-Lite global rank, or `"full"` (an unfactorized global matrix).
        ffn_multiplier: per-token FFN width as a multiple of `D`.
        ffn_activation: `"swiglu"` or `"gelu"` (default: the mixer's).
        norm: `"siamese"`, `"post"` or `"pre"` (default: the mixer's).
        siamese_scope: SiameseNorm per `"sublayer"` or per `"block"`.
        block_dropout: dropout on the mixing and FFN branches inside every encoder block.
        tokenizer_mode: `"rankmixer"`, `"field"` or `"group"`.
        pooling: `"mean"` over tokens or `"flatten"`.
        hidden_units: MLP sizes (the head of a mixer model; the deep part of a baseline).
        heads: multi-task heads of a mixer model: `"independent"` (one MLP, a linear head per
            task), `"mmoe"` or `"ple"` (gated experts; `keras_unimixer.models.multitask`).
        num_experts: MMoE experts, or PLE experts per task.
        expert_units: hidden sizes of each expert MLP.
        dropout: MLP dropout.
        batch_norm: batch normalization in the MLP.
        embedding_l2: adds `(embedding_l2 / 2) * ||E||^2` over the embedding tables to the loss.
        embedding_init_stddev: normal embedding initialization (`None`: Keras' uniform).
        embedding: `"dense"` tables, or `"distributed"` (one keras-rs `DistributedEmbedding`).
        temperature: initial UniMixing temperature.
        sinkhorn_iterations: differentiable UniMixing Sinkhorn rounds.
        mixing_options: further UniMixing / UniMixing-Lite constructor arguments.
        num_cross_layers: DCNv2 cross layers.
    """

    model: str = "unimixer_lite"
    num_layers: int = 2
    num_tokens: int = 8
    token_dim: int = 32
    embedding_dim: int = 16
    block_size: int | None = None
    num_heads: int | None = None
    num_basis: int = 4
    rank: int | str = 4
    ffn_multiplier: int = 2
    ffn_activation: str | None = None
    norm: str | None = None
    siamese_scope: str = "sublayer"
    block_dropout: float = 0.0
    tokenizer_mode: str = "rankmixer"
    pooling: str = "mean"
    hidden_units: tuple = (64,)
    heads: str = "independent"
    num_experts: int = 4
    expert_units: tuple = (64,)
    dropout: float = 0.0
    batch_norm: bool = False
    embedding_l2: float = 0.0
    embedding_init_stddev: float | None = None
    embedding: str = "dense"
    temperature: float | None = 1.0
    sinkhorn_iterations: int = 10
    mixing_options: dict = dataclasses.field(default_factory=dict)
    num_cross_layers: int | None = None

    def model_options(self) -> dict:
        """The model fields only (not `model`), as `RankingModel` keyword arguments."""
        return {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(ModelConfig)
            if field.name != "model"
        }


MODEL_OPTIONS = tuple(f.name for f in dataclasses.fields(ModelConfig) if f.name != "model")
# Options of the encoder and head that every mixer architecture reads.
ENCODER_OPTIONS = (
    "num_layers",
    "num_tokens",
    "token_dim",
    "embedding_dim",
    "ffn_multiplier",
    "ffn_activation",
    "norm",
    "siamese_scope",
    "block_dropout",
    "tokenizer_mode",
    "pooling",
    "hidden_units",
    "dropout",
    "batch_norm",
    "embedding_l2",
    "embedding_init_stddev",
    "heads",
    "num_experts",
    "expert_units",
    "embedding",
)
_DEEP = (
    "embedding_dim",
    "hidden_units",
    "dropout",
    "batch_norm",
    "embedding_l2",
    "embedding_init_stddev",
)
BASELINE_OPTIONS = {
    "logistic_regression": (),
    "dnn": _DEEP,
    "deepfm": _DEEP,
    "dcnv2": _DEEP + ("num_cross_layers",),
    "finalmlp": ("embedding_dim", "dropout", "batch_norm", "embedding_l2", "embedding_init_stddev"),
}
