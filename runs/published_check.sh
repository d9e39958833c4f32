#!/usr/bin/env bash
# The fork's Dreamer at every upstream default beside upstream's published
# curve: dmc_cartpole_balance_sparse, seed 0, batch 50 x 50, the full model,
# action repeat 2, one test episode every 1e4 env steps, the hardware's
# default precision, trained until its checkpoint at 105k env steps, which is
# then evaluated over EPISODES episodes (final.jsonl).
#   runs/published_check.sh          # about 13 hours on 2 cores of an Intel
#                                    # Xeon (bfloat16), 50 of an AMD EPYC
#                                    # Zen 3 (float32); rerun it to resume
#   UPSTREAM=../dreamer runs/published_check.sh
#   METHODS=upstream FLAGS="--precision 32 --resumable True" \
#     UPSTREAM=../dreamer runs/published_check.sh  # upstream's own code
#                                    # beside it (float32: its float16 does
#                                    # not train on a CPU; a stop that saves)
# Then runs/published_check.py bins the test returns as upstream's
# plotting.py does and sets them beside the five seeds of upstream's
# scores/dreamer.json (read from the upstream checkout: --upstream, else
# $UPSTREAM, else ../dreamer), writing OUTPUT.{png,md,json}.
#
# Upstream's loop tests before it collects, so a run to 105k env steps ends
# without the test at 105k that upstream's curves include; the first episode
# of the final evaluation of that checkpoint stands in for it (both seeded
# apart from training; runs/published_check.py says which it took).
# Variables: see runs/common.sh, and EPISODES (default 10), OUTPUT (default
# runs/results/published_check/figure; the report beside it,
# runs/results/published_check.md, is written by hand).
: "${TASKS:=cartpole_balance_sparse}" "${METHODS:=dreamer}" "${SEEDS:=0}"
: "${STEPS:=1.05e5}" "${EPISODES:=10}"
source "$(dirname "$0")/common.sh"
: "${OUTPUT:=$ROOT/runs/results/published_check/figure}"

figure_runs published_check
for ((i = 0; i < ${#RUNS[@]}; i += 2)); do
  RUNS[i + 1]="${RUNS[i + 1]} && $(evaluate_command "${RUNS[i]}")"
done
launch_runs published_check
final_evaluations published_check
after_runs "$PYTHON" "$ROOT/runs/published_check.py" \
  "$LOGROOT/published_check" --output "$OUTPUT"
