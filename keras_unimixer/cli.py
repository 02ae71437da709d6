"""Command line: `python -m keras_unimixer train|export|tune|scale|inspect ...`."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import sys
from pathlib import Path

from keras_unimixer.layers.encoder import NORM_STYLES, SIAMESE_SCOPES
from keras_unimixer.layers.tokenizer import EMBEDDINGS, TOKENIZER_MODES
from keras_unimixer.models.ranking import POOLINGS
from keras_unimixer.optimizers import TABLE_OPTIMIZERS
from keras_unimixer.training import TEMPERATURE_SCHEDULES, TrainConfig


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _int_list(text):
    values = []
    for part in (part.strip() for part in text.split(",")):
        if not part:
            continue
        if not part.lstrip("-").isdigit() or int(part) < 1:
            raise argparse.ArgumentTypeError(
                f"must be comma-separated positive integers (e.g. 400,400), got {text!r}: "
                f"{part!r} is not one"
            )
        values.append(int(part))
    return tuple(values)


_int_list.__name__ = "list of integers"  # argparse names a type by its function's name


def _dataset(text):
    from keras_unimixer.datasets import DATASETS, is_description, parse_stream_name

    if text in DATASETS or is_description(text):
        return text
    if text.startswith("synthetic_stream:"):
        try:
            parse_stream_name(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return text
    raise argparse.ArgumentTypeError(
        f"must be one of {', '.join(DATASETS)} or a description file ending in .yaml or .json, "
        f"got {text!r}"
    )


def _float_or_none(text):
    return None if text.lower() == "none" else float(text)


@functools.cache
def _preset_fields() -> frozenset:
    """The `TrainConfig` fields that some dataset preset sets."""
    from keras_unimixer.presets import PRESETS

    return frozenset(
        name for models in PRESETS.values() for values in models.values() for name in values
    )


def _help(text, name):
    """Help text with the default of `TrainConfig` field `name` (and whether a preset sets it)."""
    default = getattr(TrainConfig, name)
    if isinstance(default, tuple):
        default = ",".join(str(v) for v in default)
    preset = "; --dataset frappe_x1 sets it" if name in _preset_fields() else ""
    return f"{text} (default: {default}{preset})"


def add_model_arguments(parser):
    from keras_unimixer.models import model_names

    group = parser.add_argument_group("model")

    def option(flag, name, text, **kwargs):
        group.add_argument(flag, dest=name, default=None, help=_help(text, name), **kwargs)

    option("--model", "model", "architecture", choices=model_names())
    option("--num-layers", "num_layers", "mixer blocks", type=_positive_int)
    option("--num-tokens", "num_tokens", "tokens T (rankmixer tokenizer)", type=_positive_int)
    option("--token-dim", "token_dim", "token width D", type=_positive_int)
    option("--embedding-dim", "embedding_dim", "feature embedding size", type=_positive_int)
    option("--block-size", "block_size", "UniMixing block size b", type=_positive_int)
    option("--num-heads", "num_heads", "attention heads", type=_positive_int)
    option("--num-basis", "num_basis", "UniMixing-Lite basis matrices", type=_positive_int)
    option("--rank", "rank", "UniMixing-Lite global rank", type=_positive_int)
    option(
        "--sinkhorn-iterations", "sinkhorn_iterations",
        "differentiable Sinkhorn rounds after the balancing phase (UniMixing, Lite)",
        type=_positive_int,
    )  # fmt: skip
    option("--ffn-multiplier", "ffn_multiplier", "per-token FFN width", type=_positive_int)
    option("--norm", "norm", "residual norm (default per mixer)", choices=NORM_STYLES)
    option("--siamese-scope", "siamese_scope", "SiameseNorm per", choices=SIAMESE_SCOPES)
    option("--tokenizer-mode", "tokenizer_mode", "tokenizer", choices=TOKENIZER_MODES)
    option("--pooling", "pooling", "token pooling before the head", choices=POOLINGS)
    option("--hidden-units", "hidden_units", "MLP sizes, e.g. 400,400", type=_int_list)
    option("--dropout", "dropout", "MLP dropout", type=float)
    option(
        "--batch-norm", "batch_norm", "batch norm in the MLP", action=argparse.BooleanOptionalAction
    )
    option("--embedding-l2", "embedding_l2", "adds (l2 / 2) ||E||^2 to the loss", type=float)
    option(
        "--embedding-init-stddev", "embedding_init_stddev",
        "normal embedding init (none: uniform)", type=_float_or_none,
    )  # fmt: skip
    option(
        "--embedding", "embedding",
        "embedding tables: dense weights, or one keras-rs DistributedEmbedding (SparseCore)",
        choices=EMBEDDINGS,
    )  # fmt: skip
    option("--num-cross-layers", "num_cross_layers", "DCNv2 cross layers", type=_positive_int)
    option("--heads", "heads", "multi-task heads", choices=("independent", "mmoe", "ple"))
    option("--num-experts", "num_experts", "MMoE experts (PLE: per task)", type=_positive_int)
    option("--expert-units", "expert_units", "expert MLP sizes, e.g. 64,64", type=_int_list)


def add_train_arguments(parser):
    from keras_unimixer.datasets import DATASETS

    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset", type=_dataset, default=None,
        help=_help(f"one of {', '.join(DATASETS)}, or a description file PATH.yaml", "dataset"),
    )  # fmt: skip
    data.add_argument(
        "--data-dir", default=None, help="dataset folder (default: $KERAS_UNIMIXER_DATA)"
    )
    data.add_argument(
        "--split", choices=("random", "time"), default=None, help=_help("split", "split")
    )
    data.add_argument("--tasks", default=None, help="comma-separated label names (default: click)")
    data.add_argument(
        "--max-examples", type=_positive_int, default=None, help="use at most this many rows"
    )
    add_model_arguments(parser)
    run = parser.add_argument_group("training")

    def option(flag, name, text, **kwargs):
        run.add_argument(flag, dest=name, default=None, help=_help(text, name), **kwargs)

    option("--epochs", "epochs", "epoch budget", type=_positive_int)
    option("--batch-size", "batch_size", "batch size", type=_positive_int)
    option("--learning-rate", "learning_rate", "Adam learning rate", type=float)
    option(
        "--embedding-optimizer", "embedding_optimizer",
        "train the embedding tables with this optimizer instead of Adam (RankMixer: adagrad); "
        "sgd, adagrad, rowwise_adagrad and adam (lazy) update only the rows a batch looked up",
        choices=TABLE_OPTIMIZERS,
    )  # fmt: skip
    option(
        "--embedding-learning-rate", "embedding_learning_rate",
        "learning rate of --embedding-optimizer (none: --learning-rate)", type=float,
    )  # fmt: skip
    option("--patience", "patience", "early-stopping patience (validation AUC)", type=int)
    option(
        "--reduce-lr-on-plateau", "reduce_lr_on_plateau", "learning rate x0.1 on a plateau",
        action=argparse.BooleanOptionalAction,
    )  # fmt: skip
    option(
        "--temperature-start", "temperature_start", "UniMixing temperature at step 0", type=float
    )
    option("--temperature-end", "temperature_end", "temperature after annealing", type=float)
    option(
        "--temperature-schedule", "temperature_schedule",
        "anneal start->end, warmup (two stages: start, then end), or constant",
        choices=TEMPERATURE_SCHEDULES,
    )  # fmt: skip
    option(
        "--anneal-epochs", "anneal_epochs",
        "annealing horizon in epochs, capped at the budget (none: the whole budget)",
        type=_float_or_none,
    )  # fmt: skip
    run.add_argument(
        "--no-anneal", action="store_true", help="same as --temperature-schedule constant"
    )
    option("--seed", "seed", "seed of initialization and shuffling", type=int)
    option(
        "--negatives", "negatives",
        "implicit feedback: keep the first task's positives, sample this many negatives each",
        type=int,
    )  # fmt: skip
    option(
        "--negative-sampling", "negative_sampling", "how negatives are drawn",
        choices=("uniform", "popularity"),
    )  # fmt: skip
    option(
        "--mixed-precision", "mixed_precision", "mixed_bfloat16 (UniMixing constraints stay fp32)",
        action=argparse.BooleanOptionalAction,
    )  # fmt: skip
    option(
        "--eval-every-examples", "eval_every_examples",
        "exact validation metrics every this many training examples too (a learning curve "
        "inside an epoch; metrics.json history curve_*)",
        type=_positive_int,
    )  # fmt: skip
    option(
        "--output",
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
    """A `TrainConfig` from parsed arguments: the options given, then the dataset's preset for the
    model, then `TrainConfig`'s defaults (argparse destinations are its field names)."""
    from keras_unimixer.models import check_options_apply

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
    return TrainConfig.from_preset(**values)


