#!/usr/bin/env bash
# IDM against Dreamer on hopper hop and the BIRD tasks, 3 seeds (the appendix
# has no return curves; this is the main text's comparison).
#   runs/idm_vs_dreamer.sh
#   python runs/plot.py runs/logdir/idm_vs_dreamer \
#       --output runs/results/idm_vs_dreamer
# Variables: see runs/common.sh.
: "${TASKS:=hopper_hop hopper_stand walker_run cartpole_swingup}"
: "${METHODS:=dreamer idm}" "${SEEDS:=0 1 2}" "${STEPS:=1e6}"
source "$(dirname "$0")/common.sh"
run_figure idm_vs_dreamer
