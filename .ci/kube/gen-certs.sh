#!/bin/bash
# .ci/kube/gen-certs.sh (called by up.sh) - generates CA, apiserver serving cert, client certs, SA key pair, kubeconfigs under $PKI (required).
set -euo pipefail
PKI=${PKI:?set PKI}
NODE=${NODE:-127.0.0.1}
mkdir -p "$PKI"; cd "$PKI"
[ -f ca.crt ] || openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout ca.key -out ca.crt \
  -subj "/CN=runnerkit-kube-ca" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
sign() { # name CN O ext
  local name=$1 cn=$2 o=$3 ext=$4
  [ -f "$name.crt" ] && return 0
  local subj="/CN=$cn"; [ -n "$o" ] && subj="/O=$o/CN=$cn"
  openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
  printf '%s\n' "$ext" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3650 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}
CLIENT="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
sign apiserver kube-apiserver "" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
sign admin admin system:masters "$CLIENT"
sign front-proxy-client front-proxy-client "" "$CLIENT"
sign apiserver-kubelet-client kube-apiserver-kubelet-client system:masters "$CLIENT"
sign kubelet-client "system:node:$NODE" system:nodes "$CLIENT"
sign kubelet-serving "$NODE" "" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"
[ -f sa.key ] || { openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null; }
kubeconfig() { # file user cert key
  cat > "$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: runnerkit
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$3.crt
    client-key: $PKI/$3.key
contexts:
- name: runnerkit
  context: {cluster: runnerkit, user: $2}
current-context: runnerkit
KC
}
kubeconfig admin.kubeconfig admin admin
kubeconfig kubelet.kubeconfig "system:node:$NODE" kubelet-client
chmod 600 *.key
