# shellcheck shell=bash
# Common helpers for hack/*.sh. Source it; do not run it.
set -euo pipefail
HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$HACK_DIR/.." && pwd)
# shellcheck source=versions.env
source "$HACK_DIR/versions.env"
FLOWCRAFT_CACHE=${FLOWCRAFT_CACHE:-/var/cache/flowcraft}
CACHE_BIN=$FLOWCRAFT_CACHE/bin
CLUSTER_DIR=${CLUSTER_DIR:-$ROOT_DIR/.cluster}
# Never let cluster components or builds talk to a proxy.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

go_version() { GOTOOLCHAIN=local go env GOVERSION; }

# cached_bin NAME VERSION -> path of the cached binary (may not exist yet)
cached_bin() { echo "$CACHE_BIN/$1-$2-$(go_version)"; }

# apt_install PKG... : install Debian packages only when missing (idempotent).
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if [ ! -f /var/lib/apt/lists/.flowcraft-updated ] || ! apt-cache show "${missing[0]}" >/dev/null 2>&1; then
    apt-get update -qq && touch /var/lib/apt/lists/.flowcraft-updated
  fi
  # Keep package scripts from starting services (docker, containerd): we run our own instances.
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' > $policy; chmod +x $policy; created=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { [ $created = 1 ] && rm -f $policy; die "apt-get install failed"; }
  [ $created = 1 ] && rm -f $policy
  return 0
}
