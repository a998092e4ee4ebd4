#!/usr/bin/env bash
# slurm-test-cluster.sh start|stop|status DIR
#
# A single-node Slurm cluster on 127.0.0.1 for tests, with two fake GPUs,
# all of its state, logs and pid files under DIR. Needs root (mknod, munge,
# slurmd). `start` installs Debian's slurm-wlm and munge when missing,
# writes DIR/slurm.conf and DIR/gres.conf, starts munged (unless one runs),
# slurmctld and slurmd, waits until the node is idle and prints
#   export SLURM_CONF=DIR/slurm.conf
# on stdout (everything else goes to stderr), so `eval "$(... start DIR)"`
# works. `stop` cancels the cluster's jobs and stops its daemons.
#
# The settings are the ones REFERENCE.md records as working on Slurm 22.05
# (Debian 12). Ports are chosen free at start (or COGUMI_SLURM_PORT and the
# port after it), so several test clusters can run on one machine.
# COGUMI_SLURM_CPUS (default 2) sets the node's CPU count; tests raise it
# so that CPUs, not only GPUs, are left free and a waiting GPU job can only
# be waiting for a GPU.
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
conf=$dir/slurm.conf
export SLURM_CONF=$conf

log() { echo "slurm-test-cluster: $*" >&2; }
die() { log "$*"; exit 1; }

# port_free reports whether nothing listens on 127.0.0.1:$1.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_ports() {
  if [ -n "${COGUMI_SLURM_PORT:-}" ]; then
    ctld_port=$COGUMI_SLURM_PORT
  else
    local i p
    for i in $(seq 1 50); do
      p=$(( 10000 + (RANDOM % 10000) * 2 ))  # below the ephemeral range
      if port_free "$p" && port_free $((p + 1)); then ctld_port=$p; break; fi
    done
    [ -n "${ctld_port:-}" ] || die "no free pair of ports found"
  fi
  slurmd_port=$((ctld_port + 1))
}

install_packages() {
  if command -v slurmctld >/dev/null && command -v munged >/dev/null && command -v sbatch >/dev/null; then
    return
  fi
  log "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >&2
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    install -d -o munge -g munge -m 0700 /etc/munge
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile=/etc/munge/munge.key >&2
    else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
  fi
  install -d -o munge -g munge -m 0755 /run/munge
  # One munged serves every cluster on the machine: reuse a working one.
  if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    return
  fi
  runuser -u munge -- /usr/sbin/munged
  touch "$dir/munged.started"
  local i
  for i in $(seq 1 50); do
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
    sleep 0.1
  done
  die "munged did not start"
}

write_conf() {
  mkdir -p "$dir/state" "$dir/spool/localhost" "$dir/log"
  # gres.conf needs real character devices: with plain files, or a
  # count-only Gres, slurmd marks the node invalid. 195 is NVIDIA's major.
  local i
  for i in 0 1; do
    [ -c "$dir/nvidia$i" ] || { rm -f "$dir/nvidia$i"; mknod "$dir/nvidia$i" c 195 "$i"; }
  done
  cat >"$dir/gres.conf" <<GRES
NodeName=localhost Name=gpu File=$dir/nvidia[0-1]
GRES
  cat >"$conf" <<CONF
# Written by scripts/slurm-test-cluster.sh: a one-node test cluster.
ClusterName=cogumi-test
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default memory per CPU a job takes the whole node's memory and
# jobs run one at a time.
DefMemPerCPU=1000
GresTypes=gpu
MpiDefault=none
ReturnToService=2
# Trust the node line below over what slurmd detects, so the same file
# works on CI machines with other core counts.
SlurmdParameters=config_overrides
# Keep finished jobs in slurmctld's memory for scontrol (no slurmdbd here).
MinJobAge=300
NodeName=localhost NodeAddr=127.0.0.1 CPUs=${COGUMI_SLURM_CPUS:-2} RealMemory=20000 Gres=gpu:2 State=UNKNOWN
PartitionName=gpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
}

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  [ "$(id -u)" = 0 ] || die "must run as root (mknod, munge and slurmd need it)"
  if running "$dir/slurmctld.pid" || running "$dir/slurmd.pid"; then
    die "a cluster already runs in $dir (stop it first)"
  fi
  install_packages
  pick_ports
  start_munge
  write_conf
  slurmctld -f "$conf"
  slurmd -f "$conf" -N localhost
  local i state=""
  for i in $(seq 1 150); do
    state=$(sinfo -h -N -n localhost -o '%T' 2>/dev/null || true)
    if [ "$state" = idle ]; then
      log "node idle (slurmctld port $ctld_port, logs in $dir/log)"
      echo "export SLURM_CONF=$conf"
      return
    fi
    sleep 0.2
  done
  log "node state after 30 s: '${state}'"
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  die "the node did not become idle"
}

# stop_pid kills the daemon whose pid file is $1 and waits for it to exit.
stop_pid() {
  running "$1" || return 0
  local pid i
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

stop() {
  if running "$dir/slurmctld.pid"; then
    local jobs
    jobs=$(squeue -h -o %A 2>/dev/null || true)
    if [ -n "$jobs" ]; then
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      local i
      for i in $(seq 1 50); do
        [ -z "$(squeue -h -o %A 2>/dev/null || true)" ] && break
        sleep 0.2
      done
    fi
  fi
  stop_pid "$dir/slurmd.pid"
  stop_pid "$dir/slurmctld.pid"
  # munged is shared by every cluster on the machine: stop it only if this
  # cluster started it and no other slurmctld still needs it.
  if [ -e "$dir/munged.started" ] && ! pgrep -x slurmctld >/dev/null; then
    local pid
    pid=$(cat /run/munge/munged.pid 2>/dev/null || true)
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    rm -f "$dir/munged.started"
  fi
  log "stopped"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status) sinfo -N -o '%N %T %G' ;;
  *) usage ;;
esac
