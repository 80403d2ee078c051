#!/usr/bin/env bash
# A throwaway single-node Slurm on loopback, for the evidence engine's Slurm test (tests/test_slurm.py).
#
#   tests/slurm_local.sh install   # Debian's packages, when missing (root with apt-get; else exit 3)
#   tests/slurm_local.sh start     # install if missing, start, wait until the node is idle; prints SLURM_CONF=...
#   tests/slurm_local.sh stop      # cancel every job, stop every daemon this script started
#   tests/slurm_local.sh status    # the node as sinfo sees it (exit 1 when down)
#
# This host is the controller and the one node (its cores as CPUs); munged, MariaDB, slurmdbd (so that
# sacct, which submitit reads job states from, works), slurmctld and slurmd run as root, without systemd
# or cgroups (proctrack/linuxproc, task/none, jobacct_gather/none). Everything the cluster writes
# (configuration, munge key, spool, database, logs, pid files) stays in one folder: $OSCBIND_SLURM_STATE
# (default /tmp/oscbind-slurm). Ports: $OSCBIND_SLURM_PORT .. +3 (default 16817; slurmctld, slurmd,
# slurmdbd, MariaDB). Quiet on success but for start's one line; safe to run twice.
set -eEuo pipefail

STATE=${OSCBIND_SLURM_STATE:-/tmp/oscbind-slurm}
PORT=${OSCBIND_SLURM_PORT:-16817}
CONF=$STATE/etc/slurm.conf
NODE=$(hostname -s)
CPUS=$(nproc)
export SLURM_CONF=$CONF
PACKAGES=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server)
TOOLS=(slurmctld slurmd slurmdbd sbatch srun sinfo sacct scontrol scancel munged mungekey mariadbd mariadb-install-db)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

die() { echo "slurm_local: $*" >&2; exit 1; }

missing() {
  local t
  for t in "${TOOLS[@]}"; do command -v "$t" >/dev/null || PATH=$PATH:/usr/sbin:/sbin command -v "$t" >/dev/null || return 0; done
  return 1
}

install() {
  missing || return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "slurm_local: Slurm is not installed and this is not root with apt-get: apt-get install ${PACKAGES[*]}" >&2
    exit 3
  fi
  echo "slurm_local: installing Debian's Slurm, munge and MariaDB (apt-get)" >&2
  apt-get update -qq >/dev/null
  # A policy-rc.d that says no keeps the packages' own init scripts from starting daemons nobody asked for
  # (Docker images have one; elsewhere one is put there for the install and taken away after it).
  local policy=/usr/sbin/policy-rc.d ours=""
  if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy && ours=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null ||
    { [ -z "$ours" ] || rm -f $policy; die "apt-get install ${PACKAGES[*]} failed"; }
  [ -z "$ours" ] || rm -f $policy
}

# The pid of daemon $1 from its pid file, if that process is alive and is that daemon.
pid_of() {
  local file=$STATE/run/$1.pid pid
  [ -s "$file" ] || return 1
  pid=$(tr -dc 0-9 <"$file")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qw -- "$1" && echo "$pid"
}

node_state() { timeout 10 sinfo -h -N -o %t 2>/dev/null | head -1; }
node_idle() { [ "$(node_state)" = idle ]; }
node_up() { [[ $(node_state) =~ ^(idle|mix|alloc|comp) ]]; }

