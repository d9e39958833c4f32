#!/usr/bin/env bash
# BIRD's ablation (§5.3) on walker run, 3 seeds: BIRD; Soft-BIRD at each alpha
# of SOFT_ALPHAS (the paper shows "the best performance of Soft-BIRD" without
# its alpha; its authors' code uses 0.2); Dreamer; and Dreamer on BIRD's
# replay (dreamer_fifo: the newest 100k env steps), so that BIRD against
# dreamer_fifo isolates the objective and dreamer against dreamer_fifo the
# replay. Soft-BIRD's logdirs are named softbird_<alpha>.
#   runs/bird_ablation.sh
#   python runs/plot.py runs/logdir/bird_ablation \
#       --output runs/results/bird_ablation
# Variables: see runs/common.sh, and SOFT_ALPHAS (default "0.2 0.02 0.002").
: "${SOFT_ALPHAS:=0.2 0.02 0.002}"
: "${TASKS:=walker_run}" "${SEEDS:=0 1 2}" "${STEPS:=1e6}"
: "${METHODS:=dreamer dreamer_fifo bird$(printf ' softbird_%s' $SOFT_ALPHAS)}"
source "$(dirname "$0")/common.sh"
run_figure bird_ablation
