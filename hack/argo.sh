#!/usr/bin/env bash
# Argo Workflows on the harness, for `make bench-argo` only (a benchmark anchor: never a
# dependency of the product, never in the chart, never outside the local harness; v4.0.5 has
# published advisories, see bench/README.md).
#   hack/argo.sh build      workflow-controller + argoexec from the Go module proxy, cached as
#                           $FLOWCRAFT_CACHE/bin/argo-{workflow-controller,argoexec}-<ver>-<go>
#   hack/argo.sh image      the argoexec image FROM the harness base image, offline
#   hack/argo.sh install    Argo's CRDs (the module's manifests/base/crds/minimal), namespace
#                           $ARGO_NAMESPACE, the emissary executor's Role bound to its default
#                           ServiceAccount (the module's quick-start manifests), the controller
#                           ConfigMap (executor imagePullPolicy Never, no artifact repository)
#   hack/argo.sh run        the controller in the foreground, as a host process like the
#                           operator in the benches (bench/argo_bench.py starts it itself)
#   hack/argo.sh uninstall  delete the namespaces install labelled and the CRDs (and so every
#                           Workflow); bench/argo_bench.py installs one namespace per setting
#   hack/argo.sh status
# Env: ARGO_NAMESPACE (argo-bench: controller config and the Workflows, --namespaced),
#      DEFAULT_REQUEUE_TIME (Argo's own variable, default 10s), KUBECONFIG (.cluster/kubeconfig).
source "$(dirname "$0")/lib.sh"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath
ARGO_MOD=github.com/argoproj/argo-workflows/v4
ARGO_NAMESPACE=${ARGO_NAMESPACE:-argo-bench}
KC=${KUBECONFIG:-$CLUSTER_DIR/kubeconfig}
KC=${KC%%:*}

controller_bin() { cached_bin argo-workflow-controller "$ARGO_VERSION"; }
argoexec_bin() { cached_bin argo-argoexec "$ARGO_VERSION"; }
kubectl_() { "$(cached_bin kubectl "$KUBE_VERSION")" --kubeconfig "$KC" "$@"; }

# The module as the proxy serves it (read-only, in the module cache).
module_dir() {
  go mod download -json "$ARGO_MOD@$ARGO_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'
}

ld_flags() {
  # The version variables live in the module's root package (package argo).
  echo "-s -w -X $ARGO_MOD.version=$ARGO_VERSION"
}

build_controller() {
  local gobin; gobin=$(mktemp -d)
  log "go install $ARGO_MOD/cmd/workflow-controller@$ARGO_VERSION"
  local t0=$SECONDS
  GOBIN=$gobin go install -ldflags "$(ld_flags)" "$ARGO_MOD/cmd/workflow-controller@$ARGO_VERSION" \
    || die "workflow-controller build failed"
  install -m 0755 "$gobin/workflow-controller" "$(controller_bin)"
  rm -rf "$gobin"
  log "workflow-controller built in $((SECONDS - t0)) s"
}

# argoexec as published does not compile on Linux: workflow/executor/osspecific has the
# darwin and windows signal files but no Linux one (undefined: Setpgid). An -overlay cannot
# reach into the module cache, so: a writable copy of the module with the missing file added
# (the darwin file is plain POSIX: same calls on Linux), and a wrapper module replacing the
# published module by that copy.
build_argoexec() {
  local src dir=$FLOWCRAFT_CACHE/src/argo-$ARGO_VERSION osd
  src=$(module_dir); [ -d "$src" ] || die "could not download $ARGO_MOD@$ARGO_VERSION"
  rm -rf "$dir"; mkdir -p "$dir"
  cp -r "$src" "$dir/module"; chmod -R u+w "$dir/module"
  osd=$dir/module/workflow/executor/osspecific
  [ -e "$osd/signal_linux.go" ] || sed '1i //go:build linux\n' "$osd/signal_darwin.go" > "$osd/signal_linux.go"
  cat > "$dir/go.mod" <<GOMOD
module flowcraft.local/argobuild

go $(sed -n 's/^go //p' "$dir/module/go.mod")

require $ARGO_MOD $ARGO_VERSION

replace $ARGO_MOD => ./module
GOMOD
  printf '//go:build tools\npackage tools\nimport _ "%s/cmd/argoexec"\n' "$ARGO_MOD" > "$dir/tools.go"
  # The copy's go.sum covers its whole build list; tidy only completes the wrapper's.
  cp "$dir/module/go.sum" "$dir/go.sum"
  (cd "$dir" && go mod tidy) || die "go mod tidy failed in $dir"
  log "go build $ARGO_MOD/cmd/argoexec (patched copy)"
  local t0=$SECONDS
  (cd "$dir" && go build -ldflags "$(ld_flags)" -o out/argoexec "$ARGO_MOD/cmd/argoexec") \
    || die "argoexec build failed"
  install -m 0755 "$dir/out/argoexec" "$(argoexec_bin)"
  log "argoexec built in $((SECONDS - t0)) s"
}

cmd_build() {
  mkdir -p "$CACHE_BIN" "$FLOWCRAFT_CACHE/src"
  if [ -x "$(controller_bin)" ]; then log "cached: $(controller_bin)"; else build_controller; fi
  if [ "${ARGO_SKIP_EXEC:-}" = 1 ]; then return 0; fi
  if [ -x "$(argoexec_bin)" ]; then log "cached: $(argoexec_bin)"; else build_argoexec; fi
}

