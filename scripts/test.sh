#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite once per Keras backend.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/layers -k unimixing`.
source "$(dirname "$0")/_venv.sh"
for backend in tensorflow jax; do
  echo "=== KERAS_BACKEND=$backend ==="
  KERAS_BACKEND=$backend python -m pytest "$@"
done
