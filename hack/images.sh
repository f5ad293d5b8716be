#!/usr/bin/env bash
# Build the harness images offline and save them as docker-archive tarballs in the cache:
#   flowcraft-base  : debootstrap --variant=minbase --include=python3 (rootfs tar cached)
#   flowcraft-pause : static C pause binary FROM scratch (the pod sandbox image)
#   flowcraft-smoke : FROM flowcraft-base, writes a termination message
# Nothing is pulled: every `docker build` runs with --network none and FROM local images only.
# Usage: hack/images.sh [base|pause|smoke]...   (default: all). Prints nothing on stdout.
# When the private dockerd runs (or FLOWCRAFT_DOCKER=system), `hack/images.sh base` also makes
# sure flowcraft-base is present there, for Dockerfiles that build FROM it.
# Outputs $FLOWCRAFT_CACHE/images/<name>_<tag>.tar, rebuilt only when its inputs change.
source "$(dirname "$0")/lib.sh"

IMG_CACHE=$FLOWCRAFT_CACHE/images
mkdir -p "$IMG_CACHE"
targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(base pause smoke)

tar_of() { local n=${1%%:*} t=${1#*:}; echo "$IMG_CACHE/${n}_${t}.tar"; }
inputs_hash() { (cd "$ROOT_DIR" && { cat "$@"; grep -E '^(BASE_|PAUSE_|SMOKE_)' hack/versions.env; } | sha256sum | cut -c1-16); }
fresh() { [ -f "$(tar_of "$1")" ] && [ "$(cat "$(tar_of "$1").key" 2>/dev/null)" = "$2" ]; }

started_dockerd=0
docker_up() {
  [ -n "${DOCKER_READY:-}" ] && return 0
  if ! "$HACK_DIR/dockerd.sh" status >/dev/null 2>&1 && [ "${FLOWCRAFT_DOCKER:-}" != system ]; then
    "$HACK_DIR/dockerd.sh" start; started_dockerd=1
  fi
  eval "$("$HACK_DIR/dockerd.sh" env)"; DOCKER_READY=1
}
cleanup() { [ $started_dockerd = 1 ] && [ -z "${KEEP_DOCKERD:-}" ] && "$HACK_DIR/dockerd.sh" stop; true; }
trap cleanup EXIT

save() { docker save -o "$(tar_of "$1").tmp" "$1" && mv "$(tar_of "$1").tmp" "$(tar_of "$1")" && echo "$2" > "$(tar_of "$1").key"; }

debian_mirror() {
  local m
  m=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
      | grep -v security | head -1 | awk '{print ($1=="deb") ? $2 : $2}')
  echo "${DEBIAN_MIRROR:-${m:-http://deb.debian.org/debian}}"
}

# Machines with internet but without debootstrap (e2e-kind elsewhere) may set
# FLOWCRAFT_BASE_FROM=python:3.11-slim-bookworm: pulled and tagged as the base image.
build_base_from_registry() {
  docker_up
  docker pull "$FLOWCRAFT_BASE_FROM" >/dev/null && docker tag "$FLOWCRAFT_BASE_FROM" "$BASE_IMAGE"
  save "$BASE_IMAGE" "from:$FLOWCRAFT_BASE_FROM"
}

# A cached archive is enough for the cluster; docker builds FROM the base need it in docker.
ensure_base_in_docker() {
  if [ "${FLOWCRAFT_DOCKER:-}" = system ] || "$HACK_DIR/dockerd.sh" status >/dev/null 2>&1; then
    docker_up
    docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || { log "docker load $BASE_IMAGE"; docker load -q -i "$(tar_of "$BASE_IMAGE")" >/dev/null; }
  fi
  return 0
}

build_base() {
  if [ -n "${FLOWCRAFT_BASE_FROM:-}" ]; then build_base_from_registry; return; fi
  local rootfs_tar=$IMG_CACHE/rootfs-$BASE_SUITE-minbase-python3-r$BASE_IMAGE_REV.tar key
  if [ ! -f "$rootfs_tar" ]; then
    apt_install debootstrap
    local dir; dir=$(mktemp -d /var/tmp/flowcraft-base.XXXXXX)
    log "debootstrap $BASE_SUITE into $dir ($(debian_mirror))"
    debootstrap --variant=minbase --include=python3 "$BASE_SUITE" "$dir" "$(debian_mirror)" \
      > "$IMG_CACHE/debootstrap.log" 2>&1 || { tail -20 "$IMG_CACHE/debootstrap.log" >&2; die "debootstrap failed"; }
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/var/log/* "$dir"/tmp/*
    tar --numeric-owner -C "$dir" -cf "$rootfs_tar.tmp" . && mv "$rootfs_tar.tmp" "$rootfs_tar"
    rm -rf "$dir"
  fi
  key=$(inputs_hash; sha256sum "$rootfs_tar" | cut -c1-16)
  fresh "$BASE_IMAGE" "$key" && { log "cached: $BASE_IMAGE"; ensure_base_in_docker; return 0; }
  docker_up
  log "docker import $BASE_IMAGE"
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' "$rootfs_tar" "$BASE_IMAGE" >/dev/null
  save "$BASE_IMAGE" "$key"
}

build_pause() {
  local key; key=$(inputs_hash images/pause/pause.c images/pause/Dockerfile)
  fresh "$PAUSE_IMAGE" "$key" && { log "cached: $PAUSE_IMAGE"; return 0; }
  docker_up
  local ctx; ctx=$(mktemp -d)
  cp "$ROOT_DIR/images/pause/Dockerfile" "$ctx/"
  gcc -static -Os -s -o "$ctx/pause" "$ROOT_DIR/images/pause/pause.c" || die "gcc failed (apt-get install gcc libc6-dev)"
  log "docker build $PAUSE_IMAGE"
  docker build -q --network none -t "$PAUSE_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
  save "$PAUSE_IMAGE" "$key"
}

build_smoke() {
  local key; key=$(inputs_hash images/smoke/Dockerfile images/smoke/smoke.sh; cat "$(tar_of "$BASE_IMAGE").key")
  fresh "$SMOKE_IMAGE" "$key" && { log "cached: $SMOKE_IMAGE"; return 0; }
  docker_up
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || docker load -q -i "$(tar_of "$BASE_IMAGE")" >/dev/null
  log "docker build $SMOKE_IMAGE"
  docker build -q --network none --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$SMOKE_IMAGE" "$ROOT_DIR/images/smoke" >/dev/null
  save "$SMOKE_IMAGE" "$key"
}

for t in "${targets[@]}"; do
  case $t in
    base) build_base ;; pause) build_pause ;;
    smoke) [ -f "$(tar_of "$BASE_IMAGE").key" ] || build_base; build_smoke ;;
    *) die "unknown image target $t" ;;
  esac
done
