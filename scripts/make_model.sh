#!/usr/bin/env bash
# Regenerate the shipped AVSynth model package (models/zoo/avsynth) from scratch:
# generate the data (class clips, clips cut like long-video windows, and background clips
# that show no class), train the tiny
# AVSlowFast with the paper's recipe plus audio dropout (11 outcomes: 10 classes + background),
# distil its glance, fit the calibration and abstention rules on the validation set, copy the
# package into the zoo and record its measured claims (tests/offline_data/test_shipped_model.py
# holds it to them). Deterministic from the seeds below.
#
#   (scripts/upgrade_model.sh replays how the shipped 1.1.0 was fine-tuned from 1.0.0 instead.)
#   EVAL=1 bash scripts/make_model.sh        also trains the same-size AV / visual-only /
#                                            audio-only / no-DropPathway family and runs the evals.
set -euo pipefail
cd "$(dirname "$0")/.."
A=${AVSERVE:-.venv/bin/avserve}
DATA=${DATA:-data/avsynth}
RUNS=${RUNS:-runs}
WORKERS=${WORKERS:-2}
THREADS=${THREADS:-2}
EPOCHS=${EPOCHS:-20}
ABL_EPOCHS=${ABL_EPOCHS:-12}
AUDIO_DROPOUT=${AUDIO_DROPOUT:-0.3}
SEED=${SEED:-0}
VERSION=${VERSION:-1.1.0}

gen() {  # split subset count [extra args...]; files already there are kept, not re-encoded
  local split=$1 subset=$2 count=$3 out="$DATA/$1_$2"
  shift 3
  local stamp="$out/.generated-$count${*// /}"
  [[ -f "$stamp" ]] && return 0
  "$A" data avsynth --split "$split" --subset "$subset" --count "$count" --seed "$SEED" \
    --workers "$WORKERS" --out "$out" "$@"
  touch "$stamp"
}
train() {  # run-name arch epochs [extra args...]
  local run=$1 arch=$2 epochs=$3
  shift 3
  "$A" train avslowfast --data "$DATA/short_train" --val-data "$DATA/short_val" \
    --out "$RUNS/$run" --arch "$arch" --epochs "$epochs" --batch-size 16 \
    --crop-size 64 --threads "$THREADS" --workers "$WORKERS" --seed "$SEED" --no-progress "$@"
}

gen short train 1000 --background 400 --windows 500
gen short val 200 --background 100 --windows 100
gen short test 300 --background 100
gen long train 120
gen long test 60
train heavy avslowfast_tiny "$EPOCHS" --lr 0.05 --audio-dropout "$AUDIO_DROPOUT" \
  --name avsynth --version "$VERSION" --head avsynth
"$A" train glance --heavy "$RUNS/heavy/package" --data "$DATA/long_train" \
  --out "$RUNS/glance" --threads "$THREADS" --seed "$SEED" --no-progress
"$A" train calibrate --package "$RUNS/glance/package" --data "$DATA/short_val" \
  --threads "$THREADS" --workers "$WORKERS"
rm -rf models/zoo/avsynth
mkdir -p models/zoo
cp -r "$RUNS/glance/package" models/zoo/avsynth
"$A" eval short --data "$DATA/short_test" --model shipped=models/zoo/avsynth \
  --claim shipped --out "$RUNS/eval_shipped" --threads "$THREADS" --no-progress
"$A" eval honesty --data "$DATA/short_test" --package models/zoo/avsynth --claim \
  --out "$RUNS/eval_shipped" --threads "$THREADS" --workers "$WORKERS" --no-progress
"$A" eval long --data "$DATA/long_test" --package models/zoo/avsynth --ks 1,2,4 --claim \
  --out "$RUNS/eval_shipped" --threads "$THREADS" --no-progress
"$A" eval ood --data ../shared/media --package models/zoo/avsynth --out "$RUNS/eval_shipped" \
  --threads "$THREADS" --no-progress
cp "$RUNS"/eval_shipped/eval_{honesty,long,ood}.json docs/results/
.venv/bin/python scripts/render_results.py  # the tables of docs/avsynth.md
echo "shipped: models/zoo/avsynth ($(du -sh models/zoo/avsynth | cut -f1))"

if [[ "${EVAL:-0}" == "1" ]]; then
  train av avslowfast_tiny "$ABL_EPOCHS" --lr 0.05
  train visual slowfast_tiny "$ABL_EPOCHS" --lr 0.05
  train audio audionet_tiny "$ABL_EPOCHS" --lr 0.05
  train av_nodp avslowfast_tiny "$ABL_EPOCHS" --lr 0.05 --override drop_pathway=0.0
  "$A" eval short --data "$DATA/short_test" --model av="$RUNS/av/package" \
    --model visual="$RUNS/visual/package" --model audio="$RUNS/audio/package" \
    --model av_nodp="$RUNS/av_nodp/package" --model shipped=models/zoo/avsynth \
    --out "$RUNS/eval" --threads "$THREADS" --no-progress
fi
