#!/usr/bin/env bash
# The RSSM's sampler as a condition: Dreamer, BIRD and IDM each with noise
# drawn per element (this project's default; the TF1 Dreamer's, which BIRD's
# §5.1 names as its baseline) and with one noise vector per step for the
# whole batch (upstream's TF2 sampler, which BIRD's and IDM's code build on;
# methods <name>_shared: --shared_noise True), on two tasks of both papers'
# figures, 3 seeds. Every other figure keeps one sampler for all its methods.
#   runs/sampler_comparison.sh
#   python runs/plot.py runs/logdir/sampler_comparison \
#       --output runs/results/sampler_comparison
# Variables: see runs/common.sh.
: "${TASKS:=hopper_hop walker_run}" "${SEEDS:=0 1 2}" "${STEPS:=1e6}"
: "${METHODS:=dreamer dreamer_shared bird bird_shared idm idm_shared}"
source "$(dirname "$0")/common.sh"
run_figure sampler_comparison
