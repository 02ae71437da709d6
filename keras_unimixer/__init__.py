"""keras_unimixer: UniMixer and the token-mixing family for recommendation, in Keras 3.

The library: `layers`, `models`, `tasks`, `datasets`, `callbacks`, `optimizers`, `distribution`.
Imported on demand: `keras_unimixer.export` (TF Serving / ONNX, needs TensorFlow),
`keras_unimixer.tfrs` (TensorFlow Recommenders) and `keras_unimixer.experiments` (what runs
experiments: training runs, the command line, benchmark protocols, scaling ladders, Keras Tuner
searches).
"""

from keras_unimixer._startup import start_command_line

start_command_line()

from keras_unimixer import (  # noqa: E402
    callbacks,
    datasets,
    distribution,
    layers,
    models,
    optimizers,
    tasks,
)
from keras_unimixer.callbacks import TemperatureAnnealing  # noqa: E402
from keras_unimixer.layers import (  # noqa: E402
    AttentionMixing,
    FMMixing,
    PerTokenFFN,
    TokenMixing,
    UniMixerBlock,
    UniMixerEncoder,
    UniMixing,
    UniMixingLite,
)
from keras_unimixer.layers.initializers import token_mixing_permutation  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AttentionMixing",
    "FMMixing",
    "PerTokenFFN",
    "TemperatureAnnealing",
    "TokenMixing",
    "UniMixerBlock",
    "UniMixerEncoder",
    "UniMixing",
    "UniMixingLite",
    "callbacks",
    "datasets",
    "distribution",
    "layers",
    "models",
    "optimizers",
    "tasks",
    "token_mixing_permutation",
]
