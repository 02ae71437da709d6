"""Start-up of the command line, run first by `keras_unimixer/__init__.py` (before Keras is
imported, which imports TensorFlow under its backend)."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from keras_unimixer.utils.allocator import restart_reusing_freed_memory


def is_command_line() -> bool:
    """Whether this process is `python -m keras_unimixer` or the `keras-unimixer` script (while
    `-m` locates the module, `sys.argv[0]` is "-m")."""
    first = sys.argv[0] if sys.argv else ""
    return first == "-m" or Path(first).name == "keras-unimixer"


def start_tensorflow_quietly() -> None:
    """Import TensorFlow and list its devices with the process's stderr (file descriptor 2)
    parked, where TensorFlow is installed (under JAX too: TensorBoard logging imports it). Its
    C++ start-up lines ("All log messages before absl::InitializeLog()", "failed call to cuInit"
    on a machine without a GPU, CPU feature notes) ignore `TF_CPP_MIN_LOG_LEVEL`. If the import
    fails, what it printed is shown."""
    if importlib.util.find_spec("tensorflow") is None:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as parked:
        os.dup2(parked.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        except BaseException:
            os.dup2(saved, 2)
            parked.seek(0)
            sys.stderr.write(parked.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def start_command_line() -> None:
    """For the command line: restart with an allocator that reuses freed memory (see
    `keras_unimixer.utils.allocator`), and quiet TensorFlow's logs (unless `--debug`). Libraries'
    users get their own process's settings and TensorFlow's own behaviour."""
    if not is_command_line():
        return
    restart_reusing_freed_memory()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "--debug" not in sys.argv:
        start_tensorflow_quietly()
