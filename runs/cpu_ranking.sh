#!/usr/bin/env bash
# BIRD and IDM, each at its defaults, at the CPU learning check's scale
# (runs/cpu_check.sh: walker_stand, the reduced model, action repeat 4, 35k
# env steps, float32) with seeds 0-2, each followed by its final evaluation,
# to be ranked against Dreamer's seeds of the upstream study, which ran with
# exactly these flags (runs/upstream_comparison.sh; its records are in
# runs/results/upstream_comparison/walker_stand/dreamer).
#   runs/cpu_ranking.sh                    # JOBS=2: 2 at once
#   python runs/plot.py runs/logdir/cpu_ranking \
#       runs/results/upstream_comparison --methods dreamer bird idm \
#       --last 5 --versus dreamer --output runs/results/cpu_ranking/figure
# Seeds run outermost, so a study stopped part way has as many seeds of each
# method. Variables: see runs/common.sh, and EPISODES (default 10), REPEAT
# (default 4).
: "${TASKS:=walker_stand}" "${METHODS:=bird idm}" "${SEEDS:=0 1 2}"
: "${STEPS:=3.5e4}" "${EPISODES:=10}" "${REPEAT:=4}"
: "${FLAGS:=--action_repeat $REPEAT --batch_size 16 --batch_length 32 --cnn_depth 8 --deter_size 100 --stoch_size 20 --num_units 200 --eval_every 2500 --log_every 2500 --precision 32 --jit False}"
source "$(dirname "$0")/common.sh"

figure_runs cpu_ranking
for ((i = 0; i < ${#RUNS[@]}; i += 2)); do
  RUNS[i + 1]="${RUNS[i + 1]} && $(evaluate_command "${RUNS[i]}")"
done
launch_runs cpu_ranking
final_evaluations cpu_ranking
