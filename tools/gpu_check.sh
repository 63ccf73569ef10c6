#!/usr/bin/env bash
# The GPU check: one command for a maintainer with an NVIDIA GPU (under 10 minutes on one GPU).
#
#   tools/gpu_check.sh [OUT_DIR]        # default runs/gpu_check; run from any directory
#
# 1. the CUDA-only tests (skipped on machines without a GPU, so CI never runs them):
#    python -m pytest -p no:xdist tests/training -k gpu
#    (bf16/fp16 autocast and torch.compile training, fused attention kernels, torchrun + NCCL,
#    and with 2 or more GPUs: 2 NCCL processes = 1 process with twice the accumulation);
# 2. python -m mosaics_edu.bench --device cuda --bf16 --compile: training tokens/s of the mosaic
#    and of GPT at gpu-small size, and their ratio (target: mosaic time per token <= 1.15 x GPT's);
# 3. a short gpu-small run of each model (bf16 autocast, torch.compile, 300 steps on a 20,000-story
#    corpus instead of the preset's 100,000 and 5,000 steps): loss, tokens/s, MFU.
#
# Every stage's log and results go to OUT_DIR, and OUT_DIR/summary.md collects the GPU, versions,
# each stage's status and time and the numbers above. Exit status: 0 if every stage passed, 1 if
# one failed (the others still run), 2 if there is no usable GPU (nothing is run).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu_check}
PY=${PYTHON:-python}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.md

if ! "$PY" -c 'import torch' 2>/dev/null; then
  echo "gpu_check: $PY cannot import torch: activate the course's environment first (README)." >&2
  exit 2
fi
if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  {
    echo "gpu_check: no CUDA GPU is usable here, so nothing was run."
    "$PY" - <<'EOF'
import os, torch
print(f"  torch {torch.__version__} (CUDA build: {torch.version.cuda or 'none, a CPU-only build'}), "
      f"torch.cuda.is_available() = False, "
      f"CUDA_VISIBLE_DEVICES = {os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}")
EOF
    echo "  Run this on a machine with an NVIDIA GPU, its driver and a CUDA build of torch"
    echo "  (README, 'GPU users'). Without a GPU, the CPU test suite covers everything else."
  } >&2
  exit 2
fi

FAILED=0
T0=$SECONDS
{
  echo "# GPU check, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  "$PY" -c 'import torch; n = torch.cuda.device_count()
print(f"- {n} GPU(s): " + ", ".join(torch.cuda.get_device_name(i) for i in range(n)))
print(f"- torch {torch.__version__}, CUDA {torch.version.cuda}, bf16 supported: {torch.cuda.is_bf16_supported()}")'
  echo "- commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo
} > "$SUMMARY"

stage() {  # stage NAME LOGFILE COMMAND...: run, log, record status and time in the summary
  local name=$1 log=$2; shift 2
  local t=$SECONDS
  echo "::: $name"
  echo "    $*"
  "$@" > "$log" 2>&1
  local rc=$?
  tail -n 25 "$log"
  local status="passed"
  [ $rc -eq 0 ] || { status="FAILED (exit $rc, see $log)"; FAILED=1; }
  echo "## $name: $status, $((SECONDS - t)) s" >> "$SUMMARY"
  echo '`'"$*"'`' >> "$SUMMARY"
  echo >> "$SUMMARY"
  echo "::: $name: $status ($((SECONDS - t)) s)"
  return 0
}

# 1. CUDA-only tests
stage "CUDA tests" "$OUT/tests.log" \
  "$PY" -m pytest -p no:xdist -q -p no:cacheprovider tests/training -k gpu
grep -E "passed|failed|skipped|error" "$OUT/tests.log" | tail -n 1 | sed 's/^/- /' >> "$SUMMARY"
echo >> "$SUMMARY"

# 2. the throughput benchmark: mosaic vs GPT, bf16 autocast, torch.compile
stage "benchmark" "$OUT/bench.log" \
  "$PY" -m mosaics_edu.bench --device cuda --bf16 --compile --json "$OUT/bench.json"
grep -E "^\| (throughput|  time per token)" "$OUT/bench.log" | sed 's/^/    /' >> "$SUMMARY"
echo >> "$SUMMARY"

# 3. a short gpu-small run of each model
for model in mosaic gpt; do
  stage "gpu-small $model, 300 steps" "$OUT/train-$model.log" \
    "$PY" -m mosaics_edu.train --model "$model" --preset gpu-small --max-steps 300 \
    --n-train-stories 20000 --eval-interval 100 --log-interval 50 --no-progress \
    --out-dir "$OUT/run-$model"
  grep -E "^(global batch|model |throughput)" "$OUT/train-$model.log" | sed 's/^/    /' >> "$SUMMARY"
  echo >> "$SUMMARY"
done

echo "total: $((SECONDS - T0)) s; $([ $FAILED -eq 0 ] && echo 'every stage passed' || echo 'a stage FAILED')" \
  >> "$SUMMARY"
echo
cat "$SUMMARY"
exit $FAILED
