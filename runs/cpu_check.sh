#!/usr/bin/env bash
# CPU learning check: Dreamer, BIRD and IDM each learn a task in under 40 minutes on 2 CPU
# cores, clearly above a random policy.
#   runs/cpu_check.sh     # about 75 minutes; writes runs/results/cpu_check.{png,md}
#
# The task, walker_stand, was chosen by measurement. A random policy scored 129.9 ± 12.9 on it
# (threshold 168.5). With this configuration Dreamer's test returns at 20k-25k steps were
# 294.5, 323.1 and 255.3. The same model with half the updates stayed near the threshold on
# walker_stand for 20k steps and at random level (2.6) on cheetah_run (random 5.3 ± 1.9);
# finger_spin (random 1.2 ± 1.7) scored 0 at 10k.
#
# The reduced configuration, the same for every method (BIRD's larger model is overridden):
# batch 16 x 32 instead of 50 x 50, cnn_depth 8 instead of 32, deter/stoch 100/20 instead of
# 200/30, 200 units instead of 400, evaluation every 2500 steps, 25k env steps; everything else
# is each method's default (100 updates per 1000 env steps). Measured train steps on this CPU:
# Dreamer 0.25 s, IDM 0.43 s.
#
# It passes when each method's final test return (the mean of its last 3 evaluations) is
# above the random policy's mean + 3 std over EPISODES episodes. Variables: see common.sh,
# and EPISODES (default 10), OUTPUT (default runs/results/cpu_check).
: "${TASKS:=walker_stand}" "${METHODS:=dreamer bird idm}" "${SEEDS:=0}" "${STEPS:=2.5e4}"
: "${EPISODES:=10}"
: "${FLAGS:=--batch_size 16 --batch_length 32 --cnn_depth 8 --deter_size 100 --stoch_size 20 --num_units 200 --eval_every 2500 --log_every 2500 --precision 32 --jit False}"
source "$(dirname "$0")/common.sh"
: "${OUTPUT:=$ROOT/runs/results/cpu_check}"

for task in $TASKS; do
  random="$LOGROOT/cpu_check/$task/random"
  command="$PYTHON $ROOT/runs/random_baseline.py --task dmc_$task --episodes $EPISODES --logdir $random"
  if [ "$DRY_RUN" = 1 ]; then
    echo "$command"
  elif [ ! -f "$random/$((EPISODES - 1))/metrics.jsonl" ]; then
    run_one "$random" "$command"
  fi
done
run_figure cpu_check
[ "$DRY_RUN" = 1 ] && exit 0
"$PYTHON" "$ROOT/runs/plot.py" "$LOGROOT/cpu_check" --output "$OUTPUT" --above random --sigmas 3
