"""`keras_unimixer inspect`: heat maps and statistics of a trained model's mixing matrices."""

from __future__ import annotations

import json


def run(args) -> int:
    from keras_unimixer.experiments.scaling import inspect_model

    stats = inspect_model(args.model, args.output)
    print(json.dumps(stats, indent=1))
    return 0


def add_arguments(parser):
    parser.add_argument("--model", required=True, help="a trained model (.keras)")
    parser.add_argument("--output", required=True, help="folder for the PNGs and statistics")
