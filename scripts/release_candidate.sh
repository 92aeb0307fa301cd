#!/usr/bin/env bash
# Ship a measured candidate as the bundled AVSynth model, keeping the previous release's results
# for comparison:
#   bash scripts/release_candidate.sh avsynth-1.2.0-bg runs/glance_views_bg/package
# 1. the shipped package's result files move to docs/results/releases/<name>-<version>/
#    (with its config.json as package_config.json);
# 2. the candidate's package replaces models/zoo/avsynth; it must be the package whose results
#    are in docs/results/candidates/<candidate>/ (same config.json, claims included);
# 3. the candidate's result files become docs/results/eval_*.json; the README's example answer,
#    the dense coverage file and every rendered table are regenerated.
# The release gate (docs/avsynth.md) is the reviewer's to read first: this script ships what it
# is given.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CANDIDATE=${1:?candidate folder name under docs/results/candidates}
PACKAGE=${2:?the candidate package directory}
FROM=docs/results/candidates/$CANDIDATE
ZOO=models/zoo/avsynth

cmp -s "$PACKAGE/config.json" "$FROM/package_config.json" || {
  echo "$PACKAGE/config.json differs from $FROM/package_config.json: not the measured package" >&2
  exit 2
}
old=$("$PY" -c "import json; print(json.load(open('$ZOO/config.json'))['version'].split('+')[0])")
keep=docs/results/releases/avsynth-$old
mkdir -p "$keep"
for f in eval_short eval_honesty eval_long eval_ood; do
  git mv -f "docs/results/$f.json" "$keep/$f.json"
  cp "$FROM/$f.json" "docs/results/$f.json"
done
cp "$ZOO/config.json" "$keep/package_config.json"
rm -rf "$ZOO"
mkdir -p "$ZOO"
cp "$PACKAGE"/{config.json,weights.safetensors,glance.safetensors} "$ZOO/"
chmod 644 "$ZOO"/*
"$PY" scripts/readme_answer.py --write
"$PY" scripts/dense_coverage.py
"$PY" scripts/render_results.py
echo "shipped $CANDIDATE as $ZOO ($(du -sh "$ZOO" | cut -f1)); $old results in $keep"
