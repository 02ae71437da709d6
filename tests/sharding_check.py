"""Run in a fresh JAX process by tests/test_distribution.py: `sharding_check.py DEVICES`.

Trains the same model (a FeatureTokenizer with row-sparse Adagrad tables and an MLP) on one
device and with its tables' rows sharded over DEVICES virtual CPU devices
(`distribution.sharded_tables`), from the same initial weights on the same batches; prints both
loss histories and how the tables are laid out, as JSON.
"""

import contextlib
import json
import sys

import keras
import numpy as np

from keras_unimixer import distribution

NUM_DEVICES = int(sys.argv[1])
distribution.use_virtual_cpu_devices(NUM_DEVICES)

from keras_unimixer.features import FeatureSpec  # noqa: E402
from keras_unimixer.layers import FeatureTokenizer  # noqa: E402
from keras_unimixer.optimizers import SplitOptimizer  # noqa: E402
from keras_unimixer.table_optimizer import (  # noqa: E402
    RowSparseTableOptimizer,
    enable_row_sparse_steps,
)

FEATURES = [
    FeatureSpec("user", "categorical", 1000),
    FeatureSpec("item", "categorical", 4000),
    FeatureSpec("odd", "categorical", 1001),  # not divisible by 2 or 4: stays replicated
    FeatureSpec("price", "numeric"),
]


def data(rows=1024):
    rng = np.random.default_rng(0)
    x = {
        "user": rng.integers(2, 1000, rows).astype("int32"),
        "item": rng.integers(2, 4000, rows).astype("int32"),
        "odd": rng.integers(2, 1001, rows).astype("int32"),
        "price": rng.normal(size=rows).astype("float32"),
    }
    y = ((x["user"] + x["item"]) % 2).astype("float32")
    return x, y


def train(sharded: bool, weights=None):
    keras.utils.set_random_seed(0)
    scope = distribution.sharded_tables(FEATURES) if sharded else contextlib.nullcontext()
    with scope:
        inputs = {
            spec.name: keras.Input(
                (), dtype="float32" if spec.kind == "numeric" else "int32", name=spec.name
            )
            for spec in FEATURES
        }
        tokens = FeatureTokenizer(FEATURES, 8, token_dim=16, num_tokens=4, name="tokenizer")(inputs)
        hidden = keras.layers.Dense(32, activation="relu")(keras.layers.Flatten()(tokens))
        model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
        tables = RowSparseTableOptimizer("adagrad", learning_rate=0.1)
        model.compile(
            SplitOptimizer(keras.optimizers.Adam(1e-2), tables),
            keras.losses.BinaryCrossentropy(from_logits=True),
        )
        enable_row_sparse_steps(model)
        if weights is not None:
            model.set_weights(weights)
        initial = model.get_weights()
        x, y = data()
        history = model.fit(x, y, batch_size=128, epochs=3, shuffle=False, verbose=0)
    layouts = {}
    for name in ("user", "item", "odd"):
        table = model.get_layer("tokenizer").__getattribute__(f"{name}_embedding")
        sharding = table.value.sharding
        layouts[name] = {
            "spec": [str(axis) for axis in getattr(sharding, "spec", [])],
            "shard_rows": sorted({int(s.data.shape[0]) for s in table.value.addressable_shards}),
        }
    return history.history["loss"], initial, layouts


single, weights, _ = train(sharded=False)
sharded, _, layouts = train(sharded=True, weights=weights)
print(json.dumps({"single": single, "sharded": sharded, "layouts": layouts}))
