#!/usr/bin/env bash
# A one-node Slurm cluster on this machine for rr's tests of the Slurm path:
#   bash tools/slurm.sh install   install munge, slurmctld, slurmd, slurm-client (apt; root or sudo)
#   bash tools/slurm.sh start     install if needed, configure, start munged/slurmctld/slurmd; wait for
#                                 the node to be idle (exit 0), or exit 1 with the log's last lines
#   bash tools/slurm.sh stop      cancel every job, stop the daemons this script started
#   bash tools/slurm.sh status    exit 0 if the cluster answers and its node is up
# Debian 12's slurm 22.05, one node (this host, all its CPUs), partition "debug", SlurmUser root,
# no cgroups (proctrack/linuxproc, task/none): works inside a container. Everything lives under
# /etc/slurm, /var/spool/slurm*, /var/log/slurm and /run; the packages' own services are kept
# from starting (policy-rc.d) so that nothing runs unless this script starts it.
set -euo pipefail
action=${1:-start}
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
PIDS=(/run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid)

installed() { command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
              command -v sbatch >/dev/null && command -v munged >/dev/null; }

install() {
  installed && return 0
  echo "slurm: installing munge slurmctld slurmd slurm-client with apt" >&2
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq munge slurmctld slurmd slurm-client >/dev/null
  if [ "$made_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
}

up() { sinfo -h -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; }

running() { local p=$1; [ -f "$p" ] && kill -0 "$(cat "$p")" 2>/dev/null; }

start() {
  install
  if running /run/slurmctld.pid && running /run/slurmd.pid && up; then return 0; fi
  local h cpus mem
  h=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 - 1024 ))
  [ "$mem" -gt 512 ] || mem=512
  $SUDO mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
  $SUDO tee /etc/slurm/slurm.conf >/dev/null <<CONF
# written by rr's tools/slurm.sh: one node on localhost for tests
ClusterName=rrtest
SlurmctldHost=$h
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmUser=root
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobAcctGatherType=jobacct_gather/none
# jobs end quickly after scancel (tests check squeue is empty)
KillWait=2
MinJobAge=2
NodeName=$h CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$h Default=YES MaxTime=INFINITE State=UP
CONF
  if [ ! -f /etc/munge/munge.key ]; then
    $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
    $SUDO chown munge:munge /etc/munge/munge.key
    $SUDO chmod 400 /etc/munge/munge.key
  fi
  $SUDO chown munge:munge /run/munge
  running /run/munge/munged.pid || $SUDO runuser -u munge -- /usr/sbin/munged --force
  running /run/slurmctld.pid || $SUDO /usr/sbin/slurmctld
  running /run/slurmd.pid || $SUDO /usr/sbin/slurmd
  for _ in $(seq 60); do
    up && return 0
    sleep 0.5
  done
  echo "slurm: the node did not come up; /var/log/slurm/slurmctld.log ends with:" >&2
  tail -n 5 /var/log/slurm/slurmctld.log >&2 2>/dev/null || true
  return 1
}

stop() {
  command -v scancel >/dev/null && running /run/slurmctld.pid && $SUDO scancel --full --user="$(id -un)" 2>/dev/null || true
  local p pid
  for p in "${PIDS[@]}"; do
    if running "$p"; then
      pid=$(cat "$p")
      $SUDO kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
}

case "$action" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) running /run/slurmctld.pid && running /run/slurmd.pid && up ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
