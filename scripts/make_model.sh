#!/usr/bin/env bash
# Regenerate the shipped AVSynth model package (models/zoo/avsynth) from scratch:
# generate the data, train the tiny AVSlowFast with the paper's recipe, distil its glance,
# attach the glance, copy the package into the zoo and record its measured test accuracy
# (the claim tests/offline_data/test_shipped_model.py holds it to). Deterministic from the seeds below.
#   EVAL=1 bash scripts/make_model.sh   also trains the same-size AV / visual-only / audio-only /
#                                       no-DropPathway family (ABL_EPOCHS) and runs both evals.
# Measured on 2 CPU cores: about 75 min, plus about 60 min with EVAL=1 (docs/avsynth.md).
set -euo pipefail
cd "$(dirname "$0")/.."
A=${AVSERVE:-.venv/bin/avserve}
DATA=${DATA:-data/avsynth}
RUNS=${RUNS:-runs}
WORKERS=${WORKERS:-2}
THREADS=${THREADS:-2}
EPOCHS=${EPOCHS:-20}
ABL_EPOCHS=${ABL_EPOCHS:-12}
SEED=${SEED:-0}

gen() {  # split subset count
  [[ -f "$DATA/$1_$2/manifest.jsonl" ]] && return 0
  "$A" data avsynth --split "$1" --subset "$2" --count "$3" --seed "$SEED" \
    --workers "$WORKERS" --out "$DATA/$1_$2"
}
train() {  # run-name arch epochs [extra args...]
  local run=$1 arch=$2 epochs=$3
  shift 3
  "$A" train avslowfast --data "$DATA/short_train" --val-data "$DATA/short_val" \
    --out "$RUNS/$run" --arch "$arch" --epochs "$epochs" --batch-size 16 --lr 0.05 \
    --crop-size 64 --threads "$THREADS" --workers "$WORKERS" --seed "$SEED" --no-progress "$@"
}

gen short train 1000
gen short val 200
gen short test 300
gen long train 120
train av20 avslowfast_tiny "$EPOCHS" --name avsynth --version 1.0.0
"$A" train glance --heavy "$RUNS/av20/package" --data "$DATA/long_train" \
  --out "$RUNS/glance20" --threads "$THREADS" --seed "$SEED" --no-progress
rm -rf models/zoo/avsynth
mkdir -p models/zoo
cp -r "$RUNS/glance20/package" models/zoo/avsynth
"$A" eval short --data "$DATA/short_test" --model shipped=models/zoo/avsynth \
  --claim shipped --out "$RUNS/eval_shipped" --threads "$THREADS" --no-progress
echo "shipped: models/zoo/avsynth ($(du -sh models/zoo/avsynth | cut -f1))"

if [[ "${EVAL:-0}" == "1" ]]; then
  gen long test 60
  train av avslowfast_tiny "$ABL_EPOCHS"
  train visual slowfast_tiny "$ABL_EPOCHS"
  train audio audionet_tiny "$ABL_EPOCHS"
  train av_nodp avslowfast_tiny "$ABL_EPOCHS" --override drop_pathway=0.0
  "$A" eval short --data "$DATA/short_test" --model av="$RUNS/av/package" \
    --model visual="$RUNS/visual/package" --model audio="$RUNS/audio/package" \
    --model av_nodp="$RUNS/av_nodp/package" --model shipped=models/zoo/avsynth \
    --out "$RUNS/eval" --threads "$THREADS" --no-progress
  "$A" eval long --data "$DATA/long_test" --package models/zoo/avsynth --ks 1,2,4 \
    --out "$RUNS/eval" --threads "$THREADS" --no-progress
fi
