#!/usr/bin/env bash
# Reproduce the SeqGAN paper's music experiment (Table 4, Nottingham) at a CPU-sized schedule.
# The paper's representation (pitch every 0.4 s, 88 keys + silence, T = 32) and sizes (G: emb 32,
# hidden 32; D: the paper's filter table for T = 32); the schedule is cut so that it finishes in
# well under an hour on a 2-core CPU (the paper: 120 MLE epochs, 50 D rounds, 200 adversarial
# rounds of 1 g-step and 5 x 3 d-steps; here: see the --set lines). Pass --full for the paper's.
#   usage: bash scripts/reproduce_nottingham.sh [NOTTINGHAM_MELODY_DIR] [--full]
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-../shared/data/nottingham/MIDI/melody}
data=datasets/prepared/nottingham-paper
run=runs/nottingham-paper
schedule=(--set mle_epochs=40 --set d_pretrain_rounds=5 --set d_epochs=2 --set d_samples=1000
          --set adv_rounds=20 --set d_steps=1)
[ "${2:-}" = "--full" ] && schedule=()
start=$(date +%s)
seqgan-music prepare "$src" --out "$data" --encoding paper --seq-len 32 --hop 16
seqgan-music train "$data" --out "$run" --preset paper "${schedule[@]}" $( [ -f "$run/last.pt" ] && echo --resume )
seqgan-music evaluate "$run" --data "$data" --num 1000 --temperature 1.0 --temperature 0.9 --temperature 0.8
echo "reproduce_nottingham: $(( $(date +%s) - start )) s in all"
