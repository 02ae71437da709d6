"""Export for serving: TF Serving SavedModels with in-graph preprocessing, and ONNX.

The serving spec (`serving_spec`, `write_serving_spec`, `read_serving_spec`, `derive_features`)
needs no TensorFlow; everything else here builds TensorFlow graphs and is imported on first use,
so `keras_unimixer.export` imports on a JAX-only install and names the missing extra when an
exporter is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from keras_unimixer.datasets.derived import derive_features
from keras_unimixer.datasets.serving_spec import (
    PREPROCESSING_FILE,
    read_serving_spec,
    serving_spec,
    write_serving_spec,
)

if TYPE_CHECKING:  # the names below, for type checkers and the API reference
    from keras_unimixer.export.onnx import DEFAULT_OPSET, export_onnx, onnx_opset
    from keras_unimixer.export.preprocessing import (
        ServingPreprocessor,
        raw_from_encoded,
        raw_input_signature,
    )
    from keras_unimixer.export.savedmodel import (
        SIGNATURE,
        ServingFunction,
        check_request,
        example_request,
        export_retrieval,
        export_savedmodel,
        write_warmup_requests,
    )

_NEEDS_TENSORFLOW = {
    "DEFAULT_OPSET": "onnx",
    "export_onnx": "onnx",
    "onnx_opset": "onnx",
    "ServingPreprocessor": "preprocessing",
    "raw_from_encoded": "preprocessing",
    "raw_input_signature": "preprocessing",
    "SIGNATURE": "savedmodel",
    "ServingFunction": "savedmodel",
    "check_request": "savedmodel",
    "example_request": "savedmodel",
    "export_retrieval": "savedmodel",
    "export_savedmodel": "savedmodel",
    "write_warmup_requests": "savedmodel",
}


def __getattr__(name: str):
    if name not in _NEEDS_TENSORFLOW:
        raise AttributeError(f"module 'keras_unimixer.export' has no attribute {name!r}")
    try:
        module = importlib.import_module(f"keras_unimixer.export.{_NEEDS_TENSORFLOW[name]}")
    except ImportError as error:
        if "tensorflow" not in f"{error.name} {error}":
            raise
        raise ImportError(
            f"keras_unimixer.export.{name} builds TensorFlow graphs (SavedModel, ONNX), and "
            "TensorFlow is not installed: pip install 'keras-unimixer[tensorflow]' (or "
            "'[export]' for ONNX too)."
        ) from error
    return getattr(module, name)


__all__ = [
    "PREPROCESSING_FILE",
    "SIGNATURE",
    "DEFAULT_OPSET",
    "ServingFunction",
    "ServingPreprocessor",
    "check_request",
    "example_request",
    "export_onnx",
    "export_retrieval",
    "export_savedmodel",
    "onnx_opset",
    "raw_from_encoded",
    "raw_input_signature",
    "derive_features",
    "read_serving_spec",
    "serving_spec",
    "write_serving_spec",
    "write_warmup_requests",
]
