"""`keras_unimixer tune`: a Keras Tuner search from a YAML config."""

from __future__ import annotations

import json

from keras_unimixer.experiments.cli.arguments import positive_int


def add_arguments(parser):
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
        "--max-trials", type=positive_int, default=None, help="override tuner_options"
    )
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0)


def run(args) -> int:
    from keras_unimixer.experiments.tuning import TuneConfig, tune

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
