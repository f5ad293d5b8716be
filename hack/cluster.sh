#!/usr/bin/env bash
# Single-node Kubernetes as host processes, built and run offline.
#   hack/cluster.sh up [real|kwok]   start (no-op when the same mode is already healthy)
#   hack/cluster.sh down [real|kwok|all]   stop exactly the processes it started, clean up
#   hack/cluster.sh status [real|kwok]     print pids and node status; exit 1 when down
#   hack/cluster.sh crash-apiserver [real|kwok]   SIGKILL the kube-apiserver (by its pidfile),
#                                    start it again as `up` does, wait until it is ready
#
# real: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, a dedicated containerd,
#       kubelet, kube-proxy and CoreDNS (cluster.local only, no upstream); bridge CNI on flowcraft0 (pods 10.244.0.0/24, services
#       10.96.0.0/16); the apiserver listens on the bridge address so pods reach it too.
# kwok: the same control plane on 127.0.0.1 without kubelet/containerd; kwok simulates the
#       node(s) (KWOK_NODES, default 1) and moves Job pods to Succeeded with no containers.
# The two are separate instances (own ports, pids, certs, state) and may run at the same time:
#   real -> .cluster/kubeconfig       (apiserver https://10.244.0.1:16443, files in .cluster/)
#   kwok -> .cluster/kwok.kubeconfig  (apiserver https://127.0.0.1:16444, files in .cluster/kwok/)
source "$(dirname "$0")/lib.sh"

NODE_NAME=${NODE_NAME:-flowcraft-node}
POD_CIDR=10.244.0.0/24
BRIDGE=flowcraft0
BRIDGE_IP=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
KWOK_NODES=${KWOK_NODES:-1}   # kwok mode: number of fake nodes
# kube-controller-manager --concurrent-job-syncs (Job controller workers). 5 is Kubernetes'
# own default; the kwok benchmarks measured what raising it does (bench/README.md).
KWOK_JOB_SYNCS=${KWOK_JOB_SYNCS:-5}
REAL_JOB_SYNCS=${REAL_JOB_SYNCS:-5}
RUN_DIR=/run/flowcraft-cluster         # real mode: containerd state and socket
CTRD_SOCK=$RUN_DIR/containerd.sock

# instance MODE: set the per-instance ports and paths (real and kwok can run side by side)
instance() {
  MODE=$1
  case $MODE in
    real)
      INST_DIR=$CLUSTER_DIR; KUBECONFIG_OUT=$CLUSTER_DIR/kubeconfig
      STATE_DIR=/var/lib/flowcraft-cluster
      API_PORT=16443; ETCD_PORT=23790; ETCD_PEER_PORT=23800; CM_PORT=10257; SCHED_PORT=10259
      JOB_SYNCS=$REAL_JOB_SYNCS ;;
    kwok)
      INST_DIR=$CLUSTER_DIR/kwok; KUBECONFIG_OUT=$CLUSTER_DIR/kwok.kubeconfig
      STATE_DIR=/var/lib/flowcraft-cluster-kwok
      API_PORT=16444; ETCD_PORT=23791; ETCD_PEER_PORT=23801; CM_PORT=10357; SCHED_PORT=10359
      JOB_SYNCS=$KWOK_JOB_SYNCS ;;
    *) die "mode must be real or kwok, not '$MODE'" ;;
  esac
  PKI=$INST_DIR/pki; PIDS=$INST_DIR/pids; LOGS=$INST_DIR/logs
}
EGRESS_CHAIN=FLOWCRAFT-EGRESS
IMG_CACHE=$FLOWCRAFT_CACHE/images

bin() { cached_bin "$1" "$(case $1 in etcd) echo "$ETCD_VERSION" ;; kwok) echo "$KWOK_VERSION" ;;
  coredns) echo "$COREDNS_VERSION" ;;
  helm) echo "$HELM_VERSION" ;; crictl) echo "$CRICTL_VERSION" ;; *) echo "$KUBE_VERSION" ;; esac)"; }
