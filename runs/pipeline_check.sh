#!/usr/bin/env bash
# Pipeline check: every figure script of both papers once at a tiny CPU scale,
# each plot under runs/results/pipeline/. It shows that every script runs end
# to end and what each one draws; its numbers are not results (a 2k-step run
# of a model this small says nothing about the methods).
#   runs/pipeline_check.sh     # about 45 minutes on 2 CPU cores
# The tiny scale, the same for every method: FLAGS below (a model of cnn_depth
# 4, deter/stoch 16/8, 32 units, batch 4 x 20, 10 updates per 500 env steps),
# STEPS=2000, one task per figure (Figure 4: two), SEEDS "0 1" where a figure
# shows a spread over seeds, else 0. BASELINES (default: upstream's
# scores/baselines.json beside this checkout, if there) adds upstream's final
# scores to Figure 2.
# Variables: LOGROOT (default runs/logdir/pipeline), OUTPUT (default
# runs/results/pipeline), PYTHON, DRY_RUN (1: print the commands only).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
: "${PYTHON:=python3}" "${LOGROOT:=$ROOT/runs/logdir/pipeline}"
: "${OUTPUT:=$ROOT/runs/results/pipeline}"
: "${BASELINES:=$ROOT/../dreamer/scores/baselines.json}" "${DRY_RUN:=0}"
export PYTHON LOGROOT DRY_RUN STEPS=2000
export FLAGS="--cnn_depth 4 --deter_size 16 --stoch_size 8 --num_units 32 \
--batch_size 4 --batch_length 20 --prefill 500 --train_every 500 \
--train_steps 10 --pretrain 10 --eval_every 500 --log_every 500 \
--time_limit 500 --action_repeat 4 --log_images False --precision 32 \
--jit False"
run() {  # command...: runs it, or prints it with DRY_RUN=1
  if [ "$DRY_RUN" = 1 ]; then echo "$*"; else "$@"; fi
}
plot() {  # figure output [plot.py flags]
  run "$PYTHON" "$ROOT/runs/plot.py" "$LOGROOT/$1" --output "$OUTPUT/$2" \
    "${@:3}"
}
[ "$DRY_RUN" = 1 ] || mkdir -p "$OUTPUT"
baseline=()
[ -f "$BASELINES" ] && baseline=(--baseline "$BASELINES")

TASKS=cartpole_swingup SEEDS="0 1" "$ROOT/runs/bird_figure2.sh"
plot bird_figure2 bird_figure2 ${baseline[@]+"${baseline[@]}"}
TASKS=cartpole_swingup SEEDS="0 1" OUTPUT="$OUTPUT/bird_figure5" \
  "$ROOT/runs/bird_figure5.sh"
TASKS="cartpole_balance reacher_easy" SEEDS=0 "$ROOT/runs/bird_figure4.sh"
plot bird_figure4 bird_figure4
TASKS=cartpole_swingup SEEDS=0 "$ROOT/runs/bird_ablation.sh"
plot bird_ablation bird_ablation
TASKS=cartpole_swingup SEEDS="0 1" "$ROOT/runs/idm_vs_dreamer.sh"
plot idm_vs_dreamer idm_vs_dreamer
TASKS=cartpole_swingup SEEDS="0 1" OUTPUT="$OUTPUT/idm_figure2" \
  "$ROOT/runs/idm_figure2.sh"
TASKS=cartpole_swingup SEEDS=0 "$ROOT/runs/idm_ablation.sh"
plot idm_ablation idm_ablation
TASKS=cartpole_swingup SEEDS=0 "$ROOT/runs/sampler_comparison.sh"
plot sampler_comparison sampler_comparison
runs="$LOGROOT/bird_figure2/cartpole_swingup"
run "$PYTHON" "$ROOT/runs/predictions.py" "$runs/dreamer/0" "$runs/bird/0" \
  --output "$OUTPUT/bird_figure3_cartpole_swingup"
run "$PYTHON" "$ROOT/runs/idm_figure1.py" \
  "$LOGROOT/idm_vs_dreamer/cartpole_swingup/idm/0" \
  --output "$OUTPUT/idm_figure1_cartpole_swingup"
