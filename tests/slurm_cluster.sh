#!/usr/bin/env bash
# A single-node Slurm cluster in a directory, for tests; run as root.
#
#   source <(tests/slurm_cluster.sh up DIR)   # starts it; prints the exports
#   tests/slurm_cluster.sh down DIR           # stops it
#
# Uses Debian's slurm-wlm and munge (apt-get install slurm-wlm munge): munged,
# slurmctld and slurmd run as background daemons with every file under DIR
# (key, config, state, spool, logs, pids) and their own ports and socket, so
# that they neither need nor touch /etc, /run or systemd. The node is this
# machine (its CPUs and memory), in one partition `debug`; jobs may requeue.
# Fails with one line and the daemons' logs when the cluster does not come up.
set -euo pipefail

command=${1:-}
dir=${2:-}
if [ -z "$command" ] || [ -z "$dir" ]; then
  echo "usage: $0 up|down DIR" >&2
  exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

stop() {  # pidfile: stops the daemon it names and waits for it
  local pid
  [ -f "$1" ] || return 0
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$1"; return 0; }
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

if [ "$command" = down ]; then
  stop "$dir/slurmd.pid"
  stop "$dir/slurmctld.pid"
  stop "$dir/munged.pid"
  exit 0
fi
[ "$command" = up ] || { echo "usage: $0 up|down DIR" >&2; exit 2; }

for program in munged slurmctld slurmd sbatch sinfo; do
  if ! command -v "$program" > /dev/null; then
    echo "slurm_cluster.sh: $program is missing:" \
      "apt-get install slurm-wlm munge" >&2
    exit 1
  fi
done

chmod 755 "$dir"
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
chmod 755 "$dir/munge"  # munged wants its socket's directory searchable.
host=$(hostname -s)
cpus=$(nproc)
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
# Ports from the directory's name, so that clusters of parallel tests differ.
base=$(( 20000 + $(cksum <<< "$dir" | cut -d' ' -f1) % 20000 ))

if [ ! -f "$dir/munge/munge.key" ]; then
  head -c 1024 /dev/urandom > "$dir/munge/munge.key"
  chmod 400 "$dir/munge/munge.key"
fi
munged --force --key-file="$dir/munge/munge.key" \
  --socket="$dir/munge/munge.socket" --pid-file="$dir/munged.pid" \
  --log-file="$dir/munged.log" --seed-file="$dir/munge/munged.seed"

cat > "$dir/slurm.conf" <<EOF
ClusterName=tests
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmctldPort=$base
SlurmdPort=$((base + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobRequeue=1
ReturnToService=2
MinJobAge=300
KillWait=5
InactiveLimit=0
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$dir/slurm.conf"

slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 120); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.5
done
echo "slurm_cluster.sh: the node did not come up in 60 s:" \
  "$(sinfo -h -o '%T %E' 2>&1 | head -1)" >&2
tail -n 20 "$dir"/*.log >&2 || true
"$0" down "$dir"
exit 1
