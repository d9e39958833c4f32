#!/usr/bin/env bash
# BIRD's ablation (§5.3): BIRD, Soft-BIRD and Dreamer on walker run, 3 seeds.
#   runs/bird_ablation.sh && python runs/plot.py runs/logdir/bird_ablation --output runs/results/bird_ablation
# Variables: see runs/common.sh.
: "${TASKS:=walker_run}" "${METHODS:=dreamer bird softbird}" "${SEEDS:=0 1 2}" "${STEPS:=1e6}"
source "$(dirname "$0")/common.sh"
run_figure bird_ablation
