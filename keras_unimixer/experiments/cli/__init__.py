"""Command line: `python -m keras_unimixer train|export|tune|scale|inspect ...`, one module per
subcommand, each with `add_arguments(parser)` and `run(args)`."""

from __future__ import annotations

import argparse
import logging
import sys

from keras_unimixer.experiments.cli import export, inspect, scale, train, tune

COMMANDS = (
    ("train", "train a ranking model (default: UniMixer-Lite on synthetic data)", train),
    ("export", "export a trained model as a TF Serving SavedModel or ONNX", export),
    ("tune", "Keras Tuner search from a YAML config; retrain and export the best model", tune),
    ("scale", "train a ladder of sizes per architecture; fit and plot AUC = a N^alpha", scale),
    ("inspect", "heat maps of the learned UniMixing matrices of a .keras model", inspect),
)


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
    for name, description, module in COMMANDS:
        # `train` writes its defaults into each help line (a benchmark protocol may set them).
        formatter = argparse.HelpFormatter if name == "train" else DefaultsFormatter
        command = commands.add_parser(
            name,
            help=description,
            description=description,
            formatter_class=formatter,
        )
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
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
