"""Run by tests/test_distribution.py: one process of a JAX multi-process run, or the one-process
run on the same global batches. Prints the loss history and a weight checksum.

    multi_process_check.py DESCRIPTION LAYOUTS process INDEX COUNT PORT
    multi_process_check.py DESCRIPTION LAYOUTS single COUNT

LAYOUTS: comma-separated, each trained in turn in the same processes, one JSON object of
results keyed by layout. `replicated`: data-parallel (`distribution.data_parallel`), Adam on
every weight. `sharded`: the tables' rows split over the processes' devices
(`distribution.sharded_tables`), row-sparse Adagrad on the tables and Adam on the rest; the
one-process run keeps its tables whole on its one device.
"""

import json
import sys

import keras
import numpy as np

from keras_unimixer import distribution

description, layouts, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "process":
    index, count, port = (int(value) for value in sys.argv[4:7])
    distribution.initialize_processes(f"localhost:{port}", count, index)
else:
    count = int(sys.argv[4])

from keras_unimixer import datasets, models  # noqa: E402
from keras_unimixer.layers import FeatureTokenizer  # noqa: E402
from keras_unimixer.optimizers import SplitOptimizer  # noqa: E402
from keras_unimixer.table_optimizer import (  # noqa: E402
    RowSparseTableOptimizer,
    enable_row_sparse_steps,
)

GLOBAL_BATCH = 256
ARGS = dict(labels=["click"], shuffle=True, seed=1)


class GlobalBatches(keras.utils.PyDataset):
    """The global batch of each step: every process's local batch, in process order."""

    def __init__(self, shards):
        super().__init__()
        self.shards = shards

    def __len__(self):
        return len(self.shards[0])

    def __getitem__(self, index):
        parts = [shard[index] for shard in self.shards]
        features = {name: np.concatenate([p[0][name] for p in parts]) for name in parts[0][0]}
        return features, np.concatenate([p[1] for p in parts])

    def on_epoch_end(self):
        for shard in self.shards:
            shard.on_epoch_end()


def run(layout: str) -> dict:
    """Trains in `layout` and reports the losses, a weight checksum and the tables' rows here."""
    keras.utils.set_random_seed(0)
    sharded = layout == "sharded"
    with distribution.sharded_tables(data.features) if sharded else distribution.data_parallel():
        model = models.RankingModel(
            data.features, mixer="rankmixer", num_layers=1, num_tokens=4, token_dim=16
        )
        tables = RowSparseTableOptimizer("adagrad", learning_rate=0.1)
        optimizer = SplitOptimizer(keras.optimizers.Adam(1e-2), tables) if sharded else None
        models.compile_ranking(model, ["click"], learning_rate=1e-2, optimizer=optimizer)
        if sharded:
            enable_row_sparse_steps(model)
        if mode == "process":
            batches = distribution.process_batches(data, "train", GLOBAL_BATCH, **ARGS)
        else:
            batches = GlobalBatches(
                [
                    distribution.ProcessBatches(
                        data, "train", GLOBAL_BATCH, process=(i, count), **ARGS
                    )
                    for i in range(count)
                ]
            )
        history = model.fit(batches, epochs=2, verbose=0)
    weights = distribution.gathered_weights(model)
    checksum = float(sum(np.abs(np.asarray(w, dtype=np.float64)).sum() for w in weights))
    tokenizer = next(
        layer for layer in model._flatten_layers() if isinstance(layer, FeatureTokenizer)
    )
    table_rows = {
        spec.name: sorted(
            {
                int(shard.data.shape[0])
                for shard in getattr(tokenizer, f"{spec.name}_embedding").value.addressable_shards
            }
        )
        for spec in data.features
        if spec.kind != "numeric"
    }
    return {
        "loss": history.history["loss"],
        "checksum": checksum,
        "steps": len(batches),
        "devices": len(keras.distribution.list_devices()),
        "table_rows": table_rows,
        "vocabulary": {
            spec.name: spec.vocabulary_size for spec in data.features if spec.kind != "numeric"
        },
    }


data = datasets.read_streaming_dataset(description)
print(json.dumps({layout: run(layout) for layout in layouts.split(",")}))
