"""`keras_unimixer export`: a trained `.keras` model as a TF Serving SavedModel or ONNX."""

from __future__ import annotations

import json
from pathlib import Path

from keras_unimixer.experiments.cli.arguments import positive_int


def add_arguments(parser):
    parser.add_argument("--model", required=True, help="trained model (.keras)")
    parser.add_argument(
        "--format",
        choices=("savedmodel", "onnx"),
        default="savedmodel",
        dest="export_format",
        help="savedmodel: a TF Serving version folder OUTPUT/<version>; onnx: OUTPUT/model.onnx "
        "(or OUTPUT itself if it ends in .onnx)",
    )
    parser.add_argument(
        "--output", required=True, help="model base directory, e.g. saved_models/movielens"
    )
    parser.add_argument(
        "--preprocessing",
        default=None,
        help="the run's preprocessing.json (default: next to --model)",
    )
    parser.add_argument(
        "--version", type=positive_int, default=None, help="version number (default: next)"
    )
    # Not imported from keras_unimixer.export: building the parser must not load TensorFlow.
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: 17)")


def export_from_args(args) -> dict:
    """Export `args.model` as `args.export_format`; returns what was written."""
    from keras_unimixer import export
    from keras_unimixer.experiments import artifacts

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


def run(args) -> int:
    print(json.dumps(export_from_args(args), indent=1))
    return 0
