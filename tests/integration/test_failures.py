"""A Flow the operator cannot reconcile: it backs off, says so, and fails the Flow at a bound.

The API server itself provides the failure: a ValidatingAdmissionPolicy refuses, as too large
(413), every status update that would leave this test's Flow Running: exactly what the API
server answers for a status past its size limit, which no retry can fix. Before, the operator
retried such a Flow every 30 s forever, visible only in its log. Now each failed pass is an
Event naming the cause, the passes back off exponentially, and after MAX_CRASHES of them the
Flow is Failed with the cause (a Failed status is not refused). Nothing here mocks the API.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cluster import Cluster
from flowcraft.drivers.kubernetes import failures
from operator_harness import (
    OperatorProcess,
    apply_doc,
    events_for,
    flow_crd,
    operator,
    wait_phase,
)

pytestmark = pytest.mark.integration

__all__ = ["flow_crd", "operator"]  # fixtures


def _policy(namespace: str) -> tuple[dict[str, Any], dict[str, Any]]:
    name = f"fc-refuse-running-{namespace}"[:63]
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["flowcraft.io"],
                        "apiVersions": ["*"],
                        "operations": ["UPDATE"],
                        "resources": ["flows/status"],
                    }
                ]
            },
            "matchConditions": [
                {"name": "the-poisoned-flow", "expression": "object.metadata.name == 'poison'"}
            ],
            "validations": [
                {
                    "expression": "!has(object.status) || !has(object.status.phase) || "
                    "object.status.phase != 'Running'",
                    "message": "status too large (test)",
                    "reason": "RequestEntityTooLarge",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    return policy, binding


def test_a_flow_that_cannot_be_reconciled_fails_with_the_cause(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    policy, binding = _policy(namespace)
    for doc in (policy, binding):
        cluster.kubectl("apply", "-f", "-", input=json.dumps(doc))
    try:
        flow = {
            "apiVersion": "flowcraft.io/v1alpha1",
            "kind": "Flow",
            "metadata": {"name": "poison"},
            "spec": {
                "nodes": [{"id": "a", "uses": "f"}],
                "functions": {"f": {"script": "def run(ctx):\n    return 1\n"}},
            },
        }
        apply_doc(cluster, namespace, flow)
        # 0.5 + 1 + 2 + 4 + 8 s of backoff, plus the passes, on a loaded machine.
        done = wait_phase(cluster, namespace, "poison", {"Failed", "Succeeded"}, timeout=180)
        status = done["status"]
        assert status["phase"] == "Failed", status
        assert status["message"].startswith(
            f"the operator could not reconcile this Flow ({failures.MAX_CRASHES} failed passes):"
        ), status["message"]
        assert "413" in status["message"]
        assert "status too large (test)" in status["message"]
        events = events_for(cluster, namespace, "poison")
        reasons = [e["reason"] for e in events]
        assert failures.REASON_RECONCILE_FAILED in reasons, reasons
        retries = [e for e in events if e["reason"] == failures.REASON_RECONCILE_ERROR]
        assert retries, reasons
        assert any("retrying in" in e["message"] for e in retries)
        log = operator.log()
        assert log.count("reconcile of") <= 3 * failures.MAX_CRASHES, log[-3000:]
    finally:
        for kind, doc in (
            ("validatingadmissionpolicybinding", binding),
            ("validatingadmissionpolicy", policy),
        ):
            cluster.kubectl("delete", kind, doc["metadata"]["name"], check=False)