def run_train(args) -> int:
    from keras_unimixer.training import train

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


def add_export_arguments(parser):
    parser.add_argument("--model", required=True, help="trained model (.keras)")
    parser.add_argument(
        "--format", choices=("savedmodel", "onnx"), default="savedmodel", dest="export_format",
        help="savedmodel: a TF Serving version folder OUTPUT/<version>; onnx: OUTPUT/model.onnx "
        "(or OUTPUT itself if it ends in .onnx)",
    )  # fmt: skip
    parser.add_argument(
        "--output", required=True, help="model base directory, e.g. saved_models/movielens"
    )
    parser.add_argument(
        "--preprocessing",
        default=None,
        help="the run's preprocessing.json (default: next to --model)",
    )
    parser.add_argument(
        "--version", type=_positive_int, default=None, help="version number (default: next)"
    )
    # Not imported from keras_unimixer.export: building the parser must not load TensorFlow.
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: 17)")


def export_from_args(args) -> dict:
    """Export `args.model` as `args.export_format`; returns what was written."""
    from keras_unimixer import artifacts, export

    model_path = Path(args.model)
    if not model_path.is_file():
        raise FileNotFoundError(f"--model {model_path} does not exist.")
    _check_export_output(Path(args.output), args.export_format)
    if model_path.name == "model.keras":  # a run folder: its files must belong together
        overrides = {"preprocessing.json": args.preprocessing} if args.preprocessing else None
        artifacts.verify_run(model_path.parent, overrides)
    spec = export.read_serving_spec(args.preprocessing or model_path.parent)
    if args.export_format == "onnx":
        output = Path(args.output)
        output = output if output.suffix == ".onnx" else output / "model.onnx"
        opset = export.DEFAULT_OPSET if args.opset is None else args.opset
        path = export.export_onnx(model_path, spec, output, opset=opset)
        return {"format": "onnx", "path": str(path), "opset": export.onnx_opset(path)}
    path = export.export_savedmodel(model_path, spec, args.output, version=args.version)
    return {"format": "savedmodel", "path": str(path), "signature": export.SIGNATURE}


