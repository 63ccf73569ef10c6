#!/usr/bin/env bash
# Train the two story models that chapters 06 and 08 load (mosaics_edu/assets/stories/):
# a Memory Mosaic and a GPT of the same parameter count (180,600 vs 180,544: the mosaic's
# persistent memory gets 288 pairs per head instead of 3.5 * 64 = 224, which pays for the GPT's
# learned position table of 256 x 64), 2 blocks each, on the generated story corpus (4,000 train,
# 400 validation stories) with the local BPE tokenizer (1,024 tokens). Same steps, batch,
# schedule, seed and data for both; each at the peak learning rate and dropout its tuning chose
# (mosaics_edu/assets/stories/tuning.json, made by tools/sweep_stories.py --comparison stories,
# whose seed-0 runs are these very runs). One thread each, one after the other: 3-5 CPU-minutes
# each on one core.
#
#   bash tools/train_story_models.sh [OUT]      # OUT defaults to runs/stories
#   python tools/ship_story_models.py [OUT]     # fp16 copies + JSON into mosaics_edu/assets/stories
#
# Passing extra flags (e.g. --stop-after 100) forwards them to both runs; the slow test
# tests/course/test_story_models.py uses this to retrain the first steps and compare with the shipped curve.
set -euo pipefail
OUT="${1:-runs/stories}"
shift || true
export OMP_NUM_THREADS=1
COMMON=(--preset cpu-tiny --data stories --tokenizer bpe --bpe-vocab-size 1024
        --n-train-stories 4000 --n-valid-stories 400
        --n-layer 2 --n-head 4 --n-embd 64 --block-size 256
        --batch-size 16 --max-steps 1500 --min-lr 1e-4 --warmup-steps 150
        --eval-interval 100 --eval-batches 10 --log-interval 50
        --seed 0 --threads 1 --device cpu --dtype float32 --no-progress)
# each run's CPU time (user + sys seconds) goes to $OUT/<model>/cpu_time.txt
# each model's tuned setting: "--lr LR --dropout P"
chosen() {
  python -c 'import json, sys
c = json.load(open(sys.argv[2]))["chosen"][sys.argv[1]]
print("--lr", repr(c["lr"]), "--dropout", repr(c["dropout"]))' "$1" "$(dirname "$0")/../mosaics_edu/assets/stories/tuning.json"
}
for MODEL in mosaic gpt; do
  read -r -a EXTRA <<< "$(chosen "$MODEL")"
  if [ "$MODEL" = mosaic ]; then EXTRA+=(--pmem-size 288); fi
  mkdir -p "$OUT/$MODEL"
  /usr/bin/time -f "%U %S %e" -o "$OUT/$MODEL/cpu_time.txt" \
    python -m mosaics_edu.train --model "$MODEL" "${EXTRA[@]}" --out-dir "$OUT/$MODEL" "${COMMON[@]}" "$@"
done
