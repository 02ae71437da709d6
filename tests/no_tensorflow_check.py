"""Run in a fresh JAX process by tests/test_training.py: `import tensorflow` fails here, as on a
GPU machine without TensorFlow; `train` must still run and write its artefacts.

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

from keras_unimixer import training  # noqa: E402

metrics = training.train(
    training.TrainConfig(
        output=sys.argv[1], dataset="synthetic", max_examples=4000, epochs=2, batch_size=128,
        num_layers=1, num_tokens=4, token_dim=8, embedding_dim=4, hidden_units=(8,), verbose=0,
    )
)  # fmt: skip
imported = sorted(name for name in sys.modules if name.split(".")[0] == "tensorflow")
print(json.dumps({"test": metrics["test"], "tensorflow_modules": imported}))
