"""Checks every layer of this package passes; reusable for custom mixing layers."""

from keras_unimixer.testing.layer_checks import (
    assert_gradients_reach_all_weights,
    check_layer,
    gradient_of,
    random_tokens,
)
from keras_unimixer.testing.mixer_contract import run_mixer_contract_test

__all__ = [
    "assert_gradients_reach_all_weights",
    "check_layer",
    "gradient_of",
    "random_tokens",
    "run_mixer_contract_test",
]
