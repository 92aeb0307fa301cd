#!/usr/bin/env bash
# How the shipped avsynth 1.1.0 was made from avsynth 1.0.0 (the 10-class package that
# scripts/make_model.sh trained from scratch before the background outcome existed): three
# fine-tuning legs, then the glance, calibration and evaluations, exactly as run. Replays it:
#   FROM=path/to/avsynth-1.0.0 bash scripts/upgrade_model.sh
# (1.0.0 is in git history: `git show 9cc4d60:models/zoo/avsynth/weights.safetensors`, with its
# config.json). scripts/make_model.sh is the from-scratch recipe of the same model.
set -euo pipefail
cd "$(dirname "$0")/.."
A=${AVSERVE:-.venv/bin/avserve}
DATA=${DATA:-data/avsynth}
RUNS=${RUNS:-runs}
FROM=${FROM:?set FROM to the avsynth 1.0.0 package}
W=(--threads 2 --workers 2 --no-progress)

gen() { "$A" data avsynth --seed 0 --workers 2 "$@"; }
leg() {  # run init lr warmup epochs seed
  "$A" train avslowfast --data "$DATA/short_train" --val-data "$DATA/short_val" --out "$RUNS/$1" \
    --arch avslowfast_tiny --epochs "$5" --batch-size 16 --lr "$3" --warmup-epochs "$4" \
    --crop-size 64 --seed "$6" --init "$2" --audio-dropout 0.3 --name avsynth --version 1.1.0 \
    --head avsynth "${W[@]}"
}

gen --split short --subset train --count 1000 --background 400 --out "$DATA/short_train"
gen --split short --subset val --count 200 --background 100 --out "$DATA/short_val"
gen --split long --subset train --count 120 --out "$DATA/long_train"
gen --split short --subset test --count 300 --background 100 --out "$DATA/short_test"
gen --split long --subset test --count 60 --out "$DATA/long_test"
leg bg "$FROM" 0.01 0.5 6 0
leg bg2 "$RUNS/bg/package" 0.005 0 4 1
# leg 3 adds clips cut like the glance's long-video windows (split "window")
gen --split short --subset train --count 1000 --background 400 --windows 500 --out "$DATA/short_train"
gen --split short --subset val --count 200 --background 100 --windows 100 --out "$DATA/short_val"
leg bg3 "$RUNS/bg2/package" 0.005 0 4 2
"$A" train glance --heavy "$RUNS/bg3/package" --data "$DATA/long_train" --out "$RUNS/glance3" \
  --threads 2 --seed 0 --no-progress
"$A" train calibrate --package "$RUNS/glance3/package" --data "$DATA/short_val" --threads 2 --workers 2
rm -rf models/zoo/avsynth && cp -r "$RUNS/glance3/package" models/zoo/avsynth
E=(--out docs/results "${W[@]}")
"$A" eval short --data "$DATA/short_test" --model shipped=models/zoo/avsynth --claim shipped "${E[@]}"
"$A" eval honesty --data "$DATA/short_test" --package models/zoo/avsynth --claim "${E[@]}"
"$A" eval long --data "$DATA/long_test" --package models/zoo/avsynth --ks 1,2,4 --claim "${E[@]}"
"$A" eval ood --data ../shared/media --package models/zoo/avsynth --out docs/results \
  --threads 2 --no-progress
.venv/bin/python scripts/render_results.py
