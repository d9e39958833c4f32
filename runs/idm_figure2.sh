#!/usr/bin/env bash
# IDM's appendix A.4, Figure 2: the trajectory evaluator's training: its loss,
# its accuracy and the spread of the reliability weights over env steps, mean
# and std over seeds; and where the evaluator's logits lie on its training
# pairs and on the imagined transitions (runs/evaluator_logits.py, to
# OUTPUT_logits). By default the IDM runs of idm_vs_dreamer.sh: it trains
# only those not finished yet, then plots.
#   runs/idm_figure2.sh
# Variables: see runs/common.sh, and FIGURE (default idm_vs_dreamer: whose
# runs), OUTPUT (default runs/results/idm_figure2).
: "${TASKS:=hopper_hop hopper_stand walker_run cartpole_swingup}"
: "${METHODS:=idm}" "${SEEDS:=0 1 2}" "${STEPS:=1e6}"
: "${FIGURE:=idm_vs_dreamer}"
source "$(dirname "$0")/common.sh"
: "${OUTPUT:=$ROOT/runs/results/idm_figure2}"
run_figure "$FIGURE"
plot_metrics "$FIGURE" "$OUTPUT" evaluator_loss evaluator_accuracy weight_std \
  weight_min weight_max
after_runs "$PYTHON" "$ROOT/runs/evaluator_logits.py" "$LOGROOT/$FIGURE" \
  --output "${OUTPUT}_logits"
