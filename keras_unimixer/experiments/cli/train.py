"""`keras_unimixer train`: one training run; its flags are `TrainConfig`'s fields
(`--num-layers` sets `num_layers`), with the dataset's protocol under them and the defaults under
that."""

from __future__ import annotations

import argparse
import dataclasses
import json

from keras_unimixer.experiments.cli.arguments import (
    dataset_name,
    field_help,
    float_or_none,
    int_list,
    json_object,
    positive_int,
    rank_or_full,
)
from keras_unimixer.experiments.training import TEMPERATURE_SCHEDULES, TrainConfig
from keras_unimixer.layers.encoder import NORM_STYLES, SIAMESE_SCOPES
from keras_unimixer.layers.tokenizer import EMBEDDINGS, TOKENIZER_MODES
from keras_unimixer.models.ranking import POOLINGS
from keras_unimixer.optimizers import TABLE_OPTIMIZERS


def flag(field: str) -> str:
    """The command-line flag of a `TrainConfig` field: `num_layers` -> `--num-layers`."""
    return "--" + field.replace("_", "-")


def add_model_arguments(parser):
    from keras_unimixer.models import model_names

    group = parser.add_argument_group("model")

    def option(name, text, **kwargs):
        group.add_argument(
            flag(name), dest=name, default=None, help=field_help(text, name), **kwargs
        )

    option("model", "architecture", choices=model_names())
    option("num_layers", "mixer blocks", type=positive_int)
    option("num_tokens", "tokens T (rankmixer tokenizer)", type=positive_int)
    option("token_dim", "token width D", type=positive_int)
    option("embedding_dim", "feature embedding size", type=positive_int)
    option("block_size", "UniMixing block size b", type=positive_int)
    option("num_heads", "attention heads", type=positive_int)
    option("num_basis", "UniMixing-Lite basis matrices", type=positive_int)
    option("rank", "UniMixing-Lite global rank, or full", type=rank_or_full)
    option(
        "sinkhorn_iterations",
        "differentiable Sinkhorn rounds after the balancing phase (UniMixing, Lite)",
        type=positive_int,
    )
    option("ffn_multiplier", "per-token FFN width", type=positive_int)
    option("norm", "residual norm (default per mixer)", choices=NORM_STYLES)
    option("siamese_scope", "SiameseNorm per", choices=SIAMESE_SCOPES)
    option("block_dropout", "dropout on the mixing and FFN branches in every block", type=float)
    option(
        "mixing_options",
        'further UniMixing / Lite arguments as JSON, e.g. \'{"normalization": "l2"}\'',
        type=json_object,
    )
    option("tokenizer_mode", "tokenizer", choices=TOKENIZER_MODES)
    option("pooling", "token pooling before the head", choices=POOLINGS)
    option("hidden_units", "MLP sizes, e.g. 400,400", type=int_list)
    option("dropout", "MLP dropout", type=float)
    option("batch_norm", "batch norm in the MLP", action=argparse.BooleanOptionalAction)
    option(
        "embedding_l2",
        "adds (l2 / 2) ||E||^2 over the tables to the loss; with a row-sparse "
        "--embedding-optimizer, (l2 / 2) ||E_r||^2 of each row a step looks up (in the optimizer)",
        type=float,
    )
    option(
        "embedding_init_stddev",
        "normal embedding init (none: uniform)",
        type=float_or_none,
    )
    option(
        "embedding",
        "embedding tables: dense weights, or one keras-rs DistributedEmbedding (SparseCore)",
        choices=EMBEDDINGS,
    )
    option("num_cross_layers", "DCNv2 cross layers", type=positive_int)
    option("heads", "multi-task heads", choices=("independent", "mmoe", "ple"))
    option("num_experts", "MMoE experts (PLE: per task)", type=positive_int)
    option("expert_units", "expert MLP sizes, e.g. 64,64", type=int_list)


