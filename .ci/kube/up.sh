#!/bin/bash
# .ci/kube/up.sh - bring up a real single-node Kubernetes 1.20.2 test cluster (Debian 12's
# kubernetes source package): etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet with dockershim on the local Docker daemon. Every listener binds 127.0.0.1
# (apiserver https://127.0.0.1:6443); the node is named 127.0.0.1; images come from the local
# Docker daemon only (imagePullPolicy Never/IfNotPresent); no cluster DNS (dnsPolicy Default),
# no CNI, kube-proxy, Services or port-forward.
# Idempotent: builds the binaries if missing, starts only what is not running, waits for the
# node to be Ready, prints the kubeconfig path on stdout (last line). Undo with down.sh.
#
# usage: .ci/kube/up.sh [--build-only]
# State and build root: $RUNNERKIT_KUBE_ROOT (default /var/tmp/runnerkit-kube): bin/ (the five
# built binaries; keep it between runs: a build takes ~9-15 min and ~1.4 GB on 2 cores, a start
# with it ~11 s; delete it to rebuild, e.g. after changing the patch), src/, pki/ (pki/admin.kubeconfig),
# data/, run/ (pid files, dockershim socket, saved host state), logs/.
#
# Why the odd settings (each one was needed here):
# - vendored modern-go/reflect2 1.0.1 crashes under Go >= 1.18: swapped for Debian's 1.0.2.
# - no CAP_SYS_RESOURCE, so runc cannot lower oom_score_adj and failed every pod sandbox
#   ("can't get final child's PID from pipe: EOF"): patches/kubelet-min-oom-score-adj.patch
#   clamps the kubelet's -998/-997 at KUBELET_MIN_OOM_SCORE_ADJ (0 here).
# - AWS_EC2_METADATA_DISABLED=true: the kubelet's in-tree ECR credential provider otherwise
#   probes the cloud metadata address (169.254.169.254) at start. NEVER start it without.
# - --hostname-override=127.0.0.1 (the kubelet refuses a loopback --node-ip),
#   --endpoint-reconciler-type=none, --make-iptables-util-chains=false, image GC off (the
#   kubelet never deletes the daemon's other images).
# - the kubelet changes sysctls and creates /var/log/pods, /var/log/containers,
#   /var/lib/kubelet, /sys/fs/cgroup/*/kubepods: recorded before, restored by down.sh.
set -euo pipefail

SELF=$(dirname "$(readlink -f "$0")")   # .ci/kube: holds gen-certs.sh and patches/
K=${RUNNERKIT_KUBE_ROOT:-/var/tmp/runnerkit-kube}
BIN=$K/bin PKI=$K/pki DATA=$K/data RUN=$K/run LOG=$K/logs
SRCDIR=$K/src/kubernetes-1.20.5+really1.20.2
NODE=127.0.0.1                       # node name == its InternalIP (see above)
PAUSE_IMAGE=runnerkit-kube/pause:1
BUSYBOX_IMAGE=runnerkit-kube/busybox:1
export KUBECONFIG=$PKI/admin.kubeconfig
# also set below on the kubelet's own command line; exported so no child (nor a KUBELET_WRAPPER) lacks it
export AWS_EC2_METADATA_DISABLED=true
mkdir -p "$BIN" "$DATA" "$RUN" "$LOG"
T0=$(date +%s.%N)
say() { printf '[up %6.1fs] %s\n' "$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN{print a-b}')" "$*" >&2; }

# ---------------------------------------------------------------- 1. binaries
need_pkgs() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>"$LOG/apt.log" 2>&1
  fi
}

