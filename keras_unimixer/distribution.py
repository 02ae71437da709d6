"""Data-parallel training on every local device, with each backend's own mechanism.

JAX: `keras.distribution.DataParallel` (the batch is sharded over devices, weights replicated).
TensorFlow: `tf.distribute.MirroredStrategy`. Either way the model must be built (and compiled)
inside `data_parallel()`; `fit` then splits each global batch over the devices.

For tests and laptops, `use_virtual_cpu_devices(n)` splits the host CPU into `n` devices; it must
run before the backend initializes its devices (first thing in the process).

Several processes (hosts), JAX: `initialize_processes(coordinator, n, i)` first thing in every
process (CPU collectives over Gloo where there is no accelerator), then `data_parallel()` spans
every process's devices, and `process_batches(data, split, global_batch_size)` gives each process
its own shard of the rows, `global_batch_size / n` rows per step, with the same number of steps
in every process. `fit` assembles the processes' local batches into one global batch per step, so
the run is the one-process run on those global batches (`tests/test_distribution.py`).
`sharded_tables(features)` splits the embedding tables' rows over the same devices (each process
then holds only its rows), and `gathered_weights(model)` gives the whole weights back on every
process (e.g. to save the model from process 0).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import keras

if TYPE_CHECKING:
    from keras_unimixer.datasets.protocol import Dataset

logger = logging.getLogger("keras_unimixer.distribution")


def use_virtual_cpu_devices(num_devices: int) -> None:
    """Expose `num_devices` CPU devices (call before any JAX or TensorFlow device is touched)."""
    if not isinstance(num_devices, int) or num_devices < 1:
        raise ValueError(f"`num_devices` must be a positive integer, got {num_devices!r}.")
    if keras.backend.backend() == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        flag = f"--xla_force_host_platform_device_count={num_devices}"
        os.environ["XLA_FLAGS"] = f"{flags} {flag}".strip()
        import jax

        if len(jax.devices("cpu")) != num_devices:
            raise RuntimeError(
                "JAX was initialized before use_virtual_cpu_devices(); call it first "
                f"(found {len(jax.devices('cpu'))} CPU devices)."
            )
        return
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
    )


def local_devices(kind: str | None = None) -> list:
    """This process's devices of the default kind (GPUs when present, else CPUs)."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.devices(kind) if kind else jax.devices()
    import tensorflow as tf

    if kind is None:
        kind = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    return tf.config.list_logical_devices(kind.upper())


def initialize_processes(coordinator_address: str, num_processes: int, process_id: int) -> None:
    """Joins a JAX multi-process job (call first thing, before any device is touched).

    Args:
        coordinator_address: `"host:port"` of process 0 (the coordinator).
        num_processes: processes in the job.
        process_id: this process's index, `0 <= process_id < num_processes`.
    """
    if keras.backend.backend() != "jax":
        raise ValueError(
            "initialize_processes() needs the JAX backend (KERAS_BACKEND=jax); under TensorFlow "
            "use tf.distribute.MultiWorkerMirroredStrategy with TF_CONFIG (see the README)."
        )
    if not isinstance(num_processes, int) or num_processes < 1:
        raise ValueError(f"`num_processes` must be a positive integer, got {num_processes!r}.")
    if not isinstance(process_id, int) or not 0 <= process_id < num_processes:
        raise ValueError(
            f"`process_id` must be in [0, {num_processes - 1}] (num_processes={num_processes}), "
            f"got {process_id!r}."
        )
    if ":" not in str(coordinator_address):
        raise ValueError(f"`coordinator_address` must be 'host:port', got {coordinator_address!r}.")
    import jax

    # CPU-only machines need a collectives backend for cross-process all-reduce.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize(coordinator_address, num_processes, process_id)


def process_index_and_count() -> tuple[int, int]:
    """(This process's index, number of processes); (0, 1) outside a multi-process job."""
    if keras.backend.backend() != "jax":
        return 0, 1
    import jax

    return jax.process_index(), jax.process_count()