def add_arguments(parser):
    from keras_unimixer.datasets import DATASETS

    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        type=dataset_name,
        default=None,
        help=field_help(
            f"one of {', '.join(DATASETS)}, or a description file PATH.yaml", "dataset"
        ),
    )
    data.add_argument(
        "--data-dir", default=None, help="dataset folder (default: $KERAS_UNIMIXER_DATA)"
    )
    data.add_argument(
        "--split", choices=("random", "time"), default=None, help=field_help("split", "split")
    )
    data.add_argument("--tasks", default=None, help="comma-separated label names (default: click)")
    data.add_argument(
        "--max-examples", type=positive_int, default=None, help="use at most this many rows"
    )
    add_model_arguments(parser)
    run = parser.add_argument_group("training")

    def option(name, text, **kwargs):
        run.add_argument(flag(name), dest=name, default=None, help=field_help(text, name), **kwargs)

    option("epochs", "epoch budget", type=positive_int)
    option("batch_size", "batch size", type=positive_int)
    option("learning_rate", "Adam learning rate", type=float)
    option(
        "embedding_optimizer",
        "train the embedding tables with this optimizer instead of Adam (RankMixer: adagrad); "
        "sgd, adagrad, rowwise_adagrad and adam (lazy) update only the rows a batch looked up",
        choices=TABLE_OPTIMIZERS,
    )
    option(
        "embedding_learning_rate",
        "learning rate of --embedding-optimizer (none: --learning-rate)",
        type=float,
    )
    option("weight_decay", "decoupled weight decay (AdamW) of the dense variables", type=float)
    option(
        "embedding_weight_decay",
        "decoupled weight decay of the embedding tables (none: --weight-decay)",
        type=float_or_none,
    )
    option("gradient_clip_norm", "clip all gradients to this global norm", type=float_or_none)
    option("patience", "early-stopping patience (validation AUC)", type=int)
    option(
        "reduce_lr_on_plateau",
        "learning rate x0.1 on a plateau",
        action=argparse.BooleanOptionalAction,
    )
    option("temperature_start", "UniMixing temperature at step 0", type=float)
    option("temperature_end", "temperature after annealing", type=float)
    option(
        "temperature_schedule",
        "anneal start->end, warmup (two stages: start, then end), or constant",
        choices=TEMPERATURE_SCHEDULES,
    )
    option(
        "anneal_epochs",
        "annealing horizon in epochs, capped at the budget (none: the whole budget)",
        type=float_or_none,
    )
    run.add_argument(
        "--no-anneal", action="store_true", help="same as --temperature-schedule constant"
    )
    option("seed", "seed of initialization and shuffling", type=int)
    option(
        "negatives",
        "implicit feedback: keep the first task's positives, sample this many negatives each",
        type=int,
    )
    option(
        "negative_sampling",
        "how negatives are drawn",
        choices=("uniform", "popularity"),
    )
    option(
        "mixed_precision",
        "mixed_bfloat16 (UniMixing constraints stay fp32)",
        action=argparse.BooleanOptionalAction,
    )
    option(
        "eval_every_examples",
        "exact validation metrics every this many training examples too (a learning curve "
        "inside an epoch; metrics.json history curve_*)",
        type=positive_int,
    )
    option(
        "output",
        "run directory",
    )
    run.add_argument(
        "--resume", action="store_true", help="continue from OUTPUT/checkpoint if present"
    )
    run.add_argument("--overwrite", action="store_true", help="replace a run already in OUTPUT")
    run.add_argument(
        "--verbose", type=int, choices=(0, 1, 2), default=None, help="Keras fit verbosity"
    )


def config_from_args(args) -> TrainConfig:
    """A `TrainConfig` from parsed arguments: the options given, then the dataset's benchmark
    protocol for the model, then `TrainConfig`'s defaults (argparse destinations are its field
    names)."""
    from keras_unimixer.models.options import check_options_apply

    values = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(TrainConfig)
        if getattr(args, field.name, None) is not None
    }
    check_options_apply(values.get("model", TrainConfig.model), values)
    if args.tasks is not None:
        values["tasks"] = tuple(t for t in args.tasks.split(",") if t)
    if args.no_anneal:
        values["temperature_schedule"] = "constant"
    values.update(
        resume=args.resume,
        overwrite=args.overwrite,
        verbose="auto" if args.verbose is None else args.verbose,
    )
    return TrainConfig.from_protocol(**values)


def run(args) -> int:
    from keras_unimixer.experiments.training import train

    config = config_from_args(args)
    metrics = train(config)
    summary = {
        "test": metrics["test"],
        "parameters": metrics["parameters"],
        "flops_per_example": metrics["flops_per_example"],
        "train_examples_per_second": round(metrics["train_examples_per_second"] or 0.0, 1),
        "output": config.output,
    }
    print(json.dumps(summary, indent=1))
    return 0
