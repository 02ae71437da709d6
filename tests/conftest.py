import atexit
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TFRS imports only when tf.keras is Keras 2, which must be chosen before TensorFlow is imported
# (see keras_unimixer/tfrs.py). `keras` itself stays Keras 3.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def _share_jax_compilations_within_the_session() -> None:
    """JAX's persistent compilation cache, in a folder of this pytest session only.

    Many tests compile the same small programs (the same tiny model trained, resumed, killed and
    resumed in subprocesses, the same initializers): XLA compilation was about 60% of a small
    `train` run under JAX. The pytest process that makes the folder (xdist's controller, or the
    only process) removes it at exit; its workers and subprocesses inherit it through the
    environment, so nothing is reused from an earlier session.
    """
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return
    folder = tempfile.mkdtemp(prefix="keras_unimixer_jax_cache_")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"


_share_jax_compilations_within_the_session()

import keras  # noqa: E402
import pytest  # noqa: E402

if keras.backend.backend() == "jax":
    import jax

    # The equivalence tests compare float32 results at 1e-5. On GPUs JAX multiplies float32
    # matrices in TF32 by default (10-bit mantissa): 24 layer tests failed so on an H100
    # (benchmarks/results/gpu_h100.md). On CPUs this changes nothing.
    jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture(autouse=True)
def fresh_keras_state():
    """Each test starts from a clean Keras session, a fixed seed and the float32 policy."""
    keras.utils.clear_session()
    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend: {keras.backend.backend()}"


ONE_PASS_REASONS = {
    "backend_independent": "backend-independent: runs once, in the JAX pass",
    "end_to_end": "an end-to-end run of the application: once, in the JAX pass",
}


def pytest_collection_modifyitems(config, items):
    """Tests marked `backend_independent` or `end_to_end` run once: in the JAX pass of
    scripts/test.sh (the backend-specific parts of an end-to-end run, the training step, the
    callbacks and the checkpoints, are tested in both passes on their own)."""
    if keras.backend.backend() == "jax":
        return
    for item in items:
        for marker, reason in ONE_PASS_REASONS.items():
            if item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))
                break
