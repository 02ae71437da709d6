#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite once per Keras backend, on 2 worker
# processes (pytest-xdist). `--dist loadfile` keeps each test file on one worker, so a module's
# expensive fixtures (a trained MovieLens model, its exports) are built once, not once per worker;
# tests marked `backend_independent` or `end_to_end` run in the JAX pass only.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/layers -k unimixing -n 0`.
source "$(dirname "$0")/_venv.sh"
for backend in tensorflow jax; do
  echo "=== KERAS_BACKEND=$backend ==="
  KERAS_BACKEND=$backend python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadfile "$@"
done
