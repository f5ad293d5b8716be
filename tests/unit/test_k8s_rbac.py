"""The operator's RBAC grants exactly what its code uses: every verb has a caller.

Why a unit test: a verb nobody uses is a right an attacker who took the operator's token gets
for free, and one missing breaks the operator only on a cluster. The table below maps each API
call of `client.Client` the operator makes to the permission it needs; the test finds every
call in the operator's modules, so a new call without a row fails here, and compares the
resulting set with the rules the chart and deploy/operator.yaml grant.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "operator" / "flowcraft" / "drivers" / "kubernetes"

Permission = tuple[str, str, str]  # apiGroup, resource, verb

# What each Client method the operator calls needs.
CALLS: dict[str, set[Permission]] = {
    "get_flow": {("flowcraft.io", "flows", "get")},
    "create_flow": {("flowcraft.io", "flows", "create")},
    "delete_flow": {("flowcraft.io", "flows", "delete")},
    "replace_flow_status": {("flowcraft.io", "flows/status", "update")},
    "list_blueprints": {("flowcraft.io", "blueprints", "list")},
    "create_job": {("batch", "jobs", "create")},
    "get_job": {("batch", "jobs", "get")},
    "list_jobs": {("batch", "jobs", "list")},
    "patch_job": {("batch", "jobs", "patch")},
    "delete_job": {("batch", "jobs", "delete")},
    "list_pods": {("", "pods", "list")},
    "delete_pod": {("", "pods", "delete")},  # an attempt past its timeout is stopped
    "read_pod_log": {("", "pods/log", "get")},  # a result over 4 KiB, from the pod's log
    "create_configmap": {("", "configmaps", "create")},
    "get_configmap": {("", "configmaps", "get")},
    "list_configmaps": {("", "configmaps", "list")},
    "create_event": {("", "events", "create")},
}
# kopf's watches (controller.py: Flows, Jobs, pods, ConfigMaps: a deleted output is restored)
# and its own warning Events.
KOPF: set[Permission] = {
    ("flowcraft.io", "flows", "list"),
    ("flowcraft.io", "flows", "watch"),
    ("batch", "jobs", "list"),
    ("batch", "jobs", "watch"),
    ("", "pods", "list"),
    ("", "pods", "watch"),
    ("", "configmaps", "list"),
    ("", "configmaps", "watch"),
    ("", "events", "create"),
}
# Cluster scope only: kopf's resource scanning notices the CRD (re)appearing.
CLUSTER_ONLY: set[Permission] = {
    ("apiextensions.k8s.io", "customresourcedefinitions", verb) for verb in ("get", "list", "watch")
}
# Modules that run inside the operator (the CLI's modules use the user's own credentials).
OPERATOR_MODULES = [
    p for p in DRIVER.rglob("*.py") if p.name not in {"client.py", "entry.py", "crd.py"}
]
_CALL = re.compile(r"\b_?client\.([a-z_]+)\(")


def operator_calls() -> set[str]:
    found: set[str] = set()
    for path in OPERATOR_MODULES:
        found |= set(_CALL.findall(path.read_text()))
    return found - {"close", "registry"}


def granted(rules: list[dict[str, object]]) -> set[Permission]:
    out: set[Permission] = set()
    for rule in rules:
        for group in rule["apiGroups"]:  # type: ignore[attr-defined]
            for resource in rule["resources"]:  # type: ignore[attr-defined]
                for verb in rule["verbs"]:  # type: ignore[attr-defined]
                    out.add((group, resource, verb))
    return out


def needed() -> set[Permission]:
    calls = operator_calls()
    unknown = calls - set(CALLS)
    assert not unknown, f"operator calls without a permission row here: {sorted(unknown)}"
    return set().union(*(CALLS[c] for c in calls)) | KOPF


def test_every_call_the_operator_makes_has_a_permission_and_every_row_is_used() -> None:
    calls = operator_calls()
    assert calls, "no client calls found: the pattern no longer matches the code"
    assert set(CALLS) == calls, "rows for calls the operator no longer makes"


def test_deploy_manifest_grants_exactly_what_the_operator_uses() -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "operator.yaml").read_text()))
    (role,) = [d for d in docs if d and d["kind"] == "ClusterRole"]
    assert granted(role["rules"]) == needed() | CLUSTER_ONLY


def test_chart_rules_grant_exactly_what_the_operator_uses() -> None:
    text = (ROOT / "charts" / "flowcraft" / "templates" / "_helpers.tpl").read_text()
    block = text.split('{{- define "flowcraft.rules" -}}', 1)[1].split("{{- end -}}", 1)[0]
    assert granted(yaml.safe_load(block)) == needed()