# The argoexec image: the harness base image + the binary, built offline like images/runner.
cmd_image() {
  [ -x "$(argoexec_bin)" ] || die "argoexec not built: hack/argo.sh build"
  local ctx=$ROOT_DIR/build/images/argoexec
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp "$ROOT_DIR/images/argoexec/Dockerfile" "$ctx/"
  install -m 0755 "$(argoexec_bin)" "$ctx/argoexec"
  "$HACK_DIR/dockerd.sh" start 2>/dev/null
  eval "$("$HACK_DIR/dockerd.sh" env)"
  docker build --network none -q --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$ARGOEXEC_IMAGE" "$ctx" >/dev/null \
    || die "argoexec image build failed"
  log "built $ARGOEXEC_IMAGE"
  "$HACK_DIR/image-load.sh" "$ARGOEXEC_IMAGE"
}

# -f arguments for the CRD files (the directory also holds a kustomization.yaml).
crd_files() { local f; for f in "$1"/manifests/base/crds/minimal/argoproj.io_*.yaml; do echo "-f"; echo "$f"; done; }

controller_config() {
  cat <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: workflow-controller-configmap
  namespace: $ARGO_NAMESPACE
  labels: {app.kubernetes.io/part-of: flowcraft-bench-argo}
data:
  # Images are loaded into the node's containerd: never pulled. No artifactRepository key:
  # the benchmark workflows pass no artifacts (and the harness has no object store).
  executor: |
    imagePullPolicy: Never
  mainContainer: |
    imagePullPolicy: Never
  # Metrics and telemetry off the shared ports (9090) of a shared machine: plain HTTP, loopback
  # users only; the bench reads none of them.
  metricsConfig: |
    enabled: false
  telemetryConfig: |
    enabled: false
YAML
}

cmd_install() {
  local src; src=$(module_dir); [ -d "$src" ] || die "could not download $ARGO_MOD@$ARGO_VERSION"
  local crds=(); mapfile -t crds < <(crd_files "$src")
  log "Argo $ARGO_VERSION CRDs (minimal), namespace $ARGO_NAMESPACE, executor RBAC, ConfigMap"
  kubectl_ apply --server-side --force-conflicts "${crds[@]}" >/dev/null
  kubectl_ wait --for=condition=Established --timeout=60s crd/workflows.argoproj.io crd/workflowtaskresults.argoproj.io >/dev/null
  kubectl_ get namespace "$ARGO_NAMESPACE" >/dev/null 2>&1 || kubectl_ create namespace "$ARGO_NAMESPACE" >/dev/null
  kubectl_ label namespace "$ARGO_NAMESPACE" app.kubernetes.io/part-of=flowcraft-bench-argo --overwrite >/dev/null
  kubectl_ -n "$ARGO_NAMESPACE" apply -f "$src/manifests/quick-start/base/executor/emissary/" \
    -f "$src/manifests/quick-start/base/executor-default-rolebinding.yaml" >/dev/null
  controller_config | kubectl_ apply -f - >/dev/null
  log "installed; run the controller with: hack/argo.sh run (or make bench-argo)"
}

# The controller's command line; bench/argo_bench.py reads it from here (`hack/argo.sh cmdline`)
# so the bench and a manual run use the same flags. Leader election off (one instance);
# --namespaced: it watches only $ARGO_NAMESPACE.
cmd_cmdline() {
  printf '%s\n' "$(controller_bin)" --kubeconfig "$KC" --namespace "$ARGO_NAMESPACE" --namespaced \
    --managed-namespace "$ARGO_NAMESPACE" --executor-image "$ARGOEXEC_IMAGE" \
    --executor-image-pull-policy Never --configmap workflow-controller-configmap
}

cmd_run() {
  [ -x "$(controller_bin)" ] || die "workflow-controller not built: hack/argo.sh build"
  local args; mapfile -t args < <(cmd_cmdline)
  LEADER_ELECTION_DISABLE=true exec "${args[@]}"
}

cmd_uninstall() {
  log "deleting the namespaces install made (label app.kubernetes.io/part-of=flowcraft-bench-argo) and Argo's CRDs"
  kubectl_ delete namespace -l app.kubernetes.io/part-of=flowcraft-bench-argo --wait=true --timeout=300s >/dev/null || true
  kubectl_ delete namespace "$ARGO_NAMESPACE" --ignore-not-found --wait=true --timeout=300s >/dev/null || true
  local crds=(); mapfile -t crds < <(crd_files "$(module_dir)")
  kubectl_ delete --ignore-not-found --wait=true --timeout=300s "${crds[@]}" >/dev/null || true
}

cmd_status() {
  echo "controller: $( [ -x "$(controller_bin)" ] && echo "$(controller_bin)" || echo 'not built')"
  echo "argoexec:   $( [ -x "$(argoexec_bin)" ] && echo "$(argoexec_bin)" || echo 'not built')"
  kubectl_ get crd workflows.argoproj.io >/dev/null 2>&1 && echo "CRDs: installed" || echo "CRDs: not installed"
  kubectl_ get namespace "$ARGO_NAMESPACE" >/dev/null 2>&1 && echo "namespace $ARGO_NAMESPACE: present" || echo "namespace $ARGO_NAMESPACE: absent"
}

case ${1:-status} in
  build) cmd_build ;;
  image) cmd_image ;;
  install) cmd_install ;;
  cmdline) cmd_cmdline ;;
  run) cmd_run ;;
  uninstall) cmd_uninstall ;;
  status) cmd_status ;;
  *) die "usage: $0 build|image|install|cmdline|run|uninstall|status" ;;
esac
