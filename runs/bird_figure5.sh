#!/usr/bin/env bash
# BIRD's Figure 5 (supplement): model error in latent space over training,
# BIRD against Dreamer. Every run logs model_error (and model_error_1 to _15
# per horizon; runs/README.md, "model_error"), so by default this uses
# Figure 2's runs: it trains only those not finished yet, then plots.
#   runs/bird_figure5.sh
# Variables: see runs/common.sh, and FIGURE (default bird_figure2: whose runs),
# OUTPUT (default runs/results/bird_figure5).
: "${TASKS:=hopper_stand hopper_hop walker_run cartpole_swingup}"
: "${METHODS:=dreamer bird}" "${SEEDS:=0 1 2 3 4 5 6 7 8 9}" "${STEPS:=1e6}"
: "${FIGURE:=bird_figure2}"
source "$(dirname "$0")/common.sh"
: "${OUTPUT:=$ROOT/runs/results/bird_figure5}"
run_figure "$FIGURE"
plot_metrics "$FIGURE" "$OUTPUT" model_error model_error_15
