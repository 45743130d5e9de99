#!/usr/bin/env bash
# Redraws the onset detector's delay-versus-false-alarm curve (docs/onset-curve.png) and prints
# the tables of docs/onset-detection.md section 3.
#   scripts/eval-onset.sh [MODEL.onnx]     (default: the bundled model)
# Trains the other-seed model once (build/other-seed/, synth seed 29, the bundled model's
# recipe with a 7-minute cap), then renders and scores 2 + 9 + 9 plates (cached under
# build/onset-eval/: a second run with the same models only replays the rules, in minutes).
# Extra arguments after MODEL go to tests/benchmarks/eval_onset.py (e.g. --rescore).
set -euo pipefail
cd "$(dirname "$0")/.."
# a worktree's own environment first, when it has one
if [[ -x .venv/bin/python ]]; then PATH="$PWD/.venv/bin:$PATH"; fi
model="${1:-models/stemwatch-default.onnx}"
shift || true
other=build/other-seed
if [[ ! -f "$other/other-seed.onnx" ]]; then
  rm -rf "$other"
  mkdir -p "$other"
  sed -e "s#build/default-model/#$other/#" -e 's/max_minutes: [0-9]*/max_minutes: 7/' \
    models/stemwatch-default.train.yaml > "$other/train.yaml"
  stemwatch synth dataset "$other/data" --size 512 --experiments 3 --wells-per-class 6 \
    --fields 2 --hours 0,6,12,24,48 --label-by state --seed 29 --workers 2
  stemwatch train --config "$other/train.yaml"
  stemwatch export "$other/run/best.pt" -o "$other/other-seed.onnx" --name stemwatch-seed29
fi
python tests/benchmarks/eval_onset.py --model "$model" --other-model "$other/other-seed.onnx" \
  --json build/onset-eval/figures.json "$@"
