# Sourced by the figure scripts: runs every TASK x METHOD x SEED of a figure.
#
# Every variable can be set from the environment:
#   TASKS    tasks without the dmc_ prefix, e.g. "walker_run hopper_hop"
#   METHODS  among dreamer, bird, softbird, idm
#   SEEDS    e.g. "0 1 2"
#   STEPS    env steps of each run, e.g. 1e6
#   LOGROOT  runs go to LOGROOT/<figure>/<task>/<method>/<seed> (default: runs/logdir)
#   FLAGS    extra flags for every run, e.g. "--precision 16"
#   JOBS     runs at once (default 1)
#   DRY_RUN  1: print the commands instead of running them
#   PYTHON   the interpreter (default: python3)
# A finished run (its checkpoint reached STEPS) is skipped; a partial one resumes. Each run's
# output goes to <logdir>/train.log.

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${PYTHON:=python3}" "${LOGROOT:=$ROOT/runs/logdir}" "${FLAGS:=}" "${JOBS:=1}" "${DRY_RUN:=0}"

method_script() {
  case "$1" in
    dreamer) echo "dreamer.py" ;;
    bird) echo "bird.py" ;;
    softbird) echo "bird.py --soft True" ;;
    idm) echo "idm.py" ;;
    idm_imagined) echo "idm.py --evaluator_negatives imagined" ;;
    *) echo "unknown method '$1': use dreamer, bird, softbird, idm or idm_imagined" >&2; return 2 ;;
  esac
}

finished() {  # logdir steps: whether the run's checkpoint reached its steps
  [ -f "$1/variables.pkl" ] || return 1
  "$PYTHON" - "$1/variables.pkl" "$2" <<'PY'
import pickle, sys
with open(sys.argv[1], 'rb') as f:
  step = pickle.load(f)['_step']
sys.exit(0 if step >= float(sys.argv[2]) else 1)
PY
}

run_one() {  # logdir command
  mkdir -p "$1"
  local start=$SECONDS
  echo "start $1"
  if eval "$2" > "$1/train.log" 2>&1; then
    echo "done $1 in $((SECONDS - start)) s"
  else
    echo "FAILED $1 after $((SECONDS - start)) s: see $1/train.log"
    return 1
  fi
}
export -f run_one

run_figure() {  # figure
  local figure=$1 task method seed script logdir
  local pairs=()
  for task in $TASKS; do
    for method in $METHODS; do
      script=$(method_script "$method")
      for seed in $SEEDS; do
        logdir="$LOGROOT/$figure/$task/$method/$seed"
        if finished "$logdir" "$STEPS"; then
          echo "# finished: $logdir"
          continue
        fi
        pairs+=("$logdir" "$PYTHON $ROOT/$script --task dmc_$task --seed $seed --steps $STEPS --logdir $logdir${FLAGS:+ $FLAGS}")
      done
    done
  done
  if [ "$DRY_RUN" = 1 ]; then
    for ((i = 1; i < ${#pairs[@]}; i += 2)); do echo "${pairs[i]}"; done
    return
  fi
  [ ${#pairs[@]} -gt 0 ] || return 0
  printf '%s\0' "${pairs[@]}" | xargs -0 -n 2 -P "$JOBS" bash -c 'run_one "$1" "$2"' _
}
