#!/usr/bin/env bash
# Load images into the cluster the tests use:
#   hack/image-load.sh IMAGE[:TAG]|ARCHIVE.tar ...
# Target (override with FLOWCRAFT_LOAD_TARGET=harness|kind|kwok):
#   - the harness cluster (KUBECONFIG unset or .cluster/kubeconfig, mode real): the image is
#     taken from the harness image cache (hack/images.sh) or from the private dockerd
#     (hack/dockerd.sh; built there with `docker build`), then `ctr -n k8s.io images import`
#     into the harness containerd;
#   - a kind cluster (current context kind-NAME): `kind load docker-image --name NAME`
#     from the machine's usual docker (set FLOWCRAFT_DOCKER=system for builds too);
#   - the kwok cluster (.cluster/kwok.kubeconfig): nothing to do (no containers run).
source "$(dirname "$0")/lib.sh"
[ $# -gt 0 ] || die "usage: $0 IMAGE... (or docker-archive .tar files)"

IMG_CACHE=$FLOWCRAFT_CACHE/images
CTRD_SOCK=/run/flowcraft-cluster/containerd.sock
harness_kc=$CLUSTER_DIR/kubeconfig
target=${FLOWCRAFT_LOAD_TARGET:-}
if [ -z "$target" ]; then
  if [ -n "${KUBECONFIG:-}" ] && [ "$(readlink -f "${KUBECONFIG%%:*}")" = "$(readlink -f "$CLUSTER_DIR/kwok.kubeconfig")" ]; then
    target=kwok
  elif [ -z "${KUBECONFIG:-}" ] || [ "$(readlink -f "${KUBECONFIG%%:*}")" = "$(readlink -f "$harness_kc")" ]; then
    target=$(cat "$CLUSTER_DIR/mode" 2>/dev/null || echo none)
    [ "$target" = real ] && target=harness
  else
    ctx=$(awk '/^current-context:/ {print $2}' "${KUBECONFIG%%:*}" | tr -d '"')
    case $ctx in kind-*) target=kind ;; *) target=unknown:$ctx ;; esac
  fi
fi

case $target in
  kwok) log "kwok cluster: no containers run, nothing to load"; exit 0 ;;
  kind)
    kind=$(command -v kind || echo "$(cached_bin kind "$KIND_VERSION")")
    [ -x "$kind" ] || "$HACK_DIR/build-bins.sh" kind
    ctx=$(awk '/^current-context:/ {print $2}' "${KUBECONFIG%%:*}" | tr -d '"')
    name=${KIND_CLUSTER_NAME:-${ctx#kind-}}
    eval "$("$HACK_DIR/dockerd.sh" env)"
    for img in "$@"; do
      if [ -f "$img" ]; then "$kind" load image-archive --name "$name" "$img"
      else "$kind" load docker-image --name "$name" "$img"; fi
    done ;;
  harness)
    ctr -a "$CTRD_SOCK" version >/dev/null 2>&1 || die "harness containerd not running (make cluster)"
    started=0 tmp=""
    cleanup() {
      [ -n "$tmp" ] && rm -f "$tmp"
      [ $started = 1 ] && [ -z "${KEEP_DOCKERD:-}" ] && "$HACK_DIR/dockerd.sh" stop
      return 0
    }
    trap cleanup EXIT
    for img in "$@"; do
      if [ -f "$img" ]; then
        log "import $img"; ctr -a "$CTRD_SOCK" -n k8s.io images import "$img" >/dev/null; continue
      fi
      [[ $img == *:* ]] || img=$img:latest
      tar=$IMG_CACHE/${img%%:*}_${img#*:}.tar
      if [ -f "$tar" ]; then
        log "import $img (harness image cache)"
        ctr -a "$CTRD_SOCK" -n k8s.io images import "$tar" >/dev/null
        continue
      fi
      if [ "${FLOWCRAFT_DOCKER:-}" != system ] && ! "$HACK_DIR/dockerd.sh" status >/dev/null 2>&1; then
        "$HACK_DIR/dockerd.sh" start; started=1
      fi
      eval "$("$HACK_DIR/dockerd.sh" env)"
      docker image inspect "$img" >/dev/null 2>&1 || die "image $img not found in docker ($DOCKER_HOST) nor in $IMG_CACHE"
      log "import $img (docker save | ctr import)"
      tmp=$(mktemp /var/tmp/flowcraft-image.XXXXXX.tar)
      if ! { docker save -o "$tmp" "$img" && ctr -a "$CTRD_SOCK" -n k8s.io images import "$tmp" >/dev/null; }; then
        die "loading $img failed"
      fi
      rm -f "$tmp"; tmp=""
    done
    exit 0 ;;
  none) die "no cluster: start one with 'make cluster' (or set KUBECONFIG to a kind cluster)" ;;
  *) die "don't know how to load images into context '${target#unknown:}' (set FLOWCRAFT_LOAD_TARGET=harness|kind)" ;;
esac