build_binaries() {
  need_pkgs golang-go gcc libc6-dev make rsync dpkg-dev golang-github-modern-go-reflect2-dev
  if [ ! -d "$SRCDIR" ]; then
    # source packages come from the same archive as the binary ones: copy the configured
    # deb822 entries with Types: deb-src
    if ! grep -qs 'deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null; then
      for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        sed 's/^Types: deb$/Types: deb-src/' "$f" > "/etc/apt/sources.list.d/runnerkit-src-$(basename "$f")"
      done
      if [ -f /etc/apt/sources.list ]; then
        sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > /etc/apt/sources.list.d/runnerkit-src.list
      fi
    fi
    apt-get update -qq >/dev/null
    mkdir -p "$K/src"; (cd "$K/src" && apt-get source -qq kubernetes >>"$LOG/apt-source.log" 2>&1)
  fi
  # vendored modern-go/reflect2 1.0.1 segfaults under Go >= 1.18 (map iteration); use Debian's 1.0.2
  local r2=$SRCDIR/vendor/github.com/modern-go/reflect2
  if [ ! -f "$r2/go_above_118.go" ]; then
    say "swapping vendored reflect2 1.0.1 -> Debian's 1.0.2"
    rm -rf "$r2"; cp -a /usr/share/gocode/src/github.com/modern-go/reflect2 "$r2"; rm -f "$r2/go.mod"
  fi
  # kubelet patch: KUBELET_MIN_OOM_SCORE_ADJ clamps the sandbox's -998 / Guaranteed pods' -997
  # (this sandbox lacks CAP_SYS_RESOURCE, so runc cannot lower oom_score_adj)
  if ! grep -q ClampOOMScoreAdj "$SRCDIR/pkg/kubelet/qos/policy.go"; then
    (cd "$SRCDIR" && patch -p1 --forward < "$SELF/patches/kubelet-min-oom-score-adj.patch")
  fi
  cat > "$K/src/version.env" <<'EOF'
KUBE_GIT_COMMIT='faecb196815e248d3ecfb03c680a4507229c2a56'
KUBE_GIT_TREE_STATE='clean'
KUBE_GIT_VERSION='v1.20.2'
KUBE_GIT_MAJOR='1'
KUBE_GIT_MINOR='20'
EOF
  say "building kubernetes binaries (make, GOPATH mode, vendor/) - ~15 min on 2 cores"
  (cd "$SRCDIR" && env GOPROXY=off GOFLAGS= HOME=/root KUBE_GIT_VERSION_FILE="$K/src/version.env" \
     make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet cmd/kubectl" \
     >>"$LOG/build.log" 2>&1)
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
    cp "$SRCDIR/_output/bin/$b" "$BIN/$b"
  done
}

for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
  [ -x "$BIN/$b" ] || { build_binaries; break; }
done
if [ "${1:-}" = --build-only ]; then say "binaries in $BIN"; ls -la "$BIN" >&2; exit 0; fi
need_pkgs etcd-server busybox-static gcc libc6-dev openssl curl
KUBECTL="$BIN/kubectl"

# ---------------------------------------------------------------- 2. images
if ! docker image inspect "$PAUSE_IMAGE" >/dev/null 2>&1; then
  say "building $PAUSE_IMAGE (static C pause)"
  d=$K/images/pause-rootfs; mkdir -p "$d"
  cat > "$K/images/pause.c" <<'EOF'
/* pod sandbox process: sleep until SIGINT/SIGTERM, reap zombies */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void down(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
  struct sigaction d = {0}, r = {0};
  d.sa_handler = down; r.sa_handler = reap; r.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGINT, &d, 0); sigaction(SIGTERM, &d, 0); sigaction(SIGCHLD, &r, 0);
  for (;;) pause();
}
EOF
  gcc -Os -static -o "$d/pause" "$K/images/pause.c" && strip "$d/pause"
  tar -C "$d" -c . | docker import --change 'ENTRYPOINT ["/pause"]' - "$PAUSE_IMAGE" >/dev/null
