#!/usr/bin/env bash
# Makes sure the single-node Kubernetes 1.20.2 test cluster of .ci/kube/ is up
# (building its binaries first if $RUNNERKIT_KUBE_ROOT/bin lacks them: ~9-15 min
# once), that the images the kube tests use are in the local Docker daemon
# (runnerkit-kube/busybox:1 from up.sh, runnerkit/kube-placeholder:1 from
# crates/kube/placeholder/build.sh), and prints the kubeconfig path as its last
# line:
#
#     export KUBECONFIG=$(.ci/kube.sh | tail -n 1)
#
# Idempotent: when the node is already Ready and both images are there it only
# prints the path. Stop the cluster with .ci/kube/down.sh. Called by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

K=${RUNNERKIT_KUBE_ROOT:-/var/tmp/runnerkit-kube}
kubeconfig=$K/pki/admin.kubeconfig
kubectl=$K/bin/kubectl
images="runnerkit-kube/busybox:1 runnerkit-kube/pause:1 runnerkit/kube-placeholder:1"

have_images() {
    local i
    for i in $images; do docker image inspect "$i" >/dev/null 2>&1 || return 1; done
}
node_ready() {
    [ -x "$kubectl" ] && [ -f "$kubeconfig" ] &&
        [ "$("$kubectl" --kubeconfig "$kubeconfig" --request-timeout=5s get node 127.0.0.1 \
            -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

if node_ready && have_images && sh crates/kube/placeholder/build.sh; then
    echo "$kubeconfig"
    exit 0
fi

# up.sh is idempotent too: it starts only what is not running
path=$(bash .ci/kube/up.sh | tail -n 1)
[ "$path" = "$kubeconfig" ] || { echo "kube.sh: up.sh printed '$path', expected $kubeconfig" >&2; exit 1; }
sh crates/kube/placeholder/build.sh
have_images || { echo "kube.sh: an image is missing after up.sh: $images" >&2; exit 1; }
node_ready || { echo "kube.sh: node 127.0.0.1 not Ready after up.sh" >&2; exit 1; }
echo "$kubeconfig"
