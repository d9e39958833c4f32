#!/usr/bin/env bash
# BIRD's Figure 4 (supplement): BIRD against Dreamer on the rest of Dreamer's
# 20 Control Suite tasks (those not in Figure 2), 3 seeds.
#   runs/bird_figure4.sh
#   python runs/plot.py runs/logdir/bird_figure4 \
#       --output runs/results/bird_figure4
# Variables: see runs/common.sh.
: "${TASKS:=acrobot_swingup cartpole_balance cartpole_balance_sparse \
cartpole_swingup_sparse cheetah_run cup_catch finger_spin finger_turn_easy \
finger_turn_hard pendulum_swingup quadruped_run quadruped_walk reacher_easy \
reacher_hard walker_stand walker_walk}"
: "${METHODS:=dreamer bird}" "${SEEDS:=0 1 2}" "${STEPS:=1e6}"
source "$(dirname "$0")/common.sh"
run_figure bird_figure4
