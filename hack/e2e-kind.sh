#!/usr/bin/env bash
# For users with internet and a docker daemon: run the integration + e2e suite on a stock kind
# cluster. Creates the cluster, builds and loads the images, runs pytest, deletes the cluster.
#   KIND_CLUSTER=flowcraft-e2e  KIND_NODE_IMAGE=kindest/node:v1.35.x  KEEP_KIND=1 (keep it)
#   FLOWCRAFT_BASE_FROM=python:3.11-slim-bookworm when debootstrap is not available
source "$(dirname "$0")/lib.sh"
export FLOWCRAFT_DOCKER=system            # the user's docker, which kind uses too
NAME=${KIND_CLUSTER:-flowcraft-e2e}
KC=$CLUSTER_DIR/kind-$NAME.kubeconfig
mkdir -p "$CLUSTER_DIR/bin"

kind=$(command -v kind || true)
if [ -z "$kind" ]; then "$HACK_DIR/build-bins.sh" kind; kind=$(cached_bin kind "$KIND_VERSION"); fi
if ! command -v kubectl >/dev/null && [ ! -x "$CLUSTER_DIR/bin/kubectl" ]; then
  "$HACK_DIR/build-bins.sh" kubectl; ln -sfn "$(cached_bin kubectl "$KUBE_VERSION")" "$CLUSTER_DIR/bin/kubectl"
fi
export PATH=$CLUSTER_DIR/bin:$PATH
command -v debootstrap >/dev/null || export FLOWCRAFT_BASE_FROM=${FLOWCRAFT_BASE_FROM:-python:3.11-slim-bookworm}

log "kind create cluster $NAME"
"$kind" create cluster --name "$NAME" --kubeconfig "$KC" --wait 180s ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
[ -n "${KEEP_KIND:-}" ] || trap '"$kind" delete cluster --name "$NAME" --kubeconfig "$KC"' EXIT
export KUBECONFIG=$KC

"$HACK_DIR/images.sh"
"$HACK_DIR/image-load.sh" "$SMOKE_IMAGE"
# The operator's images (hack/operator.mk), when that target exists.
if make -C "$ROOT_DIR" -n images >/dev/null 2>&1; then make -C "$ROOT_DIR" images; fi

cd "$ROOT_DIR" || exit 1
"$ROOT_DIR/.venv/bin/pytest" -m "integration or e2e" tests/integration tests/e2e "$@"
