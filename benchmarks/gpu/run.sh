#!/usr/bin/env bash
# The GPU check, in ONE device call of at most 8 minutes (a lent task has 15 minutes of device
# time in all). The lent H100/H200 machines have JAX with CUDA, numpy, pandas, pyarrow, pytest,
# scikit-learn and pyyaml, but no TensorFlow, no Keras and no package registry: the pure-Python
# wheels this needs travel in the git-ignored folder `.whl` (benchmarks/gpu/README.md says how to
# fill it) and the package itself runs from the working tree (no install).
#
# Writes to $OUT: devices.txt, layer_tests.log, tune.log, mixer_speed_gpu.md, run.log.
# Rehearsed on CPU (same script, a venv without TensorFlow): `GPU_PEAK_TFLOPS=0 bash ...`.
set -uo pipefail
OUT="${OUT:-/tmp/keras_unimixer_gpu}"
WHEELS="${WHEELS:-.whl}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
start=$(date +%s)
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/keras_unimixer_site "$WHEELS"/*.whl || exit 1
export PYTHONPATH="/tmp/keras_unimixer_site:$PWD" KERAS_BACKEND=jax
export XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1
"$PYTHON" -c "import jax, keras; print('jax', jax.__version__, 'keras', keras.__version__, jax.devices())" | tee "$OUT/devices.txt"
if "$PYTHON" -c "import tensorflow" 2>/dev/null; then echo "note: TensorFlow is importable here"; fi

echo "=== layer tests under JAX ($(($(date +%s) - start)) s)"
timeout 170 "$PYTHON" -m pytest -q -p no:cacheprovider -x -n "${TEST_WORKERS:-8}" \
  tests/layers tests/test_evaluation.py \
  -o addopts="" --durations=5 2>&1 | tail -25 | tee "$OUT/layer_tests.log"

echo "=== a small tune (3 trials, synthetic data) ($(($(date +%s) - start)) s)"
timeout 120 "$PYTHON" -m keras_unimixer tune --config tuning/synthetic_random.yaml \
  --output /tmp/keras_unimixer_tune --no-retrain --max-trials 3 2>&1 | tail -20 | tee "$OUT/tune.log"

echo "=== mixer speed, mixed_bfloat16, with MFU ($(($(date +%s) - start)) s)"
timeout 200 "$PYTHON" benchmarks/mixer_speed.py --dtype-policy mixed_bfloat16 \
  --peak-tflops "${GPU_PEAK_TFLOPS:-989}" --batch-size "${SPEED_BATCH:-8192}" --steps 5 \
  --matmul-size "${MATMUL_SIZE:-8192}" --output "$OUT/mixer_speed_gpu.md" 2>&1 | tail -40
echo "=== done in $(($(date +%s) - start)) s"
