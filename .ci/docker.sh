#!/bin/sh
# Makes sure a Docker daemon answers and Debian's static busybox is installed,
# so runnerkit-docker's tests run (they build `runnerkit-test:busybox` FROM
# scratch with it). Idempotent; quiet when everything is already there.
# Called by .ci/run; run it alone with `sh .ci/docker.sh`.
set -eu

log() { echo "docker.sh: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y -q "$@" >/dev/null 2>&1; then
        as_root apt-get update -q >/dev/null
        as_root apt-get install -y -q "$@" >/dev/null
    fi
}

if ! [ -x /bin/busybox ] && ! [ -x /usr/bin/busybox ]; then
    log "installing busybox-static"
    apt_install busybox-static
fi

if docker info >/dev/null 2>&1; then
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io"
    apt_install docker.io
fi
# Newer Debian releases ship the client separately.
if ! command -v docker >/dev/null 2>&1; then
    log "installing docker-cli"
    apt_install docker-cli
fi

if ! docker info >/dev/null 2>&1; then
    log "starting dockerd"
    as_root sh -c 'nohup dockerd >/var/log/runnerkit-dockerd.log 2>&1 &'
    tries=0
    until docker info >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ "$tries" -ge 60 ]; then
            log "dockerd did not answer within 60 s; its log:"
            tail -n 50 /var/log/runnerkit-dockerd.log >&2 || true
            exit 1
        fi
        sleep 1
    done
    log "dockerd is up"
fi
