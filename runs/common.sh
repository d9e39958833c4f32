# Sourced by the figure scripts: runs every TASK x METHOD x SEED of a figure.
#
# Every variable can be set from the environment:
#   TASKS    tasks without the dmc_ prefix, e.g. "walker_run hopper_hop"
#   METHODS  names of runs/methods.py, e.g. "dreamer bird softbird_0.2"
#   SEEDS    e.g. "0 1 2"
#   STEPS    env steps of each run, e.g. 1e6
#   LOGROOT  runs go to LOGROOT/<figure>/<task>/<method>/<seed>
#            (default: runs/logdir)
#   FLAGS    extra flags for every run, e.g. "--precision 16"
#   JOBS     runs at once (default 1)
#   DRY_RUN  1: print the commands instead of running them
#   PYTHON   the interpreter (default: python3)
# A finished run (its checkpoint reached STEPS) is left out; a partial one
# resumes. Each run's output goes to <logdir>/train.log, its exit code to
# <logdir>/exit_code; runs/status.py LOGROOT/<figure> lists them.

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${PYTHON:=python3}" "${LOGROOT:=$ROOT/runs/logdir}" "${FLAGS:=}"
: "${JOBS:=1}" "${DRY_RUN:=0}"

method_command() {  # method: its script and flags (runs/methods.py)
  python3 "$ROOT/runs/methods.py" "$1"
}

finished_runs() {  # logdir...: those whose checkpoint reached STEPS
  local started=() logdir
  for logdir in "$@"; do
    [ -f "$logdir/variables.pkl" ] && started+=("$logdir")
  done
  [ ${#started[@]} -gt 0 ] || return 0
  "$PYTHON" "$ROOT/runs/status.py" --finished "$STEPS" "${started[@]}"
}

run_one() {  # logdir command
  mkdir -p "$1"
  local start=$SECONDS code=0
  echo "start $1"
  eval "$2" > "$1/train.log" 2>&1 || code=$?
  echo "$code" > "$1/exit_code"
  if [ "$code" = 0 ]; then
    echo "done $1 in $((SECONDS - start)) s"
  else
    echo "FAILED $1 after $((SECONDS - start)) s: see $1/train.log"
    return 1
  fi
}
export -f run_one

figure_runs() {  # figure: RUNS, pairs of logdir and command left to run
  local figure=$1 task method seed command logdir
  local logdirs=() commands=()
  for task in $TASKS; do
    for method in $METHODS; do
      command=$(method_command "$method")
      for seed in $SEEDS; do
        logdir="$LOGROOT/$figure/$task/$method/$seed"
        logdirs+=("$logdir")
        commands+=("$PYTHON $ROOT/$command --task dmc_$task --seed $seed --steps $STEPS --logdir $logdir${FLAGS:+ $FLAGS}")
      done
    done
  done
  local finished
  finished=$(finished_runs "${logdirs[@]}")
  RUNS=()
  for i in "${!logdirs[@]}"; do
    if grep -qxF -- "${logdirs[i]}" <<< "$finished"; then
      echo "# finished: ${logdirs[i]}"
    else
      RUNS+=("${logdirs[i]}" "${commands[i]}")
    fi
  done
}

run_figure() {  # figure
  figure_runs "$1"
  if [ "$DRY_RUN" = 1 ]; then
    for ((i = 1; i < ${#RUNS[@]}; i += 2)); do echo "${RUNS[i]}"; done
    return
  fi
  [ ${#RUNS[@]} -gt 0 ] || return 0
  printf '%s\0' "${RUNS[@]}" |
    xargs -0 -n 2 -P "$JOBS" bash -c 'run_one "$1" "$2"' _
}