wait_for() {  # wait_for SECONDS WHAT COMMAND...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "slurm_local: timed out waiting for $what; logs in $STATE/log:" >&2
      tail -n 5 "$STATE"/log/*.log >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.5
  done
}

write_config() {
  mkdir -p "$STATE"/{etc,run,log,munge,mysql,ctld,spool}
  chmod 700 "$STATE" "$STATE/munge"
  [ -s "$STATE/munge/munge.key" ] || PATH=$PATH:/usr/sbin mungekey --create --keyfile="$STATE/munge/munge.key"
  chmod 600 "$STATE/munge/munge.key"
  local auth="AuthType=auth/munge
AuthInfo=socket=$STATE/munge/munge.socket"
  cat >"$CONF" <<EOF
# Written by tests/slurm_local.sh: a throwaway single-node cluster on loopback.
ClusterName=oscbind
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
$auth
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$((PORT + 2))
AccountingStoragePass=$STATE/munge/munge.socket
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
MinJobAge=3600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=evidence Nodes=$NODE MaxTime=INFINITE State=UP
EOF
  cat >"$STATE/etc/slurmdbd.conf" <<EOF
$auth
DbdAddr=127.0.0.1
DbdHost=localhost
DbdPort=$((PORT + 2))
SlurmUser=root
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$((PORT + 3))
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$STATE/etc/slurmdbd.conf"
}

start_mariadb() {
  local sql=(mariadb --no-defaults --socket="$STATE/run/mysql.sock" -uroot)
  [ -d "$STATE/mysql/mysql" ] || mariadb-install-db --no-defaults --datadir="$STATE/mysql" --user=root \
    --auth-root-authentication-method=socket --skip-test-db >"$STATE/log/mariadb-install.log" 2>&1 ||
    die "mariadb-install-db failed; see $STATE/log/mariadb-install.log"
  setsid mariadbd --no-defaults --datadir="$STATE/mysql" --user=root --socket="$STATE/run/mysql.sock" \
    --port=$((PORT + 3)) --bind-address=127.0.0.1 --pid-file="$STATE/run/mariadbd.pid" \
    --log-error="$STATE/log/mariadb.log" --innodb-buffer-pool-size=32M </dev/null >/dev/null 2>&1 &
  wait_for 60 "MariaDB" "${sql[@]}" -e "SELECT 1"
  "${sql[@]}" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
                  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

running() { for d in "${DAEMONS[@]}"; do pid_of "$d" >/dev/null || return 1; done; }

start() {
  install
  if [ "$(id -u)" != 0 ]; then
    echo "slurm_local: the throwaway cluster runs its daemons (slurmd above all) as root: run this as root" >&2
    exit 3
  fi
  export PATH=$PATH:/usr/sbin:/sbin
  if running && node_up; then echo "SLURM_CONF=$CONF"; return 0; fi
  stop  # whatever half of a previous cluster is left
  write_config
  trap 'trap - ERR; stop; exit 1' ERR  # a daemon that does not come up: stop the others, leave nothing running
  munged --key-file="$STATE/munge/munge.key" --socket="$STATE/munge/munge.socket" \
    --pid-file="$STATE/run/munged.pid" --log-file="$STATE/log/munged.log" --seed-file="$STATE/munge/seed" --force
  wait_for 20 "munged" munge -n -S "$STATE/munge/munge.socket"
  start_mariadb
  slurmdbd
  wait_for 60 "slurmdbd" sacctmgr -i list cluster
  sacctmgr -i add cluster oscbind >/dev/null 2>&1 || true
  slurmctld -f "$CONF"
  wait_for 60 "slurmctld" scontrol ping
  slurmd -f "$CONF"
  wait_for 60 "the node to be idle" node_idle
  trap - ERR
  echo "SLURM_CONF=$CONF"
}

terminate() {  # terminate DAEMON...: SIGTERM to each, wait up to 15 s for them all, then SIGKILL
  local d pid pids=()
  for d in "$@"; do
    pid=$(pid_of "$d") || continue
    kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    rm -f "$STATE/run/$d.pid"
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

stop() {
  export PATH=$PATH:/usr/sbin:/sbin
  local pid
  if pid_of slurmctld >/dev/null; then  # no job outlives the cluster
    # shellcheck disable=SC2046  # one job id per word
    timeout 10 scancel --full --quiet $(timeout 10 squeue -h -o %A 2>/dev/null) 2>/dev/null || true
    for _ in $(seq 40); do [ -z "$(timeout 10 squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.5; done
  fi
  terminate slurmd slurmctld slurmdbd  # together: each takes a few seconds to go
  terminate mariadbd munged
  # A job step's slurmstepd that outlived slurmd: it carries this cluster's SLURM_CONF.
  for pid in $(pgrep -x slurmstepd || true); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "SLURM_CONF=$CONF"; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  return 0
}

status() {
  local s
  s=$(node_state) || true
  [ -n "$s" ] || { echo "down"; return 1; }
  echo "$NODE $s ($CPUS CPUs); SLURM_CONF=$CONF"
}

case ${1:-} in
  install | start | stop | status) "$1" ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
