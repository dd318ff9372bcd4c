#!/bin/sh
# build.sh - builds the image runnerkit/kube-placeholder:1 into the local Docker
# daemon: FROM scratch, one static binary (placeholder.c, gcc -Os -static) at
# /bin/sh, ENTRYPOINT ["/bin/sh"]. It is what a pod's step containers run until
# their step starts; build it on (or load it into) every node of your cluster:
#
#     crates/kube/placeholder/build.sh [IMAGE]      # default runnerkit/kube-placeholder:1
#     docker save runnerkit/kube-placeholder:1 | ssh node docker load
#
# Needs gcc with a static libc (Debian: gcc libc6-dev) and docker. Idempotent:
# the image carries a hash of placeholder.c and this script as a label, and is
# rebuilt only when that changed (the old, now untagged image is removed).
# CC and DOCKER override the compiler and the docker client.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
image=${1:-runnerkit/kube-placeholder:1}
cc=${CC:-gcc}
docker=${DOCKER:-docker}
label=io.runnerkit.placeholder.source

sum=$(cat "$here/placeholder.c" "$here/build.sh" | sha256sum | cut -c1-16)
have=$($docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null || true)
[ "$have" = "$sum" ] && exit 0

command -v "$cc" >/dev/null 2>&1 || { echo "build.sh: no $cc (Debian: apt-get install gcc libc6-dev)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/root/bin"
"$cc" -Os -static -Wall -Wextra -Werror -o "$tmp/root/bin/sh" "$here/placeholder.c"
strip "$tmp/root/bin/sh" 2>/dev/null || true
old=$($docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
tar -C "$tmp/root" --numeric-owner --owner=0 --group=0 -c . |
    $docker import --change 'ENTRYPOINT ["/bin/sh"]' --change "LABEL $label=$sum" - "$image" >/dev/null
if [ -n "$old" ]; then $docker rmi "$old" >/dev/null 2>&1 || true; fi
echo "build.sh: built $image ($(wc -c < "$tmp/root/bin/sh") bytes, source $sum)" >&2
