# Sourced by the figure scripts: runs every TASK x METHOD x SEED of a figure.
#
# Every variable can be set from the environment:
#   TASKS    Control Suite tasks without the dmc_ prefix, e.g. "walker_run
#            hopper_hop", or other suites' with theirs (gym_CartPole-v1)
#   METHODS  names of runs/methods.py, e.g. "dreamer bird softbird_0.2"
#   SEEDS    e.g. "0 1 2"
#   STEPS    env steps of each run, e.g. 1e6
#   LOGROOT  runs go to LOGROOT/<figure>/<task>/<method>/<seed>
#            (default: runs/logdir)
#   FLAGS    extra flags for every run, e.g. "--precision 16"
#   JOBS     runs at once (default 1)
#   DRY_RUN  1: print the commands (with LAUNCHER=slurm: the batch script and
#            the sbatch command) instead of running them
#   PYTHON   the interpreter (default: python3); on a cluster, a path that
#            every node can run
#   LAUNCHER local (default): run here, JOBS at once; slurm: submit the runs
#            as one Slurm job array (sbatch), options below
# A finished run (its checkpoint reached STEPS) is left out; a partial one
# resumes. Each run's output goes to <logdir>/train.log (local) or
# <logdir>/slurm.out (slurm), its exit code to <logdir>/exit_code;
# runs/status.py LOGROOT/<figure> lists them.
#
# Slurm options, for LAUNCHER=slurm (each empty: Slurm's default):
#   CLUSTER_PARTITION   --partition
#   CLUSTER_TIME        --time, a run's time limit per job, e.g. 24:00:00;
#                       a run that reaches it is checkpointed and requeued
#   CLUSTER_GPUS        GPUs per run (default 1; 0 for none)
#   CLUSTER_CPUS        --cpus-per-task (default 4)
#   CLUSTER_MEM         --mem per run, e.g. 32G
#   CLUSTER_ACCOUNT     --account
#   CLUSTER_SIGNAL      seconds before the time limit that Slurm warns the
#                       run (default 600): it checkpoints, exits and the task
#                       is requeued, to resume from its checkpoint
#   CLUSTER_ARGS        more sbatch arguments, e.g. "--qos=long --array=%8"

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${PYTHON:=python3}" "${LOGROOT:=$ROOT/runs/logdir}" "${FLAGS:=}"
: "${JOBS:=1}" "${DRY_RUN:=0}" "${LAUNCHER:=local}"
: "${CLUSTER_PARTITION:=}" "${CLUSTER_TIME:=}" "${CLUSTER_GPUS:=1}"
: "${CLUSTER_CPUS:=4}" "${CLUSTER_MEM:=}" "${CLUSTER_ACCOUNT:=}"
: "${CLUSTER_SIGNAL:=600}" "${CLUSTER_ARGS:=}"

method_command() {  # method: its script and flags (runs/methods.py)
  python3 "$ROOT/runs/methods.py" "$1"
}

task_flag() {  # task: its --task (the Control Suite's without its prefix)
  case $1 in
    atari_*|gym_*) echo "$1" ;;
    *) echo "dmc_$1" ;;
  esac
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

