#!/usr/bin/env bash
# Whole learning runs of upstream's own Dreamer (danijar/dreamer 56d4d44,
# trained through runs/upstream.py) beside this fork's Dreamer with its own
# sampler (per-element RSSM noise) and with upstream's (one noise vector per
# step for the whole batch, --shared_noise True), at the CPU learning check's
# scale (runs/cpu_check.sh: walker_stand, 35k env steps, the reduced model).
#   UPSTREAM=../dreamer runs/upstream_comparison.sh   # JOBS=2: 2 at once
#   python runs/plot.py runs/logdir/upstream_comparison --last 5 \
#       --versus upstream --output runs/logdir/upstream_comparison/figure
# Each run is followed by its final evaluation (EPISODES episodes of its
# last checkpoint's policy, runs/evaluate.py or runs/upstream.py --evaluate)
# so that a run's results are complete as soon as it ends; seeds run
# outermost, so a study stopped part way has equally many seeds of each arm.
# Variables: see runs/common.sh, and EPISODES (default 10), REPEAT (default
# 4), UPSTREAM (the upstream checkout, for the method upstream).
: "${TASKS:=walker_stand}" "${METHODS:=upstream dreamer dreamer_shared}"
: "${SEEDS:=0 1 2 3 4}" "${STEPS:=3.5e4}" "${EPISODES:=10}" "${REPEAT:=4}"
: "${FLAGS:=--action_repeat $REPEAT --batch_size 16 --batch_length 32 --cnn_depth 8 --deter_size 100 --stoch_size 20 --num_units 200 --eval_every 2500 --log_every 2500 --precision 32 --jit False}"
source "$(dirname "$0")/common.sh"

figure_runs upstream_comparison
for ((i = 0; i < ${#RUNS[@]}; i += 2)); do
  RUNS[i + 1]="${RUNS[i + 1]} && $(evaluate_command "${RUNS[i]}")"
done
launch_runs upstream_comparison
# Runs that finished before their evaluation did (an evaluation already made
# at the checkpoint's step is left alone).
final_evaluations upstream_comparison
