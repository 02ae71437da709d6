#!/usr/bin/env bash
# The install extras, each alone in a fresh venv (not part of scripts/test.sh: two installs of a
# backend take minutes and the network):
#   .[jax]         TensorFlow is not installed, and a model trains under JAX, saves and reloads;
#   .[tensorflow]  a model trains under TensorFlow and exports a SavedModel that serves the same.
# Usage: bash scripts/check_extras.sh [jax|tensorflow]...   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
for extra in "${@:-jax tensorflow}"; do
  for one in $extra; do
    echo "=== .[$one] in a fresh venv ==="
    "$PYTHON" -m venv "$root/$one"
    "$root/$one/bin/python" -m pip install --quiet --upgrade pip
    "$root/$one/bin/python" -m pip install --quiet ".[$one]"
    (cd "$root" && KERAS_BACKEND="$one" "$root/$one/bin/python" "$OLDPWD/scripts/_check_extra.py" "$one")
  done
done
