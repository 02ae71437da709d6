"""Run in a fresh process by tests/test_distribution.py (it must configure devices first).

Trains the same model for a few steps on one device and data-parallel on 2 virtual CPU devices,
from the same initial weights and the same global batches; prints the two loss histories as JSON.
"""

import contextlib
import json
import sys

import keras

from keras_unimixer import distribution

distribution.use_virtual_cpu_devices(2)

from keras_unimixer import datasets, models  # noqa: E402


def train(parallel: bool, weights=None):
    data = datasets.make_synthetic(num_examples=2048, seed=3)
    keras.utils.set_random_seed(0)
    scope = distribution.data_parallel() if parallel else contextlib.nullcontext()
    with scope:
        model = models.RankingModel(
            data.features, mixer=sys.argv[1], num_layers=1, num_tokens=4, token_dim=16
        )
        models.compile_ranking(model, ["click"], learning_rate=1e-2)
        if weights is not None:
            model.set_weights(weights)
        initial = model.get_weights()
        dataset = data.tf_dataset("train", 256, labels=["click"])
        history = model.fit(dataset, epochs=2, verbose=0, shuffle=False)
    return history.history["loss"], initial, len(distribution.local_devices())


single, weights, devices = train(parallel=False)
parallel, _, _ = train(parallel=True, weights=weights)
print(json.dumps({"single": single, "parallel": parallel, "devices": devices}))
