#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite once per Keras backend, on 2 worker
# processes (pytest-xdist; most of the time is XLA/JAX compilation, which runs on one core).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/layers -k unimixing -n 0`.
source "$(dirname "$0")/_venv.sh"
for backend in tensorflow jax; do
  echo "=== KERAS_BACKEND=$backend ==="
  KERAS_BACKEND=$backend python -m pytest -n "${PYTEST_WORKERS:-2}" "$@"
done
