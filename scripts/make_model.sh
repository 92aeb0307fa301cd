#!/usr/bin/env bash
# Regenerate the shipped AVSynth model package (models/zoo/avsynth) from scratch:
# generate the data, train the tiny AVSlowFast with the paper's recipe, distil its glance,
# attach the glance and copy the package into the zoo. Deterministic from the seeds below.
#   EVAL=1 bash scripts/make_model.sh   also trains the same-size visual-only, audio-only and
#                                       no-DropPathway ablations and runs `avserve eval`.
# Roughly 60-90 min on 2 CPU cores (see docs/avsynth.md for measured times).
set -euo pipefail
cd "$(dirname "$0")/.."
A=${AVSERVE:-.venv/bin/avserve}
DATA=${DATA:-data/avsynth}
RUNS=${RUNS:-runs}
WORKERS=${WORKERS:-2}
THREADS=${THREADS:-2}
EPOCHS=${EPOCHS:-12}
SEED=${SEED:-0}

gen() {  # split subset count
  "$A" data avsynth --split "$1" --subset "$2" --count "$3" --seed "$SEED" \
    --workers "$WORKERS" --out "$DATA/$1_$2"
}
train() {  # run-name arch [extra args...]
  local run=$1 arch=$2
  shift 2
  "$A" train avslowfast --data "$DATA/short_train" --val-data "$DATA/short_val" \
    --out "$RUNS/$run" --arch "$arch" --epochs "$EPOCHS" --batch-size 16 --lr 0.05 \
    --crop-size 64 --threads "$THREADS" --workers "$WORKERS" --seed "$SEED" --no-progress "$@"
}

gen short train 1000
gen short val 200
gen long train 160
train av avslowfast_tiny --name avsynth --version 1.0.0
"$A" train glance --heavy "$RUNS/av/package" --data "$DATA/long_train" \
  --out "$RUNS/glance" --threads "$THREADS" --seed "$SEED"
rm -rf models/zoo/avsynth
mkdir -p models/zoo
cp -r "$RUNS/glance/package" models/zoo/avsynth
echo "shipped: models/zoo/avsynth ($(du -sh models/zoo/avsynth | cut -f1))"

if [[ "${EVAL:-0}" == "1" ]]; then
  gen short test 300
  gen long test 80
  train visual slowfast_tiny
  train audio audionet_tiny
  train av_nodp avslowfast_tiny --override drop_pathway=0.0
  "$A" eval short --data "$DATA/short_test" --model av="$RUNS/av/package" \
    --model visual="$RUNS/visual/package" --model audio="$RUNS/audio/package" \
    --model av_nodp="$RUNS/av_nodp/package" --out "$RUNS/eval"
  "$A" eval long --data "$DATA/long_test" --package models/zoo/avsynth --ks 1,2,4 \
    --out "$RUNS/eval"
fi
