#!/usr/bin/env bash
# The GPU check, in ONE device call of at most about 8 minutes (a lent task has 15 minutes of
# device time in all, the machine's start included). The lent H100/H200 machines have JAX with
# CUDA, numpy, pandas, pyarrow, pytest, scikit-learn, matplotlib and pyyaml, but no TensorFlow, no
# Keras and no package registry: the pure-Python wheels this needs travel in the git-ignored
# folder `.whl` (benchmarks/gpu/README.md says how to fill it) and the package itself runs from
# the working tree (no install).
#
# Parts, most valuable first, each under its own time limit so that one slow part cannot take
# the others' time: the speed benchmark in bf16 with MFU (issues 18, 29), the step profile (where
# the step's time goes, issue 29), the layer tests under JAX on the GPU, a small `tune` search,
# the embedding-table vocabulary benchmark (issue 26). `ladder` (the largest ladder rung in bf16,
# issue 17) and `frappe` run when asked by name (PARTS=...).
# Writes to $OUT: devices.txt, mixer_speed_gpu.md + gpu_speed.json, step_profile_gpu.md + .json,
# layer_tests.log, tune.log, table_vocabulary_gpu.md + .json, run.log (and the ladder's files).
# Rehearsed on CPU (same script, a venv without TensorFlow): benchmarks/gpu/README.md.
set -uo pipefail
OUT="${OUT:-/tmp/keras_unimixer_gpu}"
WHEELS="${WHEELS:-.whl}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
start=$(date +%s)
PARTS="${PARTS:-speed,profile,tests,tune,vocabulary}"  # a rerun may take fewer
part() { [[ ",$PARTS," == *",$1,"* ]]; }
elapsed() { echo "$(($(date +%s) - start)) s"; }
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/keras_unimixer_site "$WHEELS"/*.whl || exit 1
export PYTHONPATH="/tmp/keras_unimixer_site:$PWD" KERAS_BACKEND=jax
export XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1
{ "$PYTHON" -c "import jax, keras; print('jax', jax.__version__, 'keras', keras.__version__, jax.devices())"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
  nproc; } | tee "$OUT/devices.txt"
if "$PYTHON" -c "import tensorflow" 2>/dev/null; then echo "note: TensorFlow is importable here"; fi

part speed && echo "=== mixer speed, mixed_bfloat16, with MFU ($(elapsed))" &&
timeout "${SPEED_SECONDS:-170}" "$PYTHON" benchmarks/mixer_speed.py --dtype-policy mixed_bfloat16 \
  --peak-tflops "${GPU_PEAK_TFLOPS:-989}" --batch-size "${SPEED_BATCH:-8192}" --steps 5 \
  --mixers none,rankmixer,unimixer,unimixer_lite --tokens 16,32 --dims "${SPEED_DIMS:-256,1024}" \
  --matmul-size "${MATMUL_SIZE:-8192}" --output "$OUT/mixer_speed_gpu.md" \
  --json "$OUT/gpu_speed.json" 2>&1 | tail -40

part profile && echo "=== step profile, mixed_bfloat16 ($(elapsed))" &&
timeout "${PROFILE_SECONDS:-70}" "$PYTHON" benchmarks/step_profile.py --dtype-policy mixed_bfloat16 \
  --batch-size "${SPEED_BATCH:-8192}" --tokens 16 --dims "${PROFILE_DIMS:-1024}" \
  --json "$OUT/step_profile_gpu.json" 2>&1 | grep "^|" | tee "$OUT/step_profile_gpu.md"

if part ladder; then
echo "=== the ladder's largest rung, bf16, the CPU ladder's budget ($(elapsed))"
# Same data and budget rule as benchmarks/results/scaling/synthetic_stream_ladder.csv (one pass
# over 300k rows, batch 1024), bf16 compute; runs finished inside the limit are in the CSV.
timeout "${LADDER_SECONDS:-190}" "$PYTHON" -m keras_unimixer scale \
  --dataset synthetic_stream:vocabulary_size=2000 --models "${LADDER_MODELS:-rankmixer,unimixer_lite,unimixer}" \
  --sizes "${LADDER_SIZES:-xxl}" --seeds 0,1,2 --epochs 1 --batch-size 1024 \
  --max-examples "${LADDER_ROWS:-300000}" --reference none --mixed-precision \
  --output /tmp/keras_unimixer_ladder 2>&1 | grep -v -i warning | tail -15
cp /tmp/keras_unimixer_ladder/ladder.csv "$OUT/ladder_gpu.csv" 2>/dev/null
cp /tmp/keras_unimixer_ladder/learning_curves.png "$OUT/ladder_gpu_learning_curves.png" 2>/dev/null
fi

if part frappe; then
echo "=== Frappe_x1 ladder, BARS protocol, one process per (model, seed) ($(elapsed))"
# Real-data ladder (issue 17): sizes xs..xl under Frappe_x1's benchmark protocol (BARS: embedding
# 10, batch 4096, Adam 1e-3 x0.1 on a plateau, patience 2, embedding L2), fp32, at most
# FRAPPE_EPOCHS epochs. The data travels git-ignored in FRAPPE_DIR (never committed). The
# processes share the GPU; each writes its own ladder, and the tables, histories and configs
# (not the models) come back; a process stopped at its limit keeps the runs it finished.
frappe_tmp=/tmp/keras_unimixer_frappe
mkdir -p "$frappe_tmp" "$OUT/frappe"  # the logs; they travel in the archive
pids=()
for seed in ${FRAPPE_SEEDS:-0 1 2}; do
  for model in ${FRAPPE_MODELS:-dnn rankmixer unimixer_lite unimixer}; do
    reference=none; [[ $model == dnn ]] && reference=logistic_regression
    timeout "${FRAPPE_SECONDS:-420}" "$PYTHON" -m keras_unimixer scale --dataset frappe_x1 \
      --data-dir "${FRAPPE_DIR:-.devdata/frappe_x1}" --protocol benchmark --models "$model" \
      --sizes "${FRAPPE_SIZES:-xs,s,m,l,xl}" --seeds "$seed" --epochs "${FRAPPE_EPOCHS:-20}" \
      --reference "$reference" --output "$frappe_tmp/${model}_seed$seed" \
      > "$OUT/frappe/${model}_seed$seed.log" 2>&1 &
    pids+=($!)
  done
done
wait "${pids[@]}"  # not a bare `wait`: that would also wait for the log's `tee`
# One archive: a device call brings back only a few files, and none deep in folders.
(cd "$frappe_tmp" && find . \( -name ladder.csv -o -name ladder_config.json -o -name metrics.json \
  -o -name config.json \) -print0 | tar czf "$OUT/frappe_ladder.tgz" --null -T - -C "$OUT" frappe)
grep -h "seed [0-9]: AUC" "$OUT"/frappe/*.log | sort
rm -r "$OUT/frappe"
fi

part tests && echo "=== layer tests under JAX ($(elapsed))" &&
# SIGINT at the limit: pytest stops and still prints its summary (passed / failed so far); one
# line per failure, the whole log kept.
timeout -s INT -k 15 "${TEST_SECONDS:-90}" "$PYTHON" -m pytest -q -p no:cacheprovider -n "${TEST_WORKERS:-8}" \
  ${TEST_PATHS:-tests/layers tests/test_evaluation.py} -o addopts="" --tb=line -rfE --durations=5 \
  > "$OUT/layer_tests.log" 2>&1; part tests && tail -30 "$OUT/layer_tests.log"

part tune && echo "=== a small tune (2 trials, synthetic data) ($(elapsed))" &&
timeout "${TUNE_SECONDS:-50}" "$PYTHON" -m keras_unimixer tune --config tuning/synthetic_random.yaml \
  --output /tmp/keras_unimixer_tune --no-retrain --max-trials 2 2>&1 | tail -20 | tee "$OUT/tune.log"

if part vocabulary; then
echo "=== embedding tables: 10^6 and 10^8 buckets, rowwise_adagrad ($(elapsed))"
timeout "${VOCABULARY_SECONDS:-70}" "$PYTHON" benchmarks/table_vocabulary.py --backends jax \
  --buckets "${VOCABULARY_BUCKETS:-1000000,100000000}" --steps 30 2>&1 | grep "^|"
cp runs/benchmarks/table_vocabulary.md "$OUT/table_vocabulary_gpu.md" 2>/dev/null
cp runs/benchmarks/table_vocabulary.json "$OUT/table_vocabulary_gpu.json" 2>/dev/null
fi
echo "=== done in $(elapsed)"
