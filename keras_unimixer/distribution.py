"""Data-parallel training on every local device, with each backend's own mechanism.

JAX: `keras.distribution.DataParallel` (the batch is sharded over devices, weights replicated).
TensorFlow: `tf.distribute.MirroredStrategy`. Either way the model must be built (and compiled)
inside `data_parallel()`; `fit` then splits each global batch over the devices.

For tests and laptops, `use_virtual_cpu_devices(n)` splits the host CPU into `n` devices; it must
run before the backend initializes its devices (first thing in the process).
"""

from __future__ import annotations

import contextlib
import os

import keras


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


@contextlib.contextmanager
def data_parallel(devices=None):
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
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield
        finally:
            keras.distribution.set_distribution(previous)
        return
    import tensorflow as tf

    names = [device.name if hasattr(device, "name") else str(device) for device in devices]
    with tf.distribute.MirroredStrategy(names).scope():
        yield