def _check_export_output(output: Path, export_format: str) -> None:
    """Refuse an `--output` the export could not write, before the export's work."""
    if export_format == "onnx" and output.suffix == ".onnx":
        if output.is_dir():
            raise ValueError(f"--output {output} is a folder; an ONNX file needs a file path.")
        if output.exists():
            raise FileExistsError(f"--output {output} exists; remove it or choose another path.")
        return
    if output.exists() and not output.is_dir():
        raise FileExistsError(
            f"--output {output} is a file; it must be a folder (the model's base directory)."
        )


def run_export(args) -> int:
    print(json.dumps(export_from_args(args), indent=1))
    return 0


def add_tune_arguments(parser):
    parser.add_argument("--config", required=True, help="a search config, e.g. tuning/*.yaml")
    parser.add_argument("--output", required=True, help="tuner state, results and best model")
    parser.add_argument(
        "--export", default=None, help="export the retrained best model to this SavedModel base"
    )
    parser.add_argument("--no-retrain", action="store_true", help="search and tabulate only")
    parser.add_argument(
        "--mixed-precision", action="store_true", help="mixed_bfloat16 policy (GPUs)"
    )
    parser.add_argument(
        "--max-trials", type=_positive_int, default=None, help="override tuner_options"
    )
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0)


def run_tune(args) -> int:
    from keras_unimixer.tuning import TuneConfig, tune

    config = TuneConfig.from_yaml(args.config)
    if args.max_trials is not None:
        config.tuner_options = {**config.tuner_options, "max_trials": args.max_trials}
    summary = tune(
        config,
        args.output,
        export_to=args.export,
        retrain=not args.no_retrain,
        mixed_precision=args.mixed_precision,
        verbose=args.verbose,
    )
    print(json.dumps(summary, indent=1, default=str))
    return 0


def _names(text):
    return tuple(part for part in text.split(",") if part)


