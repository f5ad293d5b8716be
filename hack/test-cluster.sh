#!/usr/bin/env bash
# The cluster tiers of `make test`: integration + e2e tests on a real Kubernetes.
# Uses KUBECONFIG when set (e.g. a user's kind cluster); otherwise brings up the offline
# harness (a no-op when it is already healthy). Under CI the harness, and the private dockerd
# the image builds start, are stopped afterwards; a developer's are left running.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${CI:-}" == "true" ]]; then
  cleanup() {
    [[ -n "${KUBECONFIG:-}" ]] || make --no-print-directory cluster-down
    if [[ "$dockerd_before" != running ]]; then hack/dockerd.sh stop; fi
  }
  dockerd_before=$(hack/dockerd.sh status >/dev/null 2>&1 && echo running || echo stopped)
  trap cleanup EXIT
fi
if [[ -z "${KUBECONFIG:-}" ]]; then
  make --no-print-directory cluster
fi
.venv/bin/pytest -m "integration or e2e" -q tests/integration tests/e2e tests/compat
