"""Run in a fresh JAX process by tests/experiments/test_training.py: `import tensorflow` fails
here, as on a GPU machine without TensorFlow; the `train` command must still run and write its
artefacts.

Prints the test metrics and whether any TensorFlow module got imported, as JSON.
"""

import builtins
import json
import sys

_import = builtins.__import__


def _no_tensorflow(name, *args, **kwargs):
    if name == "tensorflow" or name.startswith("tensorflow."):
        raise ImportError(f"{name} is blocked in this process")
    return _import(name, *args, **kwargs)


builtins.__import__ = _no_tensorflow

from keras_unimixer.experiments import cli  # noqa: E402

# The command line, as a user on such a machine runs it (every subcommand's parser is built).
cli.main(
    [
        "train",
        "--output",
        sys.argv[1],
        "--max-examples",
        "4000",
        "--epochs",
        "2",
        "--batch-size",
        "128",
        "--num-layers",
        "1",
        "--num-tokens",
        "4",
        "--token-dim",
        "8",
        "--embedding-dim",
        "4",
        "--hidden-units",
        "8",
        "--verbose",
        "0",
    ]
)
with open(f"{sys.argv[1]}/metrics.json") as handle:
    metrics = json.load(handle)
# The serving spec needs no TensorFlow; an exporter names the extra that brings it.
from keras_unimixer import export  # noqa: E402

spec = export.read_serving_spec(f"{sys.argv[1]}/preprocessing.json")
try:
    getattr(export, "export_savedmodel")  # noqa: B009 (the attribute access is the test)
    export_error = None
except ImportError as error:
    export_error = str(error)
imported = sorted(name for name in sys.modules if name.split(".")[0] == "tensorflow")
print(
    json.dumps(
        {
            "test": metrics["test"],
            "tensorflow_modules": imported,
            "spec_features": len(spec["features"]),
            "export_error": export_error,
        }
    )
)
