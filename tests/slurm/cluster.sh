#!/usr/bin/env bash
# A throw-away single-node SLURM (munge + slurmctld + slurmd) for the integration
# suite: `cluster.sh start DIR` installs the packages if missing, writes munge and
# slurm.conf under DIR, starts the daemons under setsid, records their PIDs and
# waits for the node to be idle; `cluster.sh stop DIR` stops them by PID.
# Clients use it with `source DIR/env` (it sets SLURM_CONF).
# Tested on Debian 12 as root without systemd or cgroups.
set -euo pipefail

cmd=${1:?usage: cluster.sh start|stop|status DIR}
dir=${2:?usage: cluster.sh start|stop|status DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
cpus=${NST_SLURM_CPUS:-4}          # virtual CPUs (config_overrides) so 3 tasks run side by side

log() { echo "cluster.sh: $*" >&2; }

install_packages() {
    local missing=0
    for b in slurmctld slurmd sbatch munged; do command -v "$b" >/dev/null || missing=1; done
    [ "$missing" = 0 ] && return
    log "installing slurmctld slurmd slurm-client munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
    [ -f "$dir/pids" ] && { log "already started in $dir (run stop first)"; exit 1; }
    install_packages
    mkdir -p "$dir"/{munge-key,state,spool,log,run}
    chmod 700 "$dir/munge-key"
    # munged wants every directory above its socket searchable by all (pytest's tmp dirs are 700)
    local sockdir
    sockdir=$(mktemp -d /tmp/nst-munge.XXXXXX)
    chmod 755 "$sockdir"
    echo "$sockdir" > "$dir/munge-socket-dir"
    head -c 1024 /dev/urandom > "$dir/munge-key/munge.key"
    chmod 400 "$dir/munge-key/munge.key"
    local sock="$sockdir/munge.socket"
    setsid munged --key-file="$dir/munge-key/munge.key" --socket="$sock" \
        --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" \
        --seed-file="$dir/munge-key/munge.seed" </dev/null
    # munged daemonises itself; its pid file appears once it is serving
    for _ in $(seq 50); do [ -S "$sock" ] && [ -s "$dir/run/munged.pid" ] && break; sleep 0.1; done
    [ -S "$sock" ] || { log "munged did not start; see $dir/log/munged.log"; exit 1; }
    echo "munged $(cat "$dir/run/munged.pid")" > "$dir/pids"

    local host node ctld_port slurmd_port mem
    host=$(hostname -s)
    node=$(slurmd -C | head -1)
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
    ctld_port=$(free_port); slurmd_port=$(free_port)
    cat > "$dir/slurm.conf" <<CONF
ClusterName=nstci
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=bf_interval=1,sched_interval=1,batch_sched_delay=0
SlurmdParameters=config_overrides
MailProg=/bin/true
MpiDefault=none
ReturnToService=2
# SLURM's default: a scancel's TERM leaves the worker time to write its stopped line on a loaded node
KillWait=30
MinJobAge=600
NodeName=$host CPUs=$cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    cat > "$dir/env" <<ENV
export SLURM_CONF=$dir/slurm.conf
ENV
    export SLURM_CONF=$dir/slurm.conf
    setsid slurmctld -D -f "$SLURM_CONF" >"$dir/log/slurmctld.out" 2>&1 </dev/null &
    echo "slurmctld $!" >> "$dir/pids"
    setsid slurmd -D -f "$SLURM_CONF" >"$dir/log/slurmd.out" 2>&1 </dev/null &
    echo "slurmd $!" >> "$dir/pids"
    for _ in $(seq 300); do
        state=$(sinfo -h -N -o '%t' 2>/dev/null | head -1 || true)
        [ "$state" = idle ] && { log "node $host idle ($cpus CPUs), SLURM_CONF=$SLURM_CONF"; return; }
        sleep 0.2
    done
    log "node did not become idle (state '${state:-?}'); logs in $dir/log"
    tail -5 "$dir"/log/*.log >&2 || true
    stop; exit 1
}

stop() {
    [ -f "$dir/pids" ] || return 0
    # slurmd, then slurmctld, then munged: reverse start order, by PID only
    tac "$dir/pids" | while read -r name pid; do
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name ($pid) still up, killing"; kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -f "$dir/pids"
    if [ -f "$dir/munge-socket-dir" ]; then
        rm -rf "$(cat "$dir/munge-socket-dir")"; rm -f "$dir/munge-socket-dir"
    fi
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    status) [ -f "$dir/pids" ] && cat "$dir/pids" && SLURM_CONF=$dir/slurm.conf sinfo ;;
    *) echo "usage: cluster.sh start|stop|status DIR" >&2; exit 2 ;;
esac
