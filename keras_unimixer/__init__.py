"""keras_unimixer: UniMixer and the token-mixing family for recommendation, in Keras 3.

Subpackages imported on demand: `keras_unimixer.export` (TF Serving / ONNX), `keras_unimixer.tuning`
(Keras Tuner), `keras_unimixer.tfrs` (TensorFlow Recommenders).
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
    scaling,
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
    token_mixing_permutation,
)

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
    "scaling",
    "tasks",
    "token_mixing_permutation",
]
