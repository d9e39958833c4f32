#!/usr/bin/env bash
# CPU learning check: Dreamer, BIRD and IDM each train a task in under 40 minutes on 2 CPU
# cores, and their final policies are compared with a random policy.
#   runs/cpu_check.sh     # about 95 minutes; writes runs/results/cpu_check.{png,md}
#
# The task, walker_stand, was chosen by measurement (random policy: mean ± std of 10 episodes;
# Dreamer: test returns of pilot runs with this reduced model):
#   walker_stand, repeat 2: random 129.9 ± 12.9; Dreamer 295, 323, 255 at 18k-23k steps in one
#     run and 93, 167, 150 in another (100 updates per 1000 steps); with 50 updates it stayed
#     near the threshold for 20k steps.
#   walker_stand, repeat 4: random 144.1 ± 8.0; Dreamer 5k-15k steps: 229, 167, 151, 142, 149
#     and 175, 247, 151, 134, 336. Repeat 4 halves the rendering per env step, so more updates
#     fit in 40 minutes (measured 35 s per 1000 env steps for Dreamer, 56 s for IDM).
#   cheetah_run (random 5.3 ± 1.9) scored 2.6 at 20k; finger_spin (1.2 ± 1.7) 0 at 10k;
#   cartpole_swingup and cartpole_balance, repeat 8: random 128.2 ± 47.7 and 241.8 ± 52.0, too
#     wide a random spread for a short run.
#
# The reduced configuration, the same for every method (BIRD's larger model is overridden):
# batch 16 x 32 instead of 50 x 50, cnn_depth 8 instead of 32, deter/stoch 100/20 instead of
# 200/30, 200 units instead of 400, action repeat 4 instead of 2, evaluation every 2500 steps,
# 35k env steps; everything else is each method's default (100 updates per 1000 env steps).
#
# Measured with these defaults (seed 0; older code, another machine): random 144.1 ± 8.0
# (threshold 168.0); final test returns Dreamer 335.5 ± 54.8 (1230 s), BIRD 223.6 ± 39.1
# (1259 s), IDM 219.4 ± 42.9 (1947 s).
# Again on 2026-12-01 on an Intel Xeon with 2 cores: random 149.5 ± 21.9 (threshold
# 215.2); Dreamer 256.3 ± 30.7 (1464 s), BIRD 213.4 ± 51.0 (1525 s), IDM 199.0 ± 59.2
# (2343 s), IDM with --evaluator_negatives imagined 295.4 ± 42.6 (2492 s): BIRD and IDM
# below the threshold (runs/README.md, CPU learning check).
#
# It passes when each method's final test return is above the random policy's mean + 3 std
# over EPISODES episodes at the same action repeat. The final test return is that of the last
# checkpoint's policy over the same number of episodes (runs/evaluate.py, stored apart from
# the training curve in final.jsonl): one evaluation episode during training varied by up to
# 186 between neighbouring evaluations (BIRD at 25k-33k steps: 169, 70, 256, 144), too noisy
# to judge a run by.
# Variables: see common.sh, and EPISODES (default 10), REPEAT (default 4), OUTPUT (default
# runs/results/cpu_check).
: "${TASKS:=walker_stand}" "${METHODS:=dreamer bird idm}" "${SEEDS:=0}" "${STEPS:=3.5e4}"
: "${EPISODES:=10}" "${REPEAT:=4}"
: "${FLAGS:=--action_repeat $REPEAT --batch_size 16 --batch_length 32 --cnn_depth 8 --deter_size 100 --stoch_size 20 --num_units 200 --eval_every 2500 --log_every 2500 --precision 32 --jit False}"
source "$(dirname "$0")/common.sh"
: "${OUTPUT:=$ROOT/runs/results/cpu_check}"

for task in $TASKS; do
  random="$LOGROOT/cpu_check/$task/random/0"
  command="$PYTHON $ROOT/runs/random_baseline.py --task dmc_$task --episodes $EPISODES --action_repeat $REPEAT --logdir $random"
  if [ "$DRY_RUN" = 1 ]; then
    echo "$command"
  elif [ ! -f "$random/final.jsonl" ]; then
    run_one "$random" "$command"
  fi
done
run_figure cpu_check
# The final policy over as many episodes as the random baseline.
final_evaluations cpu_check
[ "$DRY_RUN" = 1 ] && exit 0
"$PYTHON" "$ROOT/runs/plot.py" "$LOGROOT/cpu_check" --output "$OUTPUT" \
  --above random --sigmas 3
