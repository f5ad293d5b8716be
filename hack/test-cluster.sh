#!/usr/bin/env bash
# The cluster tiers of `make test`: integration + e2e tests on a real Kubernetes.
# Uses KUBECONFIG when set (e.g. a user's kind cluster); otherwise brings up the offline
# harness (a no-op when it is already healthy). Under CI the harness is stopped afterwards;
# a developer's harness is left running for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${KUBECONFIG:-}" ]]; then
  make --no-print-directory cluster
  if [[ "${CI:-}" == "true" ]]; then
    trap 'make --no-print-directory cluster-down' EXIT
  fi
fi
.venv/bin/pytest -m "integration or e2e" -q tests/integration tests/e2e
