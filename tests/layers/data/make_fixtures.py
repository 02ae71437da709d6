"""Writes the `encoder_c6e9602_*` fixtures: models saved at commit c6e9602, before
`UniMixerEncoder(layout=...)` existed (the files in git were made there, under JAX):

    git checkout c6e9602
    KERAS_BACKEND=jax python tests/layers/data/make_fixtures.py tests/layers/data
"""

import os
import sys

import keras
import numpy as np

from keras_unimixer.layers import (
    AttentionMixing,
    TokenMixing,
    UniMixerEncoder,
    UniMixing,
    UniMixingLite,
)

CASES = {
    "lite_siamese": (lambda: UniMixingLite(block_size=4, num_basis=2, rank=3), "siamese", "swiglu"),
    "unimixing_pre": (lambda: UniMixing(block_size=16), "pre", "swiglu"),
    "tokenmixing_post": (lambda: TokenMixing(num_heads=4), "post", "gelu"),
    "attention_pre": (lambda: AttentionMixing(num_heads=2), "pre", "swiglu"),
}


def main(output_dir):
    keras.utils.set_random_seed(7)
    x = np.random.default_rng(0).standard_normal((5, 4, 8)).astype("float32")
    arrays = {"inputs": x}
    for name, (make_mixing, norm, activation) in CASES.items():
        inputs = keras.Input((4, 8))
        encoder = UniMixerEncoder(
            num_layers=2,
            mixing=make_mixing(),
            norm=norm,
            ffn_activation=activation,
            ffn_multiplier=2,
        )
        model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(encoder(inputs))))
        model.save(os.path.join(output_dir, f"encoder_c6e9602_{name}.keras"))
        arrays[name] = keras.ops.convert_to_numpy(model(x))
    np.savez(os.path.join(output_dir, "encoder_c6e9602_outputs.npz"), **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
