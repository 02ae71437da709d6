"""The argument types and help texts every subcommand shares."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json

from keras_unimixer.experiments.training import TrainConfig


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def rank_or_full(text):
    """A positive integer, or `full` (UniMixing-Lite's unfactorized global matrix)."""
    return "full" if text == "full" else positive_int(text)


def json_object(text):
    """A JSON object, e.g. `{"normalization": "l2"}`."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r} ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r}")
    return value


def int_list(text):
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


int_list.__name__ = "list of integers"  # argparse names a type by its function's name


def dataset_name(text):
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


def float_or_none(text):
    return None if text.lower() == "none" else float(text)


@functools.cache
def protocol_datasets(name: str) -> tuple:
    """The datasets whose benchmark protocol sets `TrainConfig` field `name` (for some model)."""
    from keras_unimixer.experiments.protocols import MODEL_PROTOCOLS, PROTOCOLS

    return tuple(
        dataset
        for dataset in sorted(set(PROTOCOLS) | set(MODEL_PROTOCOLS))
        if name in PROTOCOLS.get(dataset, {})
        or any(name in values for values in MODEL_PROTOCOLS.get(dataset, {}).values())
    )


def field_help(text, name):
    """Help text with the default of `TrainConfig` field `name` (and whether a benchmark
    protocol sets it)."""
    default = {f.name: f for f in dataclasses.fields(TrainConfig)}[name].default
    if default is dataclasses.MISSING:  # a field with a default factory (a dict)
        default = json.dumps(getattr(TrainConfig(), name))
    if isinstance(default, tuple):
        default = ",".join(str(v) for v in default)
    datasets = protocol_datasets(name)
    protocol = f"; --dataset {' or '.join(datasets)} sets it" if datasets else ""
    return f"{text} (default: {default}{protocol})"


def names(text):
    return tuple(part for part in text.split(",") if part)


def int_list_any(text):
    return tuple(int(part) for part in text.split(",") if part)