class ProcessBatches(keras.utils.PyDataset):
    """This process's local batches of a split: its shard of the rows, cut to the step count
    that every process can fill (full local batches only), so that all processes step together.

    Args:
        data: a dataset whose `batches()` takes `shard=(index, count)` (e.g. a `StreamingDataset`).
        split: "train", "validation" or "test".
        global_batch_size: rows per step over all processes (a multiple of the process count).
        labels: as `data.batches()`.
        shuffle: as `data.batches()`.
        seed: as `data.batches()`.
        start_epoch: as `data.batches()`.
        process: `(index, count)`; default: this process in the running job.
    """

    def __init__(
        self,
        data: Dataset,
        split: str,
        global_batch_size: int,
        labels: list | None = None,
        shuffle: bool = False,
        seed: int = 0,
        start_epoch: int = 0,
        process: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        index, count = process or process_index_and_count()
        if global_batch_size % count:
            raise ValueError(
                f"`global_batch_size` ({global_batch_size}) must be a multiple of the number of "
                f"processes ({count})."
            )
        self.local_batch_size = global_batch_size // count
        self.local = data.batches(
            split,
            self.local_batch_size,
            labels=labels,
            shuffle=shuffle,
            seed=seed,
            start_epoch=start_epoch,
            shard=(index, count),
        )
        # Every process counts every shard's rows (one read each), so all agree on the steps.
        shard_rows = [
            self.local.num_rows if i == index else data.batches(split, 1, shard=(i, count)).num_rows
            for i in range(count)
        ]
        self.steps = min(shard_rows) // self.local_batch_size
        if not self.steps:
            raise ValueError(
                f"{split}: a process's shard has {min(shard_rows)} rows, fewer than one local "
                f"batch of {self.local_batch_size}; use a smaller `global_batch_size`."
            )

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        return self.local[index]

    def on_epoch_end(self) -> None:
        self.local.on_epoch_end()


def process_batches(
    data: Dataset, split: str, global_batch_size: int, **kwargs: Any
) -> ProcessBatches:
    """`ProcessBatches(data, split, global_batch_size, **kwargs)` for this process."""
    return ProcessBatches(data, split, global_batch_size, **kwargs)


@contextlib.contextmanager
def data_parallel(devices: list | None = None) -> Iterator[None]:
    """Build and train models inside this block to replicate them over `devices` (default: all).

    Example:
    >>> from keras_unimixer import distribution, models, datasets
    >>> data = datasets.make_synthetic(num_examples=512)
    >>> with distribution.data_parallel():
    ...     model = models.RankingModel(data.features, num_tokens=4, token_dim=16)
    ...     _ = models.compile_ranking(model, ["click"])
    """
    devices = list(devices) if devices is not None else local_devices()
    if keras.backend.backend() == "jax":
        previous = keras.distribution.distribution()
        parallel = keras.distribution.DataParallel(devices=devices)
        # Each process passes its own shard (`process_batches`), not a dataset to split.
        parallel.auto_shard_dataset = process_index_and_count()[1] == 1
        keras.distribution.set_distribution(parallel)
        try:
            yield
        finally:
            keras.distribution.set_distribution(previous)
        return
    import tensorflow as tf

    names = [device.name if hasattr(device, "name") else str(device) for device in devices]
    with tf.distribute.MirroredStrategy(names).scope():
        yield


@contextlib.contextmanager
def sharded_tables(features: list, devices: list | None = None) -> Iterator:
    """Build and train models inside this block to shard their embedding tables' rows over
    `devices` (default: every device of the job) and run the rest data-parallel (JAX).

    One `keras.distribution.ModelParallel` over a one-axis device mesh: each `FeatureTokenizer`
    table `<feature>_embedding` is laid out `("batch", None)` (its rows split across the devices),
    every other variable is replicated, and each batch is split across the same devices. A table
    whose row count the number of devices does not divide stays replicated (JAX shards only even
    splits), and a warning names it. With `RowSparseTableOptimizer` tables the row-sparse step
    runs on the sharded tables (XLA's SPMD partitioner places the gathers and scatters). In a
    multi-process job (`initialize_processes`) the devices are every process's, so each process
    holds its share of the rows, and each passes its own batches (`process_batches`).

    TensorFlow: not supported (raises). `tf.distribute.MirroredStrategy` (`data_parallel`)
    replicates tables; sharding them needs a `ParameterServerStrategy` cluster, not set up here.

    Args:
        features: list of `FeatureSpec`. The model's features (their tables are named after them).
        devices: list. The devices to use. Defaults to every device of the job.
    """
    if keras.backend.backend() != "jax":
        raise ValueError(
            "sharded_tables needs the JAX backend (keras.distribution.ModelParallel); under "
            "TensorFlow use data_parallel(), which replicates the tables."
        )
    devices = list(devices) if devices is not None else local_devices()
    mesh = keras.distribution.DeviceMesh((len(devices),), ["batch"], devices)
    layout_map = keras.distribution.LayoutMap(mesh)
    replicated = []
    for spec in features:
        if spec.kind == "numeric":
            continue
        if spec.vocabulary_size % len(devices):
            replicated.append(spec.name)
            continue
        layout_map[rf"(.*/)?{re.escape(spec.name)}_embedding"] = ("batch", None)  # fullmatch
    if replicated:
        logger.warning(
            "Tables of %s stay replicated: their row counts are not divisible by %d devices.",
            replicated,
            len(devices),
        )
    previous = keras.distribution.distribution()
    parallel = keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch")
    parallel.auto_shard_dataset = process_index_and_count()[1] == 1  # as in data_parallel()
    keras.distribution.set_distribution(parallel)
    try:
        yield layout_map
    finally:
        keras.distribution.set_distribution(previous)


def gathered_weights(model: keras.Model) -> list:
    """`model.get_weights()`, whole on every process, also where weights are split over processes.

    In a multi-process JAX job a table sharded by `sharded_tables` spans devices that this process
    cannot read, so `get_weights()` fails; here each process contributes its shards (a collective:
    every process must call it). Outside such a job it is `model.get_weights()`.

    Args:
        model: a built Keras model.

    Returns:
        A list of numpy arrays, in `model.weights` order.
    """
    if process_index_and_count()[1] == 1:
        return model.get_weights()
    import numpy as np
    from jax.experimental import multihost_utils

    return [
        np.asarray(multihost_utils.process_allgather(weight.value, tiled=True))
        for weight in model.weights
    ]
