#!/bin/bash
# .ci/kube/down.sh - stop everything .ci/kube/up.sh started (by PID), remove the kubelet's
# k8s_* containers, unmount kubelet volumes, wipe cluster state (etcd data, kubelet dir, certs),
# restore the host settings the kubelet changed, remove the images up.sh and .ci/kube.sh built
# (runnerkit-kube/pause:1, runnerkit-kube/busybox:1, runnerkit/kube-placeholder:1).
# Keeps $RUNNERKIT_KUBE_ROOT/bin and src (so the next up.sh does not rebuild). Safe to run twice.
#   KEEP_PKI=1     keep certificates/kubeconfigs
#   KEEP_IMAGES=1  keep the images
set -uo pipefail
trap "" PIPE   # keep cleaning up even if our output pipe closes
K=${RUNNERKIT_KUBE_ROOT:-/var/tmp/runnerkit-kube}
PKI=$K/pki DATA=$K/data RUN=$K/run
say() { echo "[down] $*" >&2; }

alive() { # pid: running and not a zombie (our daemons are reparented to PID 1, which reaps lazily)
  kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
stop() { # name
  local f=$RUN/$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if alive "$pid"; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && { say "$1 ($pid) ignored SIGTERM, SIGKILL"; kill -KILL "$pid"; }
    say "stopped $1 (pid $pid)"
  fi
  rm -f "$f"
}

stop kubelet
# containers the kubelet created: named k8s_* AND carrying the kubelet's pod-uid label
ids=$(docker ps -a --filter 'name=^k8s_' --filter 'label=io.kubernetes.pod.uid' -q)
if [ -n "$ids" ]; then say "removing $(echo $ids | wc -w) k8s_* containers"; docker rm -f $ids >/dev/null; fi
stop kube-scheduler
stop kube-controller-manager
stop kube-apiserver
stop etcd

# kubelet's secret/projected tmpfs mounts under the data dir
for m in $(findmnt -rn -o TARGET | grep "^$DATA/" | sort -r); do umount "$m" 2>/dev/null || umount -l "$m"; done
rm -rf "$DATA" "$RUN/dockershim.sock"
[ "${KEEP_PKI:-0}" = 1 ] || rm -rf "$PKI"

# restore host state saved by up.sh before the kubelet first ran
if [ -f "$RUN/host-state.saved" ]; then
  while read -r kind a b; do
    case $kind in
      sysctl)  [ "$(sysctl -n "$a")" = "$b" ] || { sysctl -qw "$a=$b" && say "restored $a=$b"; } ;;
      oom)     [ -e "/proc/$a/oom_score_adj" ] && [ "$(cat /proc/$a/oom_score_adj)" != "$b" ] && echo "$b" > "/proc/$a/oom_score_adj" && say "restored oom_score_adj of pid $a to $b" ;;
      created) [ -e "$a" ] && rm -rf "$a" && say "removed $a" ;;
      cgroup)  if [ -d "$a" ]; then find "$a" -depth -type d -exec rmdir {} \; 2>/dev/null; [ -d "$a" ] && say "could not remove cgroup $a" || say "removed cgroup $a"; fi ;;
    esac
  done < "$RUN/host-state.saved"
  rm -f "$RUN/host-state.saved"
fi

if [ "${KEEP_IMAGES:-0}" != 1 ]; then
  for i in runnerkit-kube/pause:1 runnerkit-kube/busybox:1 runnerkit/kube-placeholder:1; do
    docker image inspect "$i" >/dev/null 2>&1 && docker rmi "$i" >/dev/null && say "removed image $i"
  done
fi
say "done"
