"""Export for serving: TF Serving SavedModels with in-graph preprocessing, and ONNX."""

from keras_unimixer.datasets.derived import derive_features
from keras_unimixer.export.onnx import DEFAULT_OPSET, export_onnx, onnx_opset
from keras_unimixer.export.preprocessing import (
    PREPROCESSING_FILE,
    ServingPreprocessor,
    raw_from_encoded,
    raw_input_signature,
    read_serving_spec,
    serving_spec,
    write_serving_spec,
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