evaluate_command() {  # logdir: its run's final evaluation, EPISODES episodes
  case $1 in
    */upstream/*) echo "$PYTHON $ROOT/runs/upstream.py --evaluate $EPISODES \
--logdir $1" ;;
    *) echo "$PYTHON $ROOT/runs/evaluate.py $1 --episodes $EPISODES" ;;
  esac
}

final_evaluations() {  # figure: every run's final evaluation, once per step
  local task method seed logdir command
  for task in $TASKS; do
    for method in $METHODS; do
      for seed in $SEEDS; do
        logdir="$LOGROOT/$1/$task/$method/$seed"
        command=$(evaluate_command "$logdir")
        if [ "$DRY_RUN" = 1 ]; then
          echo "$command"
        elif ! eval "$command" >> "$logdir/evaluate.log" 2>&1; then
          echo "FAILED evaluation of $logdir: see $logdir/evaluate.log"
          return 1
        else
          tail -n 1 "$logdir/evaluate.log"
        fi
      done
    done
  done
}

figure_runs() {  # figure: RUNS, pairs of logdir and command left to run
  local figure=$1 task method seed command logdir
  local logdirs=() commands=()
  local -A scripts=()  # One methods.py call per method, not per task.
  for method in $METHODS; do
    scripts[$method]=$(method_command "$method")
  done
  # Seeds outermost: a study stopped part way has as many seeds of every
  # task and method as it could.
  for seed in $SEEDS; do
    for task in $TASKS; do
      for method in $METHODS; do
        command=${scripts[$method]}
        logdir="$LOGROOT/$figure/$task/$method/$seed"
        logdirs+=("$logdir")
        commands+=("$PYTHON $ROOT/$command --task $(task_flag "$task") \
--seed $seed \
--steps $STEPS --logdir $logdir${FLAGS:+ $FLAGS}")
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

batch_script() {  # figure: a Slurm batch script running RUNS as an array
  local logdirs=() commands=() i
  for ((i = 0; i < ${#RUNS[@]}; i += 2)); do
    logdirs+=("${RUNS[i]}")
    commands+=("${RUNS[i + 1]}")
  done
  echo '#!/usr/bin/env bash'
  echo "#SBATCH --job-name=$1"
  echo "#SBATCH --array=0-$(( ${#logdirs[@]} - 1 ))"
  echo '#SBATCH --requeue'
  echo "#SBATCH --signal=B:USR1@$CLUSTER_SIGNAL"
  echo '#SBATCH --output=/dev/null'
  echo "#SBATCH --cpus-per-task=$CLUSTER_CPUS"
  [ "$CLUSTER_GPUS" = 0 ] || echo "#SBATCH --gres=gpu:$CLUSTER_GPUS"
  [ -z "$CLUSTER_PARTITION" ] || echo "#SBATCH --partition=$CLUSTER_PARTITION"
  [ -z "$CLUSTER_TIME" ] || echo "#SBATCH --time=$CLUSTER_TIME"
  [ -z "$CLUSTER_MEM" ] || echo "#SBATCH --mem=$CLUSTER_MEM"
  [ -z "$CLUSTER_ACCOUNT" ] || echo "#SBATCH --account=$CLUSTER_ACCOUNT"
  echo "logdirs=($(printf '%q ' "${logdirs[@]}"))"
  echo "commands=($(printf '%q ' "${commands[@]}"))"
  cat <<'TASK'
# One run per array task, its output in its logdir. Slurm's warning before
# the time limit (USR1) stops the run gracefully (SIGTERM: it checkpoints)
# and requeues the task, which then resumes from the checkpoint; a preempted
# or cancelled task gets SIGTERM from Slurm itself.
logdir=${logdirs[$SLURM_ARRAY_TASK_ID]}
mkdir -p "$logdir"
exec >> "$logdir/slurm.out" 2>&1
echo "== $(date '+%F %T') job ${SLURM_ARRAY_JOB_ID}_$SLURM_ARRAY_TASK_ID" \
  "(id $SLURM_JOB_ID), restart ${SLURM_RESTART_COUNT:-0}, on $(hostname)"
requeue=0
on_warning() {
  requeue=1
  echo "== $(date '+%F %T') time limit near: checkpoint and requeue"
  kill -TERM "$run" 2>/dev/null
}
trap on_warning USR1
trap 'kill -TERM "$run" 2>/dev/null' TERM
eval "exec ${commands[$SLURM_ARRAY_TASK_ID]}" &  # $! is the run itself.
run=$!
code=0
wait "$run" || code=$?
while kill -0 "$run" 2>/dev/null; do  # A trap interrupted the wait.
  code=0
  wait "$run" || code=$?
done
echo "$code" > "$logdir/exit_code"
if [ "$requeue" = 1 ] && [ "$code" = 0 ]; then
  scontrol requeue "$SLURM_JOB_ID"
fi
echo "== $(date '+%F %T') exit code $code"
exit "$code"
TASK
}

submit() {  # figure: submits RUNS as one job array
  local script="$LOGROOT/$1/slurm-$(date +%Y%m%dT%H%M%S).sh"
  local sbatch=(sbatch --parsable)
  [ -z "$CLUSTER_ARGS" ] || read -r -a extra <<< "$CLUSTER_ARGS"
  sbatch+=(${extra[@]+"${extra[@]}"} "$script")
  if [ "$DRY_RUN" = 1 ]; then
    batch_script "$1"
    echo "# ${sbatch[*]}"
    return
  fi
  mkdir -p "$(dirname "$script")"
  batch_script "$1" > "$script"
  local job
  job=$("${sbatch[@]}")
  echo "Submitted $(( ${#RUNS[@]} / 2 )) runs as job array $job ($script)"
}

after_runs() {  # command...: runs it once the runs are done (slurm: says so)
  [ "$DRY_RUN" = 1 ] && return 0
  if [ "$LAUNCHER" = slurm ]; then  # The runs have only been submitted.
    echo "When the runs have finished: $*"
    return 0
  fi
  "$@"
}

plot_metrics() {  # figure output metric...: plots those metrics of its runs
  local command=("$PYTHON" "$ROOT/runs/plot.py" "$LOGROOT/$1" --output "$2")
  local metric
  for metric in "${@:3}"; do command+=(--metric "$metric"); done
  after_runs "${command[@]}"
}

run_figure() {  # figure
  figure_runs "$1"
  launch_runs "$1"
}

launch_runs() {  # figure: runs RUNS here (local) or submits them (slurm)
  if [ "$LAUNCHER" = slurm ]; then
    [ ${#RUNS[@]} -gt 0 ] || return 0
    submit "$1"
    return
  fi
  [ "$LAUNCHER" = local ] || {
    echo "unknown LAUNCHER '$LAUNCHER': use local or slurm" >&2; return 2; }
  if [ "$DRY_RUN" = 1 ]; then
    for ((i = 1; i < ${#RUNS[@]}; i += 2)); do echo "${RUNS[i]}"; done
    return
  fi
  [ ${#RUNS[@]} -gt 0 ] || return 0
  printf '%s\0' "${RUNS[@]}" |
    xargs -0 -n 2 -P "$JOBS" bash -c 'run_one "$1" "$2"' _
}
