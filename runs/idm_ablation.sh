#!/usr/bin/env bash
# IDM's ablations on the figure tasks, 3 seeds: IDM; without the decoding
# constraint (--constraint_scale 0); imagining from original memory only
# (--derived_starts False); without reliability weights
# (--reliability_weights False); and Dreamer. Each leaves out one part.
# METHODS="... idm_logit_bound" adds IDM with its imagined logits clipped to
# the range of the evaluator's training logits (--logit_bound True), which
# changes a part instead of leaving it out.
#   runs/idm_ablation.sh
#   python runs/plot.py runs/logdir/idm_ablation \
#       --output runs/results/idm_ablation
# Variables: see runs/common.sh.
: "${TASKS:=hopper_hop hopper_stand walker_run cartpole_swingup}"
: "${METHODS:=idm idm_no_constraint idm_original_only idm_no_weights dreamer}"
: "${SEEDS:=0 1 2}" "${STEPS:=1e6}"
source "$(dirname "$0")/common.sh"
run_figure idm_ablation