def add_scale_arguments(parser):
    from keras_unimixer.datasets import DATASETS
    from keras_unimixer.scaling import LadderConfig
    from keras_unimixer.scaling.ladder import MLP_BASELINES, PROTOCOLS, VARIANTS

    defaults = LadderConfig()
    parser.add_argument(
        "--dataset", type=_dataset, default=defaults.dataset,
        help=f"one of {', '.join(DATASETS)}, or a description file PATH.yaml",
    )  # fmt: skip
    parser.add_argument("--data-dir", default=None, help="dataset folder")
    parser.add_argument(
        "--models",
        type=_names,
        default=defaults.models,
        help="mixers, mixer+ablation (" + ", ".join(VARIANTS) + "; e.g. unimixer+post_norm), "
        "or MLP baselines sized by the ladder (" + ", ".join(MLP_BASELINES) + ")",
    )
    parser.add_argument("--sizes", type=_names, default=defaults.sizes, help="xs,s,m,l,xl,xxl")
    parser.add_argument(
        "--seeds", type=_int_list_any, default=defaults.seeds, help="seeds, each a full ladder"
    )
    parser.add_argument(
        "--epochs", type=_positive_int, default=defaults.epochs, help="epoch budget per run"
    )
    parser.add_argument(
        "--batch-size", type=_positive_int, default=None,
        help=f"batch size (default: {defaults.batch_size}, or the preset's with --protocol preset)",
    )  # fmt: skip
    parser.add_argument(
        "--max-examples", type=_positive_int, default=None, help="use at most this many rows"
    )
    parser.add_argument("--output", default=defaults.output, help="ladder folder")
    parser.add_argument(
        "--protocol", choices=PROTOCOLS, default=defaults.protocol,
        help="ladder: the ladder's own training settings; preset: the dataset's benchmark "
        "protocol (embedding size, batch size, learning rate and its schedule, patience, "
        "embedding L2 and init; keras_unimixer/presets.py) with the ladder's sizes, --epochs "
        "the budget",
    )  # fmt: skip
    parser.add_argument(
        "--budget", choices=("fixed", "proportional"), default=defaults.budget,
        help="fixed: every run on --max-examples rows; proportional: --rows-per-param rows per "
        "dense parameter, within [--min-examples, --max-examples]",
    )  # fmt: skip
    parser.add_argument(
        "--rows-per-param",
        type=float,
        default=defaults.rows_per_param,
        help="training rows per dense parameter (proportional budget)",
    )
    parser.add_argument(
        "--min-examples",
        type=_positive_int,
        default=defaults.min_examples,
        help="fewest training rows (proportional budget)",
    )
    parser.add_argument(
        "--reference",
        default=defaults.reference,
        help="reference model of the gain law dAUC = a N^alpha ('none': no gain fit)",
    )
    parser.add_argument(
        "--mixed-precision", action="store_true", help="mixed_bfloat16 policy (GPU rungs)"
    )
    parser.add_argument(
        "--eval-every-examples", type=_positive_int, default=None,
        help="each run's learning curve: exact validation AUC every this many training examples",
    )  # fmt: skip
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke ladder: synthetic data, 3 sizes, 1 seed, 2 epochs (minutes on 2 cores)",
    )
    parser.add_argument(
        "--merge", type=_names, default=None,
        help="ladder folders run apart (e.g. one process per seed or machine) to merge into "
        "--output, then fit and plot (nothing is trained; the other ladder options are unused)",
    )  # fmt: skip


def _int_list_any(text):
    return tuple(int(part) for part in text.split(",") if part)


def run_scale(args) -> int:
    from keras_unimixer.scaling import QUICK, LadderConfig, merge_ladders, run_ladder

    if args.merge:
        rows = merge_ladders(args.merge, args.output)
        dataset = json.loads((Path(args.output) / "ladder_config.json").read_text())["dataset"]
        return _fit_and_plot(rows, Path(args.output), dataset)

    values = {
        "dataset": args.dataset, "data_dir": args.data_dir, "models": args.models,
        "sizes": args.sizes, "seeds": args.seeds, "epochs": args.epochs,
        "batch_size": args.batch_size, "max_examples": args.max_examples, "output": args.output,
        "budget": args.budget, "rows_per_param": args.rows_per_param,
        "min_examples": args.min_examples,
        "reference": None if args.reference == "none" else args.reference,
        "mixed_precision": args.mixed_precision,
        "eval_every_examples": args.eval_every_examples, "protocol": args.protocol,
    }  # fmt: skip
    if args.batch_size is None:
        del values["batch_size"]
    elif args.protocol == "preset":
        raise ValueError("--batch-size: the preset protocol sets the batch size; drop one of them.")
    if args.quick:
        values.update({key: tuple(v) if isinstance(v, list) else v for key, v in QUICK.items()})
    config = LadderConfig(**values)
    rows = run_ladder(config)
    return _fit_and_plot(rows, Path(config.output), config.dataset)


