#!/usr/bin/env bash
# Podman's Docker-compatible API on a socket of its own, for runnerkit-docker's
# suite on Podman (docs/docker.md, "Podman").
#
#   bash .ci/podman.sh start DIR  installs podman where missing, starts
#                                `podman system service` on DIR/podman.sock and
#                                prints its address (unix://...) last
#   bash .ci/podman.sh stop DIR   stops it
#
# Called by .ci/run. The service runs in DIR: Podman 4.3's conmon writes its
# OOM flag file into the service's working directory.
set -euo pipefail

log() { echo "podman.sh: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

action=${1:?usage: podman.sh start|stop DIR}
dir=${2:?usage: podman.sh start|stop DIR}

if [ "$action" = stop ]; then
    if [ -f "$dir/service.pid" ]; then
        kill "$(cat "$dir/service.pid")" 2>/dev/null || true
        rm -f "$dir/service.pid"
    fi
    exit 0
fi

if ! command -v podman >/dev/null 2>&1; then
    log "installing podman"
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y -q podman >/dev/null 2>&1; then
        as_root apt-get update -q >/dev/null
        as_root apt-get install -y -q podman >/dev/null
    fi
fi

# A container's default limits may not pass the host's hard ones, or runc
# fails to start it ("error setting rlimit type 7: operation not permitted");
# an nproc of the shell's hard limit (96362 here) failed too, 20000 does not.
hard() {
    v=$(ulimit -H"$1")
    if [ "$v" = unlimited ] || [ "$v" -gt 20000 ]; then v=20000; fi
    echo "$v"
}
mkdir -p "$dir"
nofile=$(hard n)
nproc=$(hard u)
cat >"$dir/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
# No systemd here: cgroups by hand, events to a file.
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF

socket="$dir/podman.sock"
rm -f "$socket"
(cd "$dir" && CONTAINERS_CONF="$dir/containers.conf" \
    exec podman system service --time=0 "unix://$socket") >"$dir/service.log" 2>&1 </dev/null &
echo $! >"$dir/service.pid"
tries=0
until [ -S "$socket" ] && curl -sf --unix-socket "$socket" http://podman/_ping >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
        log "podman's API service did not answer within 30 s; its log:"
        tail -n 50 "$dir/service.log" >&2 || true
        exit 1
    fi
    sleep 0.5
done
log "podman $(podman --version | awk '{print $3}') serves unix://$socket"
echo "unix://$socket"