kc() { "$(bin kubectl)" --kubeconfig "$KUBECONFIG_OUT" "$@"; }
alive() { [ -f "$PIDS/$1.pid" ] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }

# start NAME CMD... : run in its own session, log to logs/NAME.log, pid to pids/NAME.pid
start() {
  local name=$1; shift
  log "start $name"
  setsid "$@" >"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$PIDS/$name.pid"
}

# wait_for WHAT SECONDS CMD...
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      log "timed out waiting for $what; last log lines:"
      for f in "$LOGS"/*.log; do echo "== $f"; tail -5 "$f"; done >&2
      return 1
    fi
    sleep 0.5
  done
}

components_of() {
  case $1 in
    real) echo "etcd kube-apiserver kube-controller-manager kube-scheduler containerd coredns kubelet kube-proxy" ;;
    kwok) echo "etcd kube-apiserver kube-controller-manager kube-scheduler kwok" ;;
  esac
}

etcd_up() { alive etcd && curl -sf "http://127.0.0.1:$ETCD_PORT/health"; }
apiserver_up() { alive kube-apiserver && kc get --raw /readyz; }

have_nodes() { [ -n "$(kc get nodes -o name 2>/dev/null)" ]; }

healthy() {
  local mode=$1 c
  [ -f "$INST_DIR/mode" ] && [ "$(cat "$INST_DIR/mode")" = "$mode" ] || return 1
  for c in $(components_of "$mode"); do alive "$c" || return 1; done
  kc get --raw /readyz >/dev/null 2>&1 || return 1
  kc wait --for=condition=Ready node --all --timeout=5s >/dev/null 2>&1
}

ensure_bins() {
  local need=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd helm) c missing=()
  if [ "$1" = real ]; then need+=(kubelet kube-proxy crictl coredns); else need+=(kwok); fi
  for c in "${need[@]}"; do [ -x "$(bin "$c")" ] || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] || "$HACK_DIR/build-bins.sh" "${missing[@]}"
  mkdir -p "$CLUSTER_DIR/bin"
  for c in kubectl helm; do ln -sfn "$(bin $c)" "$CLUSTER_DIR/bin/$c"; done
  [ "$1" = kwok ] && ln -sfn "$(bin kwok)" "$CLUSTER_DIR/bin/kwok"
  [ "$1" = real ] && ln -sfn "$(bin crictl)" "$CLUSTER_DIR/bin/crictl"
  return 0
}

# The Job controller's worker count is the one setting here a benchmark changes: it is recorded
# in $INST_DIR/job-syncs so `up` on a healthy cluster restarts only this process when it differs.
start_controller_manager() {
  start kube-controller-manager "$(bin kube-controller-manager)" \
    --kubeconfig "$PKI/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$PKI/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$PKI/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$CM_PORT" --leader-elect=false --use-service-account-credentials=true \
    --root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/sa.key" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --controllers '*' --profiling=false \
    --kube-api-qps 200 --kube-api-burst 400 --concurrent-job-syncs "$JOB_SYNCS"
  echo "$JOB_SYNCS" > "$INST_DIR/job-syncs"
}

# start_apiserver ADDRESS: the kube-apiserver on ADDRESS:$API_PORT, then wait until it is ready.
start_apiserver() {
  local adv=$1
  start kube-apiserver "$(bin kube-apiserver)" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address "$adv" --advertise-address "$adv" --secure-port "$API_PORT" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --client-ca-file "$PKI/ca.crt" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP,Hostname \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=true --profiling=false \
    --cert-dir "$STATE_DIR/apiserver-certs"
  wait_for kube-apiserver 90 apiserver_up
}

start_control_plane() {
  local adv=$1
  start etcd "$(bin etcd)" --name flowcraft --data-dir "$STATE_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "flowcraft=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" \
    --unsafe-no-fsync --quota-backend-bytes 4294967296 --log-level warn
  wait_for etcd 30 etcd_up
  start_apiserver "$adv"

  start_controller_manager
  start kube-scheduler "$(bin kube-scheduler)" \
    --kubeconfig "$PKI/scheduler.kubeconfig" \
    --authentication-kubeconfig "$PKI/scheduler.kubeconfig" \
    --authorization-kubeconfig "$PKI/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --leader-elect=false --profiling=false \
    --kube-api-qps 200 --kube-api-burst 400
}

# "family table chain" for every chain in the filter/nat/mangle tables (IPv4 and IPv6)
iptables_chains() {
  local ipt t
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for t in filter nat mangle; do
      "$ipt" -w -t "$t" -S 2>/dev/null | awk -v i="$ipt" -v t="$t" '$1 == "-N" {print i, t, $2}'
    done
  done
}

# Remove the KUBE-* chains (kubelet, kube-proxy) that did not exist before `up`.
iptables_sweep() {
  [ -f "$STATE_DIR/iptables.before" ] || return 0
  local new ipt t chain rule
  new=$(iptables_chains | grep -E ' KUBE-[A-Z0-9-]+$' | grep -vxF -f "$STATE_DIR/iptables.before" || true)
  [ -n "$new" ] || return 0
  while read -r ipt t chain; do          # jumps into the new chains
    { "$ipt" -w -t "$t" -S | grep -E -- "-j $chain( |$)" || true; } | sed 's/^-A /-D /' | while read -r rule; do
      eval "$ipt -w -t $t $rule" 2>/dev/null || true
    done
  done <<< "$new"
  while read -r ipt t chain; do "$ipt" -w -t "$t" -F "$chain" 2>/dev/null || true; done <<< "$new"
  while read -r ipt t chain; do "$ipt" -w -t "$t" -X "$chain" 2>/dev/null || true; done <<< "$new"
  log "removed $(wc -l <<< "$new") iptables chains added by kubelet/kube-proxy"
}

setup_network() {
  [ -f "$STATE_DIR/iptables.before" ] || iptables_chains > "$STATE_DIR/iptables.before"
  [ -f "$STATE_DIR/netns.before" ] || ls /run/netns 2>/dev/null > "$STATE_DIR/netns.before" || true
  # Bridge owned by us; the CNI bridge plugin reuses it. Record sysctls we change.
  [ -f "$STATE_DIR/sysctl.orig" ] || {
    echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"
    echo "bridge_nf=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo none)"
  } > "$STATE_DIR/sysctl.orig"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$BRIDGE_IP/24" dev "$BRIDGE"
    echo "$BRIDGE" > "$STATE_DIR/bridge.created"
  fi
  ip link set "$BRIDGE" up
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables
  echo 1 > /proc/sys/net/ipv4/ip_forward
  # No pod egress: forwarded traffic from pods may only go to pods (services are DNATed to
  # pods or to the host before FORWARD; the host itself is INPUT, not FORWARD).
  iptables -w -N "$EGRESS_CHAIN" 2>/dev/null || iptables -w -F "$EGRESS_CHAIN"
  iptables -w -A "$EGRESS_CHAIN" -s "$POD_CIDR" -d "$POD_CIDR" -j RETURN
  iptables -w -A "$EGRESS_CHAIN" -s "$POD_CIDR" -j DROP
  iptables -w -C FORWARD -j "$EGRESS_CHAIN" 2>/dev/null || iptables -w -I FORWARD 1 -j "$EGRESS_CHAIN"
  mkdir -p "$STATE_DIR/cni/net.d"
  cat > "$STATE_DIR/cni/net.d/10-flowcraft.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "flowcraft",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$STATE_DIR/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$BRIDGE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

start_containerd() {
  mkdir -p "$RUN_DIR" "$STATE_DIR/containerd"
  cat > "$INST_DIR/containerd.toml" <<EOF
version = 2
root = "$STATE_DIR/containerd"
state = "$RUN_DIR/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$CTRD_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/library/$PAUSE_IMAGE"
  enable_unprivileged_ports = true
  # This machine's root lacks CAP_SYS_RESOURCE: negative oom_score_adj (kubelet asks -998 for
  # sandboxes, -997 for Guaranteed pods) is refused, so clamp to containerd's own value.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE_DIR/cni/net.d"
EOF
  start containerd /usr/bin/containerd --config "$INST_DIR/containerd.toml"
  wait_for containerd 30 ctr -a "$CTRD_SOCK" version
}

load_images() {
  # Harness images (pause first: the sandbox image) from the cached docker archives.
  local img tar
  for img in "$PAUSE_IMAGE" "$BASE_IMAGE" "$SMOKE_IMAGE"; do
    tar=$IMG_CACHE/${img%%:*}_${img#*:}.tar
    log "import $img into containerd"
    ctr -a "$CTRD_SOCK" -n k8s.io images import "$tar" >/dev/null
  done
}

# CoreDNS as a host process on the bridge address: cluster.local (and reverse zones) from the
# API, nothing else. No forward plugin: other names get REFUSED, nothing leaves the machine.
start_coredns() {
  kc apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- {apiGroups: [""], resources: [endpoints, services, pods, namespaces], verbs: [list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:coredns"}
EOF
  cat > "$INST_DIR/Corefile" <<EOF
cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $BRIDGE_IP
    errors
    health 127.0.0.1:18080
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $PKI/coredns.kubeconfig flowcraft
        pods insecure
        ttl 5
    }
    cache 5
}
EOF
  start coredns "$(bin coredns)" -conf "$INST_DIR/Corefile"
  wait_for coredns 30 curl -sf http://127.0.0.1:18080/health
}

start_node() {
  mkdir -p "$STATE_DIR/kubelet"
  cat > "$INST_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: Webhook}
address: "$BRIDGE_IP"
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
tlsCertFile: "$PKI/kubelet.crt"
tlsPrivateKeyFile: "$PKI/kubelet.key"
containerRuntimeEndpoint: "unix://$CTRD_SOCK"
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
podCIDR: "$POD_CIDR"
clusterDomain: cluster.local
clusterDNS: ["$BRIDGE_IP"]
resolvConf: /etc/resolv.conf
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  nodefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.available: "0%"
serializeImagePulls: false
maxPods: 110
localStorageCapacityIsolation: true
protectKernelDefaults: false
EOF
  start kubelet "$(bin kubelet)" --config "$INST_DIR/kubelet.yaml" \
    --kubeconfig "$PKI/kubelet.kubeconfig" --hostname-override "$NODE_NAME" \
    --node-ip "$BRIDGE_IP" --root-dir "$STATE_DIR/kubelet" --cert-dir "$STATE_DIR/kubelet/pki"
  cat > "$INST_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$PKI/kube-proxy.kubeconfig"}
hostnameOverride: "$NODE_NAME"
mode: iptables
clusterCIDR: "$POD_CIDR"
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$BRIDGE_IP/32"]
conntrack: {maxPerCore: 0}
iptables: {localhostNodePorts: false}
EOF
  start kube-proxy "$(bin kube-proxy)" --config "$INST_DIR/kube-proxy.yaml"
}

kwok_stages() {
  # kwok's own "fast" stages (node initialize + heartbeat, pod ready/complete/delete), taken
  # from the kwok module source in the Go module cache at the pinned version.
  local dir
  dir=$(cd /tmp && GOTOOLCHAIN=local go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -d "$dir" ] || die "kwok module source not found"
  local f first=1
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    [ $first = 1 ] || echo "---"; first=0
    cat "$dir/kustomize/stage/$f"
  done
}

start_kwok() {
  kwok_stages > "$INST_DIR/kwok-stages.yaml"
  start kwok "$(bin kwok)" --kubeconfig "$PKI/kwok.kubeconfig" -c "$INST_DIR/kwok-stages.yaml" \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake --cidr 10.245.0.0/16 \
    --node-lease-duration-seconds 40 --server-address 127.0.0.1:10247
  local i
  for i in $(seq 0 $((KWOK_NODES - 1))); do
    kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64}
status:
  allocatable: {cpu: "64", memory: 256Gi, pods: "1000"}
  capacity: {cpu: "64", memory: 256Gi, pods: "1000"}
EOF
  done
}

ports_free() {
  local p busy=()
  for _ in $(seq 1 20); do   # a just-stopped cluster may need a moment to close its sockets
    busy=()
    for p in "$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT" "$CM_PORT" "$SCHED_PORT"; do
      ss -Hltn "sport = :$p" 2>/dev/null | grep -q . && busy+=("$p")
    done
    [ ${#busy[@]} -eq 0 ] && return 0
    sleep 0.5
  done
  die "ports ${busy[*]} are in use: another cluster runs here (hack/cluster.sh status $MODE; ss -ltnp)"
}

# The host-wide state (ports, /var/lib, bridge) may belong to a harness started from another
# checkout (e.g. CI's fresh clone while a developer's cluster still runs). Stop it (by that
# checkout's pidfiles) only when asked to: CI=true or FLOWCRAFT_CLUSTER_TAKEOVER=1.
take_over_foreign() {
  [ -d "$STATE_DIR" ] || return 0
  if [ ! -f "$STATE_DIR/owner" ]; then
    [ -f "$INST_DIR/mode" ] && return 0   # ours, from before owner files existed
    die "$STATE_DIR exists but no checkout owns it: another harness may be running. Stop it, then remove $STATE_DIR"
  fi
  local other_dir other_kc
  read -r other_dir other_kc < "$STATE_DIR/owner"
  [ "$other_dir" = "$INST_DIR" ] && return 0
  if [ "${CI:-}" != true ] && [ -z "${FLOWCRAFT_CLUSTER_TAKEOVER:-}" ]; then
    die "a $MODE harness cluster from $other_dir holds $STATE_DIR: stop it there (make cluster-down) or set FLOWCRAFT_CLUSTER_TAKEOVER=1"
  fi
  log "taking over from $other_dir: stopping its $MODE cluster"
  ( INST_DIR=$other_dir; PIDS=$other_dir/pids; LOGS=$other_dir/logs; PKI=$other_dir/pki
    KUBECONFIG_OUT=$other_kc; down )
}

up() {
  local mode=$1 t0=$SECONDS
  [ "$(id -u)" = 0 ] || die "run as root (the harness starts containerd, kubelet, iptables rules)"
  if healthy "$mode"; then
    if [ "$(cat "$INST_DIR/job-syncs" 2>/dev/null || echo 5)" != "$JOB_SYNCS" ]; then
      log "restarting kube-controller-manager with --concurrent-job-syncs $JOB_SYNCS"
      stop_pid kube-controller-manager
      start_controller_manager
      wait_for "kube-controller-manager" 60 curl -sfk "https://127.0.0.1:$CM_PORT/healthz"
    fi
    log "cluster ($mode) already up: export KUBECONFIG=$KUBECONFIG_OUT"; return 0
  fi
  # Slow preparations first (packages, binaries, images), while any old cluster still serves.
  if [ "$mode" = real ]; then
    apt_install containerd runc containernetworking-plugins iptables iproute2 conntrack curl gcc libc6-dev debootstrap docker.io
  else
    apt_install curl iproute2
  fi
  ensure_bins "$mode"
  [ "$mode" = real ] && "$HACK_DIR/images.sh" base pause smoke
  take_over_foreign
  if [ -f "$INST_DIR/mode" ] || [ -d "$STATE_DIR" ]; then
    log "the previous $mode cluster is not healthy: tearing it down first"
    down
  fi
  ports_free
  mkdir -p "$PIDS" "$LOGS" "$STATE_DIR"
  echo "$INST_DIR $KUBECONFIG_OUT" > "$STATE_DIR/owner"
  rm -f "$LOGS"/*.log
  echo "$mode" > "$INST_DIR/mode"
  local adv=127.0.0.1
  if [ "$mode" = real ]; then setup_network; adv=$BRIDGE_IP; fi
  "$HACK_DIR/pki.sh" "$PKI" "https://$adv:$API_PORT" "$NODE_NAME" "$BRIDGE_IP"
  cp "$PKI/admin.kubeconfig" "$KUBECONFIG_OUT"
  if [ "$mode" = real ]; then start_containerd; load_images; fi
  start_control_plane "$adv"
  if [ "$mode" = real ]; then start_coredns; start_node; else start_kwok; fi
  wait_for "node registration" 90 have_nodes
  local n; n=$(kc get nodes -o name | head -1)
  wait_for "node Ready" 120 kc wait --for=condition=Ready node --all --timeout=5s
  wait_for "default ServiceAccount" 60 kc -n default get serviceaccount default
  log "cluster ($mode) up in $((SECONDS - t0))s: export KUBECONFIG=$KUBECONFIG_OUT (node $n)"
}

stop_pid() {
  local name=$1 pid
  [ -f "$PIDS/$name.pid" ] || return 0
  pid=$(cat "$PIDS/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && { log "$name ($pid) did not stop, SIGKILL"; kill -9 "$pid" 2>/dev/null || true; }
    log "stopped $name ($pid)"
  fi
  rm -f "$PIDS/$name.pid"
}

unmount_under() {
  local prefix=$1 m
  # deepest first
  awk -v p="$prefix" '$2 == p || index($2, p "/") == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done
}

down() {
  # State that another checkout's harness owns is not ours to clean (see take_over_foreign).
  local owner=""
  [ -f "$STATE_DIR/owner" ] && read -r owner _ < "$STATE_DIR/owner"
  if [ -n "$owner" ] && [ "$owner" != "$INST_DIR" ]; then
    local c
    for c in $(components_of "$MODE"); do stop_pid "$c"; done
    rm -f "$INST_DIR/mode" "$KUBECONFIG_OUT"
    log "cluster ($MODE): $STATE_DIR belongs to $owner, left alone"
    return 0
  fi
  if [ "$MODE" = kwok ]; then
    for c in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_pid "$c"; done
    rm -rf "$STATE_DIR"
    rm -f "$INST_DIR/mode" "$KUBECONFIG_OUT" "$INST_DIR"/*.yaml "$INST_DIR/job-syncs"
    log "cluster (kwok) down (logs kept in $LOGS)"
    return 0
  fi
  # Pods first: kubelet off (so it does not recreate them), then remove every sandbox through
  # CRI (runs CNI DEL, frees netns and mounts), then containerd and the control plane.
  stop_pid kubelet
  if alive containerd && [ -x "$(bin crictl)" ]; then
    "$(bin crictl)" -r "unix://$CTRD_SOCK" rmp -fa >/dev/null 2>&1 || log "crictl rmp failed (continuing)"
  fi
  stop_pid kube-proxy
  stop_pid coredns
  if [ -f "$STATE_DIR/iptables.before" ] && [ -x "$(bin kube-proxy)" ] \
     && iptables -w -t nat -S KUBE-SERVICES >/dev/null 2>&1; then
    "$(bin kube-proxy)" --cleanup >/dev/null 2>&1 || true
  fi
  stop_pid containerd
  # Shims of *our* containerd (they carry our socket path) exit once their tasks are gone.
  local p
  for p in $(grep -l -- "$CTRD_SOCK" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
    [ "$p" = $$ ] && continue
    tr '\0' ' ' 2>/dev/null < "/proc/$p/cmdline" | grep -q containerd-shim && { log "killing leftover shim $p"; kill -9 "$p" 2>/dev/null || true; }
  done
  for c in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_pid "$c"; done
  unmount_under "$STATE_DIR"
  unmount_under "$RUN_DIR"
  # Pod network namespaces our containerd created and did not release (cni-*, new since up).
  if [ -f "$STATE_DIR/netns.before" ]; then
    local f ns
    for f in /run/netns/cni-*; do
      [ -e "$f" ] || continue
      ns=${f##*/}
      grep -qxF "$ns" "$STATE_DIR/netns.before" && continue
      umount "/run/netns/$ns" 2>/dev/null || umount -l "/run/netns/$ns" 2>/dev/null || true
      rm -f "/run/netns/$ns" 2>/dev/null && log "removed leftover netns $ns" || log "could not remove netns $ns"
    done
  fi
  # Network: our egress chain, the chains kubelet/kube-proxy added, our bridge, the sysctls.
  if iptables -w -S "$EGRESS_CHAIN" >/dev/null 2>&1; then
    while iptables -w -D FORWARD -j "$EGRESS_CHAIN" 2>/dev/null; do :; done
    iptables -w -F "$EGRESS_CHAIN"; iptables -w -X "$EGRESS_CHAIN"
  fi
  iptables_sweep
  if [ -f "$STATE_DIR/bridge.created" ]; then ip link del "$BRIDGE" 2>/dev/null || true; fi
  if [ -f "$STATE_DIR/sysctl.orig" ]; then
    local v
    v=$(sed -n 's/^ip_forward=//p' "$STATE_DIR/sysctl.orig"); [ -n "$v" ] && echo "$v" > /proc/sys/net/ipv4/ip_forward
    v=$(sed -n 's/^bridge_nf=//p' "$STATE_DIR/sysctl.orig")
    [ -n "$v" ] && [ "$v" != none ] && echo "$v" > /proc/sys/net/bridge/bridge-nf-call-iptables
  fi
  rm -rf "$STATE_DIR" "$RUN_DIR"
  rm -f "$INST_DIR/mode" "$KUBECONFIG_OUT" "$INST_DIR"/*.yaml "$INST_DIR"/containerd.toml "$INST_DIR/Corefile" \
    "$INST_DIR/job-syncs"
  log "cluster (real) down (logs kept in $LOGS)"
}

# A crashed API server, for the chaos benchmark: SIGKILL (no graceful shutdown), then the same
# command line as `up`; its log so far is kept as kube-apiserver.log.1. Only when the cluster
# is up, and only this one process: everything else keeps running.
crash_apiserver() {
  [ -f "$INST_DIR/mode" ] && alive kube-apiserver || die "$MODE: no kube-apiserver running (hack/cluster.sh up $MODE)"
  local pid; pid=$(cat "$PIDS/kube-apiserver.pid")
  kill -9 "$pid"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && die "kube-apiserver ($pid) survived SIGKILL"
  log "killed kube-apiserver ($pid)"
  mv -f "$LOGS/kube-apiserver.log" "$LOGS/kube-apiserver.log.1"
  local adv=127.0.0.1
  [ "$MODE" = real ] && adv=$BRIDGE_IP
  start_apiserver "$adv"
  log "kube-apiserver ($MODE) back: pid $(cat "$PIDS/kube-apiserver.pid")"
}

status() {
  [ -f "$INST_DIR/mode" ] || { echo "$MODE: down"; return 1; }
  local c
  echo "$MODE: kubeconfig $KUBECONFIG_OUT"
  for c in $(components_of "$MODE"); do
    if alive "$c"; then echo "  $c: pid $(cat "$PIDS/$c.pid")"; else echo "  $c: NOT RUNNING"; fi
  done
  kc get nodes -o wide 2>&1 | sed 's/^/  /'
  healthy "$MODE"
}

case ${1:-} in
  up) instance "${2:-real}"; up "$MODE" ;;
  down)
    case ${2:-all} in
      all) for m in kwok real; do instance "$m"; [ -f "$INST_DIR/mode" ] && down; done; true ;;
      *) instance "$2"; down ;;
    esac ;;
  status) instance "${2:-real}"; status ;;
  crash-apiserver) instance "${2:-real}"; crash_apiserver ;;
  *) die "usage: $0 up [real|kwok] | down [real|kwok|all] | status [real|kwok] | crash-apiserver [real|kwok]" ;;
esac
