#!/usr/bin/env bash
# Gymnasium tasks learn terminations by default (--pcont True): CartPole-v1,
# whose only signal is the pole falling, with and without the discount
# predictor, one seed each (a mechanism check, not a ranking), at a small
# CPU scale: the CPU check's model, batch 16 x 10 (a random CartPole episode
# lasts about 11 agent steps at repeat 2; shorter ones are not sampled),
# CartPole's own limit of 500 steps, 5 test episodes per evaluation, 30k env
# steps, then a 10-episode final evaluation.
#   runs/gym_pcont.sh      # JOBS=2: both at once
#   python runs/plot.py runs/logdir/gym_pcont --last 3 \
#       --output runs/results/gym_pcont/figure
#   python runs/continuation.py runs/logdir/gym_pcont/gym_CartPole-v1/*/0 \
#       --output runs/results/gym_pcont/continuation
# Variables: see runs/common.sh, and EPISODES (default 10).
: "${TASKS:=gym_CartPole-v1}" "${METHODS:=dreamer dreamer_no_pcont}"
: "${SEEDS:=0}" "${STEPS:=3e4}" "${EPISODES:=10}"
: "${FLAGS:=--action_repeat 2 --time_limit 500 --batch_size 16 --batch_length 10 --cnn_depth 8 --deter_size 100 --stoch_size 20 --num_units 200 --prefill 2500 --eval_every 2500 --eval_episodes 5 --log_every 2500 --precision 32 --jit False}"
source "$(dirname "$0")/common.sh"

figure_runs gym_pcont
for ((i = 0; i < ${#RUNS[@]}; i += 2)); do
  RUNS[i + 1]="${RUNS[i + 1]} && $(evaluate_command "${RUNS[i]}")"
done
launch_runs gym_pcont
final_evaluations gym_pcont
