#!/usr/bin/env bash
# A single-node Slurm cluster on localhost for the job tests (Debian's slurm-wlm 22.05 and
# munge), after ../shared/recipes/slurm-single-node.sh. Usage: scripts/slurm.sh start|stop
#   BASE  everything of the cluster: its slurm.conf, munge key and socket, state, logs and pid
#         files (default /tmp/alyx-slurm). Nothing is written to /etc: a workstation's own Slurm
#         configuration and munge key stay as they are. Clients find this cluster through
#         SLURM_CONF=$BASE/etc/slurm.conf (test.sh exports it).
set -euo pipefail
BASE=${BASE:-/tmp/alyx-slurm}
MSOCK=$BASE/munge/munge.socket.2
start_bg() { local name=$1; shift; setsid nohup "$@" > "$BASE/log/$name.console" 2>&1 < /dev/null & echo $! > "$BASE/run/$name.pid"; }
waitfor() { local i; for i in $(seq 1 120); do eval "$2" >/dev/null 2>&1 && return 0; sleep 0.25; done; echo "timeout: $1" >&2; return 1; }
case "${1:-start}" in
start)
  dpkg -s slurmctld slurmd slurm-client munge >/dev/null 2>&1 || {
    apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge; }
  mkdir -p "$BASE"/{etc,state/ctld,state/d,run,log,munge}; chown munge:munge "$BASE/munge"
  KEY=$BASE/etc/munge.key
  [ -f "$KEY" ] || { dd if=/dev/urandom of="$KEY" bs=1024 count=1 status=none
    chown munge: "$KEY"; chmod 400 "$KEY"; }
  export SLURM_CONF=$BASE/etc/slurm.conf
  cat > "$SLURM_CONF" <<CONF
ClusterName=alyx
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$MSOCK
StateSaveLocation=$BASE/state/ctld
SlurmdSpoolDir=$BASE/state/d
SlurmctldPidFile=$BASE/run/slurmctld.pidfile
SlurmdPidFile=$BASE/run/slurmd.pidfile
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=3600
KillWait=5
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$(( $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) * 8 / 10 )) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  start_bg munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F --socket="$MSOCK" --key-file="$KEY" \
      --pid-file="$BASE/munge/munged.pid" --log-file="$BASE/munge/munged.log" --seed-file="$BASE/munge/munged.seed"
  waitfor munge "munge -S $MSOCK -n | unmunge -S $MSOCK"
  start_bg slurmctld /usr/sbin/slurmctld -D -i -f "$SLURM_CONF"
  start_bg slurmd /usr/sbin/slurmd -D -N localhost -f "$SLURM_CONF"
  waitfor node-idle "sinfo -h -o %t | grep -q idle"
  echo "slurm up (state in $BASE)" ;;
stop)
  for d in slurmd slurmctld munged; do
    [ -f "$BASE/run/$d.pid" ] || continue; P=$(cat "$BASE/run/$d.pid")
    kill "$P" 2>/dev/null || true; for i in $(seq 1 40); do kill -0 "$P" 2>/dev/null || break; sleep 0.25; done
    rm -f "$BASE/run/$d.pid"
  done ;;
esac