fi
if ! docker image inspect "$BUSYBOX_IMAGE" >/dev/null 2>&1; then
  say "building $BUSYBOX_IMAGE (FROM scratch, Debian busybox-static)"
  d=$K/images/busybox-rootfs; rm -rf "$d"; mkdir -p "$d"/{bin,etc,tmp,proc,sys,dev}; chmod 1777 "$d/tmp"
  cp /bin/busybox "$d/bin/busybox"
  for a in $("$d/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$d/bin/$a"; done
  tar -C "$d" -c . | docker import --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' - "$BUSYBOX_IMAGE" >/dev/null
fi

# ---------------------------------------------------------------- 3. certs
PKI=$PKI NODE=$NODE "$SELF/gen-certs.sh"

# ---------------------------------------------------------------- 4. host state we change (restored by down.sh)
if [ ! -f "$RUN/host-state.saved" ]; then
  {
    for s in vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes; do
      echo "sysctl $s $(sysctl -n $s)"
    done
    for p in dockerd containerd; do
      pid=$(pgrep -xo "$p" || true); [ -n "$pid" ] && echo "oom $pid $(cat /proc/$pid/oom_score_adj)"
    done
    # paths hard-coded in kubelet 1.20 that live outside $K
    for p in /var/log/pods /var/log/containers /var/lib/kubelet /var/run/kubernetes; do
      [ -e "$p" ] || echo "created $p"
    done
    # cgroups the kubelet creates (--cgroups-per-qos)
    for c in /sys/fs/cgroup/*/; do
      [ -e "${c}kubepods" ] || echo "cgroup ${c}kubepods"
    done
  } > "$RUN/host-state.saved"
fi

# ---------------------------------------------------------------- 5. processes
STARTED=""
running() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }
start() { # name cmd...
  local n=$1; shift
  if running "$n"; then say "$n already running (pid $(cat "$RUN/$n.pid"))"; return; fi
  setsid nohup "$@" >"$LOG/$n.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$n.pid"
  STARTED="$STARTED $n"
  say "started $n (pid $!)"
}
wait_for() { # desc timeout_s cmd...
  local desc=$1 t=$2; shift 2
  local end=$(( $(date +%s) + t ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$end" ]; then say "TIMEOUT waiting for $desc"; return 1; fi
    for n in $STARTED; do
      if ! running "$n"; then say "$n died; tail of $LOG/$n.log:"; tail -20 "$LOG/$n.log" >&2; exit 1; fi
    done
    sleep 0.2
  done
  say "ready: $desc"
}

mkdir -p "$DATA/etcd"
start etcd /usr/bin/etcd --name runnerkit --data-dir "$DATA/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster runnerkit=http://127.0.0.1:2380 --initial-cluster-state new
wait_for "etcd /health" 60 curl -sf http://127.0.0.1:2379/health

start kube-apiserver "$BIN/kube-apiserver" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port=6443 --insecure-port=0 \
  --etcd-servers=http://127.0.0.1:2379 \
  --cert-dir="$DATA/apiserver-certs" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --requestheader-client-ca-file="$PKI/ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$PKI/ca.crt" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 \
  --authorization-mode=Node,RBAC \
  --endpoint-reconciler-type=none \
  --allow-privileged=true --profiling=false --v=1
wait_for "kube-apiserver /readyz" 120 "$KUBECTL" get --raw /readyz

start kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig="$PKI/admin.kubeconfig" \
  --authentication-kubeconfig="$PKI/admin.kubeconfig" --authorization-kubeconfig="$PKI/admin.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=10257 --port=0 --cert-dir="$DATA/cm-certs" \
  --leader-elect=false --use-service-account-credentials=false \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --profiling=false --v=1

start kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig="$PKI/admin.kubeconfig" \
  --authentication-kubeconfig="$PKI/admin.kubeconfig" --authorization-kubeconfig="$PKI/admin.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=10259 --port=0 --cert-dir="$DATA/scheduler-certs" \
  --leader-elect=false --profiling=false --v=1

mkdir -p "$DATA/kubelet" "$DATA/dockershim"
# Can processes here lower oom_score_adj (needs CAP_SYS_RESOURCE)? If not, clamp at 0.
MIN_OOM=-1000; KUBELET_OOM=-999
if ! sh -c 'echo -1 > /proc/self/oom_score_adj' 2>/dev/null; then
  MIN_OOM=0; KUBELET_OOM=0; say "no CAP_SYS_RESOURCE: clamping pod oom_score_adj at 0"
fi
# AWS_EC2_METADATA_DISABLED: kubelet 1.20's in-tree ECR credential provider otherwise probes the
# EC2 metadata service (169.254.169.254) at startup. KUBELET_WRAPPER: e.g. strace for audits.
start kubelet ${KUBELET_WRAPPER:-} env AWS_EC2_METADATA_DISABLED=true KUBELET_MIN_OOM_SCORE_ADJ=$MIN_OOM "$BIN/kubelet" \
  --oom-score-adj=$KUBELET_OOM \
  --kubeconfig="$PKI/kubelet.kubeconfig" \
  --hostname-override="$NODE" \
  --address=127.0.0.1 --port=10250 --read-only-port=0 --healthz-bind-address=127.0.0.1 --healthz-port=10248 \
  --tls-cert-file="$PKI/kubelet-serving.crt" --tls-private-key-file="$PKI/kubelet-serving.key" \
  --client-ca-file="$PKI/ca.crt" --anonymous-auth=false --authorization-mode=Webhook \
  --container-runtime=docker --docker-endpoint=unix:///var/run/docker.sock \
  --container-runtime-endpoint="unix://$RUN/dockershim.sock" --image-service-endpoint="unix://$RUN/dockershim.sock" \
  --experimental-dockershim-root-directory="$DATA/dockershim" \
  --pod-infra-container-image="$PAUSE_IMAGE" \
  --root-dir="$DATA/kubelet" --cert-dir="$DATA/kubelet/pki" --volume-plugin-dir="$DATA/kubelet/volume-plugins" \
  --cgroup-driver=cgroupfs --fail-swap-on=false \
  --make-iptables-util-chains=false \
  --image-gc-high-threshold=100 --image-gc-low-threshold=99 \
  --eviction-hard='memory.available<100Mi' \
  --node-status-update-frequency=2s \
  --v=2

wait_for "node $NODE registered" 120 "$KUBECTL" get node "$NODE"
wait_for "node $NODE Ready" 120 sh -c "'$KUBECTL' get node '$NODE' -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
wait_for "node $NODE untainted" 120 sh -c "[ -z \"\$('$KUBECTL' get node '$NODE' -o jsonpath='{.spec.taints}')\" ]"
wait_for "serviceaccount default/default" 120 "$KUBECTL" -n default get serviceaccount default
say "cluster up"
echo "$KUBECONFIG"
