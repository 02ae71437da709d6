"""Run in a fresh process by the export tests: serve a raw request through every artefact.

Usage: python serving_outputs.py REQUEST.npz SAVEDMODEL_DIR [ONNX_FILE] OUTPUT.npz
Writes `<artefact>/<output name>` arrays: the SavedModel through `tf.saved_model.load`, the ONNX
model through ONNX Runtime.
"""

import sys

import numpy as np


def main(request_path, savedmodel, onnx_path, output_path):
    import tensorflow as tf

    request = dict(np.load(request_path, allow_pickle=True))
    signature = tf.saved_model.load(savedmodel).signatures["serving_default"]
    tensors = {
        name: tf.constant(values.astype(str) if values.dtype == object else values)
        for name, values in request.items()
    }
    results = {f"savedmodel/{k}": v.numpy() for k, v in signature(**tensors).items()}
    if onnx_path:
        import onnxruntime

        session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        feeds = {
            name: values.astype(str) if values.dtype == object else values
            for name, values in request.items()
        }
        names = [output.name for output in session.get_outputs()]
        for name, value in zip(names, session.run(names, feeds), strict=True):
            results[f"onnx/{name}"] = value
    np.savez(output_path, **results)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if len(arguments) == 3:
        arguments.insert(2, None)
    main(*arguments)
