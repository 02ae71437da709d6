"""ONNX export: the raw-feature serving SavedModel converted with tf2onnx."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import keras

from keras_unimixer.export.savedmodel import SIGNATURE, export_savedmodel

logger = logging.getLogger("keras_unimixer.export")

DEFAULT_OPSET = 17


def export_onnx(
    model: keras.Model, spec: dict, output: str | Path, opset: int = DEFAULT_OPSET
) -> Path:
    """Write `output` (an `.onnx` file) taking the same named raw inputs as the SavedModel.

    The serving SavedModel (preprocessing included: vocabulary lookups become ONNX-ML
    `LabelEncoder`s) is converted by tf2onnx in a separate process. Needs the TensorFlow backend:
    a model trained under JAX is exported from its `.keras` file, which is backend-neutral
    (`KERAS_BACKEND=tensorflow python -m keras_unimixer export --format onnx ...`).

    Args:
        model: a trained ranking `keras.Model` or the path of its `.keras` file.
        spec: the serving spec from `train` (`preprocessing.json`).
        output: the `.onnx` file to write.
        opset: ONNX opset (default 17; the ONNX-ML domain is also used, for the lookups).

    Returns:
        The path written; the opset and input names are stored in the model's metadata.
    """
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "ONNX export needs the TensorFlow backend (tf2onnx converts TensorFlow graphs, and "
            "the JAX backend's SavedModel holds XLA calls it cannot read). The `.keras` file is "
            "backend-neutral: run `KERAS_BACKEND=tensorflow python -m keras_unimixer export "
            "--format onnx --model MODEL.keras ...`."
        )
    if not isinstance(opset, int) or not 13 <= opset <= 18:
        raise ValueError(f"`opset` must be an integer in [13, 18], got {opset!r}.")
    output = Path(output)
    if output.suffix != ".onnx":
        raise ValueError(f"`output` must be a path ending in .onnx, got {str(output)!r}.")
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        version_dir = export_savedmodel(model, spec, Path(scratch) / "model", warmup_batch_size=0)
        command = [
            sys.executable,
            "-m",
            "tf2onnx.convert",
            "--saved-model",
            str(version_dir),
            "--signature_def",
            SIGNATURE,
            "--opset",
            str(opset),
            "--output",
            str(output),
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"tf2onnx failed:\n{result.stderr[-4000:]}")
    _add_metadata(output, opset, spec)
    logger.info("ONNX model (opset %d) written to %s", opset, output)
    return output


def _add_metadata(path: Path, opset: int, spec: dict) -> None:
    import onnx

    proto = onnx.load(str(path))
    metadata = {
        "keras_unimixer.opset": str(opset),
        "keras_unimixer.features": json.dumps([f["name"] for f in spec["features"]]),
        "keras_unimixer.dataset": spec.get("dataset", ""),
    }
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def onnx_opset(path: str | Path) -> int:
    """The default-domain opset an `.onnx` file was written with."""
    import onnx

    proto = onnx.load(str(path))
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
