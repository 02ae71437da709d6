import keras
import numpy as np
import pytest

from keras_unimixer.experiments.scaling import flops_per_example
from keras_unimixer.layers import UniMixerEncoder
from keras_unimixer.layers.mixing import make_mixing, mixer_names


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="uses XLA's cost analysis via JAX")
@pytest.mark.parametrize("mixer", mixer_names())
def test_analytic_flops_agree_with_xla_cost_analysis(mixer):
    """XLA counts every op; the analytic count covers the matmuls, which dominate (<= 20% apart)."""
    import jax

    batch, num_tokens, token_dim = 64, 8, 32
    inputs = keras.Input((num_tokens, token_dim))
    encoder = UniMixerEncoder(
        num_layers=2, mixing=make_mixing(mixer, num_tokens, token_dim), ffn_multiplier=2
    )
    model = keras.Model(inputs, encoder(inputs))
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    # Weights are arguments, not constants, so XLA cannot fold away zero-initialized kernels.
    def forward(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x)[0]

    x = np.zeros((batch, num_tokens, token_dim), "float32")
    cost = jax.jit(forward).lower(trainable, non_trainable, x).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    ratio = cost["flops"] / (flops_per_example(model) * batch)
    assert 1.0 <= ratio <= 1.2, ratio
