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
