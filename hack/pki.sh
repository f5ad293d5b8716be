#!/usr/bin/env bash
# Certificates and kubeconfigs for the harness cluster (openssl). Idempotent: keeps what exists.
#   hack/pki.sh PKI_DIR SERVER_URL NODE_NAME NODE_IP
source "$(dirname "$0")/lib.sh"
PKI=$1 SERVER=$2 NODE=$3 NODE_IP=$4
mkdir -p "$PKI"; cd "$PKI" || exit 1
umask 077

[ -f ca.key ] || openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
  -subj "/CN=flowcraft-harness-ca" 2>/dev/null
[ -f sa.key ] || { openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null; }

# cert NAME SUBJECT USAGE(server|client|both) [SANS]
cert() {
  local name=$1 subj=$2 usage=$3 sans=${4:-} ext
  [ -f "$name.crt" ] && return 0
  case $usage in server) ext=serverAuth ;; client) ext=clientAuth ;; both) ext=serverAuth,clientAuth ;; esac
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$ext"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

cert apiserver "/CN=kube-apiserver" server \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:10.96.0.1,IP:$NODE_IP"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client
cert admin "/O=system:masters/CN=flowcraft-admin" client
cert controller-manager "/CN=system:kube-controller-manager" client
cert scheduler "/CN=system:kube-scheduler" client
cert kube-proxy "/CN=system:kube-proxy" client
cert kwok "/O=system:masters/CN=kwok-controller" client
cert coredns "/CN=system:coredns" client
cert kubelet-client "/O=system:nodes/CN=system:node:$NODE" client
cert kubelet "/CN=$NODE" server "DNS:$NODE,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP"

# kubeconfig NAME USER CERT: embeds everything so the file can be copied elsewhere.
kubeconfig() {
  local file=$1 user=$2 c=$3
  cat > "$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: flowcraft
  cluster:
    server: $SERVER
    certificate-authority-data: $(base64 -w0 < ca.crt)
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 < "$c.crt")
    client-key-data: $(base64 -w0 < "$c.key")
contexts:
- name: flowcraft
  context: {cluster: flowcraft, user: $user, namespace: default}
current-context: flowcraft
KC
}
kubeconfig admin.kubeconfig flowcraft-admin admin
kubeconfig controller-manager.kubeconfig system:kube-controller-manager controller-manager
kubeconfig scheduler.kubeconfig system:kube-scheduler scheduler
kubeconfig kube-proxy.kubeconfig system:kube-proxy kube-proxy
kubeconfig kubelet.kubeconfig "system:node:$NODE" kubelet-client
kubeconfig kwok.kubeconfig kwok-controller kwok
kubeconfig coredns.kubeconfig system:coredns coredns
