"""Benchmark protocols: per dataset, the training settings a benchmark uses (and, per model, its
sizes), applied where a run sets nothing.

`frappe_x1` follows the BARS protocol (embedding 10, batch 4096, Adam 1e-3, early stopping on
validation AUC with patience 2, learning rate x0.1 on a plateau, embedding L2 0.05 with
normal(1e-4) initialization), with each baseline at the size and dropout of BARS's best
configuration for it; the UniMixer-family entries are this package's choices, made on Frappe_x1's
validation split only (`benchmarks/frappe_x1.py` and its results file say how).

`movielens` is the budget of `benchmarks/movielens_models.py` (up to 10 epochs, batch 512, Adam
1e-3, early stopping on validation AUC with patience 2), with the token mixers' sizes chosen by
`benchmarks/movielens_search.py` on validation AUC only.
"""

from __future__ import annotations

_FRAPPE_COMMON = {
    "embedding_dim": 10,
    "batch_size": 4096,
    "learning_rate": 1e-3,
    "epochs": 100,
    "patience": 2,
    "reduce_lr_on_plateau": True,
    "embedding_l2": 0.05,
    "embedding_init_stddev": 1e-4,
}
_BARS_MLP = {"hidden_units": (400, 400, 400), "batch_norm": True}
_FRAPPE_MIXER = {
    "tokenizer_mode": "field",
    "hidden_units": (400, 400, 400),
    "batch_norm": True,
    "temperature_schedule": "anneal",
    "anneal_epochs": 4.0,
}
# Each mixer's best of the same sampled settings by validation AUC (seed 0; benchmarks/results/
# frappe_x1_search_h200_jax.jsonl, `benchmarks/frappe_x1.py search`); test AUC played no part.
_WIDE_PRE_NORM = {
    "norm": "pre",
    "embedding_dim": 32,
    "token_dim": 80,
    "num_layers": 2,
    "pooling": "mean",
    "dropout": 0.1,
    "ffn_multiplier": 2,
}
_FRAPPE_MODELS = {
    "logistic_regression": {},
    "dnn": {**_BARS_MLP, "dropout": 0.2},
    "deepfm": {**_BARS_MLP, "dropout": 0.2},
    "dcnv2": {**_BARS_MLP, "dropout": 0.4, "num_cross_layers": 4},
    "finalmlp": {"dropout": 0.4, "batch_norm": True},
    "unimixer_lite": {
        **_FRAPPE_MIXER,
        "norm": "post",
        "embedding_dim": 16,
        "token_dim": 80,
        "num_layers": 3,
        "pooling": "flatten",
        "dropout": 0.1,
        "ffn_multiplier": 4,
        # The paper's two-stage warm-up: validation AUC 0.9850 +- 0.0004 against annealing's
        # 0.9832 +- 0.0006 (3 seeds; benchmarks/results/frappe_x1_lite_warmup_tensorflow.md).
        "temperature_schedule": "warmup",
    },
    "unimixer": {**_FRAPPE_MIXER, **_WIDE_PRE_NORM},
    "rankmixer": {**_FRAPPE_MIXER, **_WIDE_PRE_NORM},
    "attention": {**_FRAPPE_MIXER, **_WIDE_PRE_NORM},
    "fm": {**_FRAPPE_MIXER, **_WIDE_PRE_NORM},
}
# MovieLens 100K as `benchmarks/movielens_models.py` trains every model: up to 10 epochs with
# early stopping on validation AUC (the runs stop after 3-7).
_MOVIELENS_COMMON = {"epochs": 10, "patience": 2, "batch_size": 512, "learning_rate": 1e-3}
# Each mixer's best of the same sampled settings by mean validation AUC over seeds 1-3
# (benchmarks/results/movielens_search_jax.jsonl, `benchmarks/movielens_search.py`).
# RankMixer's fixed transpose needs `token_dim` divisible by the 10 field tokens, so it could not
# run the search's field-tokenizer settings; it chose among the other three.
_ONE_WIDE_FIELD_LAYER = {
    "tokenizer_mode": "field",
    "num_layers": 1,
    "token_dim": 64,
    "ffn_multiplier": 4,
    "dropout": 0.2,
    "block_dropout": 0.1,
    "embedding_weight_decay": None,
}
_MOVIELENS_MODELS = {
    "unimixer_lite": _ONE_WIDE_FIELD_LAYER,
    "unimixer": _ONE_WIDE_FIELD_LAYER,
    "rankmixer": {
        "tokenizer_mode": "rankmixer",
        "num_layers": 2,
        "token_dim": 64,
        "ffn_multiplier": 2,
        "dropout": 0.0,
        "block_dropout": 0.1,
        "embedding_weight_decay": 0.01,
    },
}
MODEL_PROTOCOLS = {
    "frappe_x1": {model: {**_FRAPPE_COMMON, **values} for model, values in _FRAPPE_MODELS.items()},
    "movielens": {
        model: {**_MOVIELENS_COMMON, **values} for model, values in _MOVIELENS_MODELS.items()
    },
}


# The training protocol of each benchmark dataset, without any model's sizes (what a scaling ladder
# takes from a benchmark while it chooses the sizes itself, and what a model without sizes of its
# own trains with).
PROTOCOLS = {"frappe_x1": _FRAPPE_COMMON, "movielens": _MOVIELENS_COMMON}


def training_protocol(dataset: str) -> dict:
    """The protocol's training settings of `dataset` that are not a model's (empty if none)."""
    return dict(PROTOCOLS.get(dataset, {}))


def model_protocol(dataset: str, model: str) -> dict:
    """`TrainConfig` values of the protocol of `(dataset, model)`: the dataset's training settings
    and the model's sizes (empty if the dataset has no protocol)."""
    return {**training_protocol(dataset), **MODEL_PROTOCOLS.get(dataset, {}).get(model, {})}
