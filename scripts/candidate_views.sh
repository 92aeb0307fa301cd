#!/usr/bin/env bash
# The avsynth 1.2.0 and 1.3.0 *candidates* (docs/avsynth.md "The candidates and the release
# gate" says what became of them): the shipped 1.1.0 (1.3.0: 1.2.0) fine-tuned on the long
# videos as serving shows them, exactly as run.
#   bash scripts/candidate_views.sh                       the first candidate (views)
#   BACKGROUND=850 RUN=views_bg OUT=docs/results/candidates/avsynth-1.2.0-bg \
#     bash scripts/candidate_views.sh                     the second (views + background share)
#   BACKGROUND=850 RUN=views_bg_more INIT=runs/views_bg/package EPOCHS=4 LR=0.0025 SEED=4 \
#     OUT=docs/results/candidates/avsynth-1.2.0-bg-more bash scripts/candidate_views.sh
#                                                         the third (the second, 4 epochs more)
#   BACKGROUND=850 RUN=views_edge EDGE_VIEWS=2 VERSION=1.3.0 \
#     OUT=docs/results/candidates/avsynth-1.3.0-edge bash scripts/candidate_views.sh
#                                                         1.3.0-edge: the shipped 1.2.0 + edge views
# INIT is the package the leg starts from: the shipped 1.1.0 for the first two (once the zoo
# holds a later release, take 1.1.0 from git: `git show 097d2a2:models/zoo/avsynth/<file>`).
# (~35 min on 2 cores after the data; generating the data takes longer.)
# Data: scripts/make_model.sh's short sets (short_train with BACKGROUND background clips), plus
# long_train 240 and long_val 40 (same seeds).
set -euo pipefail
cd "$(dirname "$0")/.."
A=${AVSERVE:-.venv/bin/avserve}
DATA=${DATA:-data/avsynth}
RUNS=${RUNS:-runs}
OUT=${OUT:-docs/results/candidates/avsynth-1.2.0}
RUN=${RUN:-views5}
BACKGROUND=${BACKGROUND:-400}
INIT=${INIT:-models/zoo/avsynth}
EPOCHS=${EPOCHS:-6}
LR=${LR:-0.005}
SEED=${SEED:-3}
EDGE_VIEWS=${EDGE_VIEWS:-0}
VERSION=${VERSION:-1.2.0}
W=(--threads 2 --workers 2 --no-progress)

gen() { "$A" data avsynth --seed 0 --workers 2 "$@"; }
gen --split short --subset train --count 1000 --background "$BACKGROUND" --windows 500 \
  --out "$DATA/short_train"
gen --split short --subset val --count 200 --background 100 --windows 100 --out "$DATA/short_val"
gen --split short --subset test --count 300 --background 100 --out "$DATA/short_test"
gen --split long --subset train --count 240 --out "$DATA/long_train"
gen --split long --subset val --count 40 --out "$DATA/long_val"
gen --split long --subset test --count 60 --out "$DATA/long_test"
# one leg from the shipped 1.1.0: short clips + every long_train video's event views and
# event-free stretches (offline/data/long_views.py), best epoch on short_val + long_val views
"$A" train avslowfast --data "$DATA/short_train" --val-data "$DATA/short_val" \
  --mix "$DATA/long_train:views" --val-mix "$DATA/long_val:views" --out "$RUNS/$RUN" \
  --edge-views "$EDGE_VIEWS" --arch avslowfast_tiny --epochs "$EPOCHS" --batch-size 16 \
  --lr "$LR" --warmup-epochs 0 --crop-size 64 --seed "$SEED" --init "$INIT" --audio-dropout 0.3 \
  --name avsynth --version "$VERSION" --head avsynth "${W[@]}"
"$A" train glance --heavy "$RUNS/$RUN/package" --data "$DATA/long_train" --out "$RUNS/glance_$RUN" \
  --threads 2 --seed 0 --no-progress
"$A" train patch --package "$RUNS/glance_$RUN/package" --data "$DATA/long_val" --rhos 0.6,0.8,1.0 \
  --threads 2
"$A" train calibrate --package "$RUNS/glance_$RUN/package" --data "$DATA/short_val" --threads 2 --workers 2
P="$RUNS/glance_$RUN/package"
E=(--out "$OUT" "${W[@]}")
"$A" eval ood --data ../shared/media --package "$P" --out "$OUT" --threads 2 --no-progress
"$A" eval short --data "$DATA/short_test" --model shipped="$P" --claim shipped "${E[@]}"
"$A" eval honesty --data "$DATA/short_test" --package "$P" --claim "${E[@]}"
"$A" eval long --data "$DATA/long_test" --package "$P" --ks 1,2,4 --claim "${E[@]}"
cp "$P/config.json" "$OUT/package_config.json"
.venv/bin/python scripts/render_results.py