def _fit_and_plot(rows, output: Path, dataset: str) -> int:
    from keras_unimixer.scaling import ablation_table, fit_ladder
    from keras_unimixer.scaling.plots import plot_learning_curves, plot_scaling

    fits = fit_ladder(rows)
    (output / "fits.json").write_text(json.dumps(fits, indent=1))
    title = f"{dataset}: test AUC vs size"
    figures = [
        str(plot_scaling(rows, fits, output / "scaling_params.png", "dense_params", title)),
        str(plot_scaling(rows, fits, output / "scaling_flops.png", "flops_per_example", title)),
    ]
    curves = plot_learning_curves(output, output / "learning_curves.png")
    if curves is not None:
        figures.append(str(curves))
    if any("+" in row["model"] for row in rows):
        (output / "ablations.json").write_text(json.dumps(ablation_table(rows), indent=1))
    for fit in fits:
        print(
            f"{fit['model']:24s} {fit.get('law', 'auc'):4s} vs {fit['against']:18s}: "
            f"alpha = {fit['alpha']:.4f} "
            f"[{fit['alpha_low']:.4f}, {fit['alpha_high']:.4f}] ({fit['interval']})"
        )
    print(json.dumps({"csv": str(output / "ladder.csv"), "figures": figures}, indent=1))
    return 0


def run_inspect(args) -> int:
    from keras_unimixer.scaling import inspect_model

    stats = inspect_model(args.model, args.output)
    print(json.dumps(stats, indent=1))
    return 0


def add_inspect_arguments(parser):
    parser.add_argument("--model", required=True, help="a trained model (.keras)")
    parser.add_argument("--output", required=True, help="folder for the PNGs and statistics")


COMMANDS = (
    ("train", "train a ranking model (default: UniMixer-Lite on synthetic data)",
     add_train_arguments, run_train),
    ("export", "export a trained model as a TF Serving SavedModel or ONNX",
     add_export_arguments, run_export),
    ("tune", "Keras Tuner search from a YAML config; retrain and export the best model",
     add_tune_arguments, run_tune),
    ("scale", "train a ladder of sizes per architecture; fit and plot AUC = a N^alpha",
     add_scale_arguments, run_scale),
    ("inspect", "heat maps of the learned UniMixing matrices of a .keras model",
     add_inspect_arguments, run_inspect),
)  # fmt: skip


class DefaultsFormatter(argparse.HelpFormatter):
    """Shows each option's default (a tuple as the comma-separated list the option takes),
    except where there is none to show."""

    def _get_help_string(self, action):
        default = action.default
        if default in (None, False) or default is argparse.SUPPRESS or not action.option_strings:
            return action.help
        if isinstance(default, (tuple, list)):
            default = ",".join(str(value) for value in default)
        return f"{action.help or ''} (default: {default})"


class OneLineErrors(argparse.ArgumentParser):
    """Usage errors as one line (`prog: error: ... (see prog --help)`, exit 2), not the usage
    block first."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv=None) -> int:
    parser = OneLineErrors(
        prog="keras_unimixer",
        description="UniMixer ranking models in Keras 3.",
        epilog="Errors print one line (exit 1); add --debug for the traceback.",
    )
    commands = parser.add_subparsers(dest="command", parser_class=OneLineErrors)
    for name, description, add_arguments, handler in COMMANDS:
        # `train` writes its defaults into each help line itself (they may come from a preset).
        formatter = argparse.HelpFormatter if name == "train" else DefaultsFormatter
        command = commands.add_parser(
            name, help=description, description=description, formatter_class=formatter,
        )  # fmt: skip
        add_arguments(command)
        command.set_defaults(handler=handler)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["train"]
    args = parser.parse_args(argv)
    configure_logging()
    return args.handler(args)


def configure_logging() -> None:
    """INFO lines of this package, each once; the libraries' start-up chatter off: TensorFlow's
    logger (which has a handler of its own, so its lines would print twice) at WARNING, and JAX's
    backend probe ("Unable to initialize backend 'tpu'", normal on a CPU or GPU) at ERROR."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.ERROR)
