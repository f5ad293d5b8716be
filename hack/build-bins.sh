#!/usr/bin/env bash
# Build the cluster binaries from the Go module proxy and cache them outside the repo:
#   $FLOWCRAFT_CACHE/bin/<component>-<version>-<goversion>
# A second run finds them all cached and takes seconds. Usage: hack/build-bins.sh [component...]
# Components: kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
#             etcd kwok helm crictl coredns kind (kind is built only on request)
source "$(dirname "$0")/lib.sh"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath
command -v go >/dev/null || die "go not found (Go >= 1.25 is needed)"
mkdir -p "$CACHE_BIN" "$FLOWCRAFT_CACHE/src"

DEFAULT=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd kwok helm crictl coredns)
want=("$@"); [ ${#want[@]} -eq 0 ] && want=("${DEFAULT[@]}")

version_of() {
  case $1 in
    kube-*|kubelet|kubectl) echo "$KUBE_VERSION" ;; crictl) echo "$CRICTL_VERSION" ;; coredns) echo "$COREDNS_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;; kwok) echo "$KWOK_VERSION" ;;
    helm) echo "$HELM_VERSION" ;; kind) echo "$KIND_VERSION" ;;
    *) die "unknown component $1 (known: ${DEFAULT[*]} kind)" ;;
  esac
}

# Kubernetes: a throwaway wrapper module. k8s.io/kubernetes requires its staging modules at
# v0.0.0 and replaces them with ./staging/...; a dependent module must replace them with the
# published v0.N.x tags instead. The list comes from the upstream go.mod in the module cache.
build_kube() {
  local cmds=("$@") v=$KUBE_VERSION minor dir gomod mods
  minor=$(echo "$v" | cut -d. -f2)
  dir=$FLOWCRAFT_CACHE/src/k8s-$v
  mkdir -p "$dir"
  gomod=$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$gomod" ] || die "could not download k8s.io/kubernetes@$v"
  mods=$(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) v0.0.0$#\1#p' "$gomod" | sort -u)
  {
    echo "module flowcraft.local/kubebuild"
    echo
    echo "go $(sed -n 's/^go //p' "$gomod")"
    echo
    echo "require k8s.io/kubernetes $v"
    echo
    for m in $mods; do echo "replace $m => $m v0.$minor.${v##*.}"; done
  } > "$dir/go.mod"
  {
    echo "//go:build tools"
    echo "package tools"
    echo "import ("
    for c in "${cmds[@]}"; do echo "  _ \"k8s.io/kubernetes/cmd/$c\""; done
    echo ")"
  } > "$dir/tools.go"
  (cd "$dir" && go mod tidy) || die "go mod tidy failed in $dir"
  local pkg=k8s.io/component-base/version cpkg=k8s.io/client-go/pkg/version ld="-s -w" x
  for x in "$pkg" "$cpkg"; do
    ld+=" -X $x.gitVersion=$v -X $x.gitMajor=1 -X $x.gitMinor=$minor -X $x.gitTreeState=clean"
    ld+=" -X $x.gitCommit=flowcraft-offline -X $x.buildDate=1970-01-01T00:00:00Z"
  done
  local out=$dir/out; rm -rf "$out"; mkdir -p "$out"
  local c
  for c in "${cmds[@]}"; do   # one at a time: bounded memory on a 2-core machine
    log "go build $c $v"
    (cd "$dir" && go build -ldflags "$ld" -o "$out/$c" "k8s.io/kubernetes/cmd/$c") || die "build of $c failed"
    install -m 0755 "$out/$c" "$(cached_bin "$c" "$v")"
  done
}

# etcd: go.etcd.io/etcd/server/v3 replaces its sibling modules with ../ paths, so it cannot be
# `go install`ed either; a wrapper module pins the siblings at the same tag.
build_etcd() {
  local v=$ETCD_VERSION dir=$FLOWCRAFT_CACHE/src/etcd-$ETCD_VERSION
  mkdir -p "$dir"
  cat > "$dir/go.mod" <<GOMOD
module flowcraft.local/etcdbuild

go 1.24

require go.etcd.io/etcd/server/v3 $v

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $v
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $v
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $v
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $v
)
GOMOD
  printf '//go:build tools\npackage tools\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$dir/tools.go"
  (cd "$dir" && go mod tidy) || die "go mod tidy failed in $dir"
  log "go build etcd $v"
  (cd "$dir" && go build -ldflags "-s -w" -o out/etcd go.etcd.io/etcd/server/v3) || die "etcd build failed"
  install -m 0755 "$dir/out/etcd" "$(cached_bin etcd "$v")"
}

# Tools whose modules have no replace directives: plain `go install pkg@version`.
build_goinstall() {
  local name=$1 pkg=$2 v=$3 ld=${4:-} gobin
  gobin=$(mktemp -d)
  log "go install $pkg@$v"
  GOBIN=$gobin go install -ldflags "-s -w $ld" "$pkg@$v" || die "go install $pkg@$v failed"
  install -m 0755 "$gobin/$(basename "$pkg")" "$(cached_bin "$name" "$v")"
  rm -rf "$gobin"
}

kube_missing=()
for c in "${want[@]}"; do
  v=$(version_of "$c")
  if [ -x "$(cached_bin "$c" "$v")" ]; then log "cached: $(cached_bin "$c" "$v")"; continue; fi
  case $c in
    kube-*|kubelet|kubectl) kube_missing+=("$c") ;;
    etcd) build_etcd ;;
    kwok) build_goinstall kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION" \
            "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$KUBE_VERSION" ;;
    helm) build_goinstall helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" \
            "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" ;;
    kind) build_goinstall kind sigs.k8s.io/kind "$KIND_VERSION" ;;
    coredns) build_goinstall coredns github.com/coredns/coredns "$COREDNS_VERSION" ;;
    crictl) build_goinstall crictl sigs.k8s.io/cri-tools/cmd/crictl "$CRICTL_VERSION" \
              "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" ;;
  esac
done
[ ${#kube_missing[@]} -gt 0 ] && build_kube "${kube_missing[@]}"
log "binaries ready in $CACHE_BIN"
