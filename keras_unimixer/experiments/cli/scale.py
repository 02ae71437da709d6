"""`keras_unimixer scale`: a ladder of sizes per architecture, the fitted gain laws and plots."""

from __future__ import annotations

import json
from pathlib import Path

from keras_unimixer.experiments.cli.arguments import dataset_name, int_list_any, names, positive_int


def add_arguments(parser):
    from keras_unimixer.datasets import DATASETS
    from keras_unimixer.experiments.scaling import LadderConfig
    from keras_unimixer.experiments.scaling.ladder import MLP_BASELINES, PROTOCOLS, VARIANTS
    from keras_unimixer.optimizers import TABLE_OPTIMIZERS

    defaults = LadderConfig()
    parser.add_argument(
        "--dataset",
        type=dataset_name,
        default=defaults.dataset,
        help=f"one of {', '.join(DATASETS)}, or a description file PATH.yaml",
    )
    parser.add_argument("--data-dir", default=None, help="dataset folder")
    parser.add_argument(
        "--models",
        type=names,
        default=defaults.models,
        help="mixers, mixer+ablation (" + ", ".join(VARIANTS) + "; e.g. unimixer+post_norm), "
        "or MLP baselines sized by the ladder (" + ", ".join(MLP_BASELINES) + ")",
    )
    parser.add_argument("--sizes", type=names, default=defaults.sizes, help="xs,s,m,l,xl,xxl")
    parser.add_argument(
        "--seeds", type=int_list_any, default=defaults.seeds, help="seeds, each a full ladder"
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=defaults.epochs, help="epoch budget per run"
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help=f"batch size (default: {defaults.batch_size}; --protocol benchmark sets its own)",
    )
    parser.add_argument(
        "--max-examples", type=positive_int, default=None, help="use at most this many rows"
    )
    parser.add_argument("--output", default=defaults.output, help="ladder folder")
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=defaults.protocol,
        help="ladder: the ladder's own training settings; benchmark: the dataset's benchmark "
        "protocol (embedding size, batch size, learning rate and its schedule, patience, "
        "embedding L2 and init; keras_unimixer.experiments.protocols) with the ladder's sizes, "
        "--epochs the budget",
    )
    parser.add_argument(
        "--budget",
        choices=("fixed", "proportional"),
        default=defaults.budget,
        help="fixed: every run on --max-examples rows; proportional: --rows-per-param rows per "
        "dense parameter, within [--min-examples, --max-examples]",
    )
    parser.add_argument(
        "--rows-per-param",
        type=float,
        default=defaults.rows_per_param,
        help="training rows per dense parameter (proportional budget)",
    )
    parser.add_argument(
        "--min-examples",
        type=positive_int,
        default=defaults.min_examples,
        help="fewest training rows (proportional budget)",
    )
    parser.add_argument(
        "--reference",
        default=defaults.reference,
        help="reference model of the gain law dAUC = a N^alpha ('none': no gain fit)",
    )
    parser.add_argument(
        "--embedding-optimizer",
        choices=TABLE_OPTIMIZERS,
        default=None,
        help="train every run's embedding tables with this optimizer instead of Adam; sgd, "
        "adagrad, rowwise_adagrad and adam (lazy) update only the rows a batch looked up",
    )
    parser.add_argument(
        "--embedding-learning-rate",
        type=float,
        default=None,
        help="learning rate of --embedding-optimizer (default: the ladder's learning rate)",
    )
    parser.add_argument(
        "--mixed-precision", action="store_true", help="mixed_bfloat16 policy (GPU rungs)"
    )
    parser.add_argument(
        "--eval-every-examples",
        type=positive_int,
        default=None,
        help="each run's learning curve: exact validation AUC every this many training examples",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke ladder: synthetic data, 3 sizes, 1 seed, 2 epochs (minutes on 2 cores)",
    )
    parser.add_argument(
        "--merge",
        type=names,
        default=None,
        help="ladder folders run apart (e.g. one process per seed or machine) to merge into "
        "--output, then fit and plot (nothing is trained; the other ladder options are unused)",
    )


def run(args) -> int:
    from keras_unimixer.experiments.scaling import QUICK, LadderConfig, merge_ladders, run_ladder

    if args.merge:
        rows = merge_ladders(args.merge, args.output)
        dataset = json.loads((Path(args.output) / "ladder_config.json").read_text())["dataset"]
        return _fit_and_plot(rows, Path(args.output), dataset)

    values = {
        "dataset": args.dataset,
        "data_dir": args.data_dir,
        "models": args.models,
        "sizes": args.sizes,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "max_examples": args.max_examples,
        "output": args.output,
        "budget": args.budget,
        "rows_per_param": args.rows_per_param,
        "min_examples": args.min_examples,
        "reference": None if args.reference == "none" else args.reference,
        "mixed_precision": args.mixed_precision,
        "eval_every_examples": args.eval_every_examples,
        "protocol": args.protocol,
        "embedding_optimizer": args.embedding_optimizer,
        "embedding_learning_rate": args.embedding_learning_rate,
    }
    if args.batch_size is None:
        del values["batch_size"]
    elif args.protocol == "benchmark":
        raise ValueError(
            "--batch-size: the benchmark protocol sets the batch size; drop one of them."
        )
    if args.quick:
        values.update({key: tuple(v) if isinstance(v, list) else v for key, v in QUICK.items()})
    config = LadderConfig(**values)
    rows = run_ladder(config)
    return _fit_and_plot(rows, Path(config.output), config.dataset)


def _fit_and_plot(rows, output: Path, dataset: str) -> int:
    from keras_unimixer.experiments.scaling import ablation_table, fit_ladder
    from keras_unimixer.experiments.scaling.plots import plot_learning_curves, plot_scaling

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
        if fit["law"] == "gain_trend":
            print(
                f"{fit['model']:24s} gain per 10x {fit['against']:18s}: "
                f"{fit['slope_per_decade']:+.4f} [{fit['slope_low']:+.4f}, "
                f"{fit['slope_high']:+.4f}] ({fit['interval']}); mean gain at the largest "
                f"{fit['mean_gain_at_largest']:+.4f}"
            )
            continue
        print(
            f"{fit['model']:24s} {fit.get('law', 'auc'):4s} vs {fit['against']:18s}: "
            f"alpha = {fit['alpha']:.4f} "
            f"[{fit['alpha_low']:.4f}, {fit['alpha_high']:.4f}] ({fit['interval']})"
        )
    print(json.dumps({"csv": str(output / "ladder.csv"), "figures": figures}, indent=1))
    return 0
