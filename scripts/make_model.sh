#!/usr/bin/env bash
# Regenerate the AVSynth model package (models/zoo/avsynth) from scratch, with the recipe of the
# shipped 1.3.1 in one run: generate the data (class clips, clips cut like long-video windows,
# background clips that show no class, long videos), train the tiny AVSlowFast with the paper's
# recipe plus audio dropout (11 outcomes: 10 classes + background) on the short clips and the
# long videos' views (offline/data/long_views.py), the windows that catch only an event's start
# or end joining at epoch 10 (EDGE_FROM: from the first epoch they keep the slide pair from
# separating; docs/avsynth.md), distil its glance, choose the patch side and fit the calibration
# and abstention rules on validation sets, copy the package into the zoo and record its
# measured claims (tests/offline_data/test_shipped_model.py holds the shipped package to them).
# Deterministic from the seeds below up to the encoder (generated files are not byte-stable across
# runs). Each stage's wall time goes to $RESULTS/make_model_time.json.
#
#   ZOO=runs/zoo RESULTS=runs/eval_scratch bash scripts/make_model.sh
#                                            the same into other folders (shipped model untouched)
#   EDGE_VIEWS=0 VERSION=1.2.0 bash scripts/make_model.sh
#                                            the 1.2.0 recipe (no edge windows) from scratch
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
VERSION=${VERSION:-1.3.1}
BACKGROUND=${BACKGROUND:-850}
EDGE_VIEWS=${EDGE_VIEWS:-2}  # per long video: windows catching only the event's start or end
EDGE_FROM=${EDGE_FROM:-10}   # ... joining training at this epoch (0: from the first)
ZOO=${ZOO:-models/zoo/avsynth}
RESULTS=${RESULTS:-docs/results}

STAGES="$RUNS/make_model_stages.tsv"  # when each stage began (epoch seconds): where the time goes
mkdir -p "$RUNS" && : >"$STAGES"
say() {
  printf '%s\t%s\n' "$(date +%s)" "$*" >>"$STAGES"
  printf '[make model %3d min] %s\n' $((SECONDS / 60)) "$*"
}
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

say "generate the data"
gen short train 1000 --background "$BACKGROUND" --windows 500
gen short val 200 --background 100 --windows 100
gen short test 300 --background 100
gen long train 240
gen long val 40
gen long test 60
say "decode the caches, train the heavy model"
train heavy avslowfast_tiny "$EPOCHS" --lr 0.05 --audio-dropout "$AUDIO_DROPOUT" \
  --mix "$DATA/long_train:views" --val-mix "$DATA/long_val:views" --edge-views "$EDGE_VIEWS" \
  --edge-from-epoch "$EDGE_FROM" --name avsynth --version "$VERSION" --head avsynth
say "glance, patch side, calibration"
"$A" train glance --heavy "$RUNS/heavy/package" --data "$DATA/long_train" \
  --out "$RUNS/glance" --threads "$THREADS" --seed "$SEED" --no-progress
"$A" train patch --package "$RUNS/glance/package" --data "$DATA/long_val" --rhos 0.6,0.8,1.0 \
  --threads "$THREADS"
"$A" train calibrate --package "$RUNS/glance/package" --data "$DATA/short_val" \
  --threads "$THREADS" --workers "$WORKERS"
say "evaluate the package"
rm -rf "$ZOO"
mkdir -p "$(dirname "$ZOO")" "$RESULTS"
cp -r "$RUNS/glance/package" "$ZOO"
"$A" eval short --data "$DATA/short_test" --model shipped="$ZOO" \
  --claim shipped --out "$RUNS/eval_shipped" --threads "$THREADS" --no-progress
"$A" eval honesty --data "$DATA/short_test" --package "$ZOO" --claim \
  --out "$RUNS/eval_shipped" --threads "$THREADS" --workers "$WORKERS" --no-progress
"$A" eval long --data "$DATA/long_test" --package "$ZOO" --ks 1,2,4 --claim \
  --out "$RUNS/eval_shipped" --threads "$THREADS" --no-progress
"$A" eval ood --data ../shared/media --package "$ZOO" --out "$RUNS/eval_shipped" \
  --threads "$THREADS" --no-progress
cp "$RUNS"/eval_shipped/eval_{short,honesty,long,ood}.json "$RESULTS/"
cp "$ZOO/config.json" "$RESULTS/package_config.json"
say "made: $ZOO ($(du -sh "$ZOO" | cut -f1))"
.venv/bin/python scripts/make_model_time.py "$STAGES" "$RESULTS/make_model_time.json" \
  --recipe "EPOCHS=$EPOCHS EDGE_VIEWS=$EDGE_VIEWS EDGE_FROM=$EDGE_FROM WORKERS=$WORKERS THREADS=$THREADS"
.venv/bin/python scripts/render_results.py  # the tables of docs/avsynth.md

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
