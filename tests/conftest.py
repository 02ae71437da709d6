import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TFRS imports only when tf.keras is Keras 2, which must be chosen before TensorFlow is imported
# (see keras_unimixer/tfrs.py). `keras` itself stays Keras 3.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

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


def pytest_collection_modifyitems(config, items):
    """Tests marked `backend_independent` run once: in the JAX pass of scripts/test.sh."""
    if keras.backend.backend() == "jax":
        return
    skip = pytest.mark.skip(reason="backend-independent: runs once, in the JAX pass")
    for item in items:
        if item.get_closest_marker("backend_independent"):
            item.add_marker(skip)
