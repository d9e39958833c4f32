#!/usr/bin/env bash
# BIRD's Figure 2: BIRD against Dreamer on the tasks the paper names, 10 seeds.
# Both at Dreamer's model sizes and each with its own replay (BIRD: the newest
# 100k env steps; Dreamer: all), as in the paper; bird_ablation.sh adds
# Dreamer on BIRD's replay.
#   runs/bird_figure2.sh
#   python runs/plot.py runs/logdir/bird_figure2 \
#       --output runs/results/bird_figure2 \
#       --baseline ../dreamer/scores/baselines.json
# Variables: see runs/common.sh.
: "${TASKS:=hopper_stand hopper_hop walker_run cartpole_swingup}"
: "${METHODS:=dreamer bird}" "${SEEDS:=0 1 2 3 4 5 6 7 8 9}" "${STEPS:=1e6}"
source "$(dirname "$0")/common.sh"
run_figure bird_figure2
