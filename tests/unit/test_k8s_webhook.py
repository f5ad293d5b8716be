"""The admission webhook's verdicts (pure): flowcraft validate's problems, or allowed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from flowcraft.drivers.kubernetes.webhook import flow_problems, review

pytestmark = pytest.mark.unit

FLOW: dict[str, Any] = {
    "apiVersion": "flowcraft.io/v1alpha1",
    "kind": "Flow",
    "metadata": {"name": "f", "namespace": "ns", "uid": "u", "managedFields": []},
    "spec": {
        "functions": {"ok": {"script": "def run(ctx):\n    return 1\n"}},
        "nodes": [{"id": "a", "uses": "ok"}, {"id": "b", "uses": "ok"}],
        "edges": [{"source": "a", "target": "b"}],
    },
}


def _request(operation: str, obj: Any, old: Any = None) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": "r-1", "operation": operation, "object": obj, "oldObject": old},
    }


def _cycle() -> dict[str, Any]:
    flow = copy.deepcopy(FLOW)
    flow["spec"]["edges"].append({"source": "b", "target": "a"})
    return flow


def test_a_valid_flow_is_allowed() -> None:
    answer = review(_request("CREATE", FLOW))
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"] == {"uid": "r-1", "allowed": True}


def test_an_invalid_flow_is_denied_with_every_problem_and_its_path() -> None:
    flow = _cycle()
    flow["spec"]["edges"].append({"source": "a", "target": "nope"})
    answer = review(_request("CREATE", flow))
    response = answer["response"]
    assert (response["uid"], response["allowed"]) == ("r-1", False)
    assert response["status"]["code"] == 422
    assert response["status"]["message"] == (
        "invalid flow: 2 problems\n"
        "  - spec.edges[2].target: edge a -> nope: unknown target node 'nope'\n"
        "  - spec.edges: cycle: a -> b -> a"
    )
    assert response["status"]["message"] == flow_problems(flow)


def test_an_update_that_keeps_the_spec_is_never_blocked() -> None:
    """Metadata edits (labels, finalizers) of a Flow admitted before the webhook existed."""
    old = _cycle()
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"team": "x"}
    assert review(_request("UPDATE", new, old))["response"]["allowed"] is True
    changed = copy.deepcopy(new)
    changed["spec"]["parallelism"] = 2
    assert review(_request("UPDATE", changed, old))["response"]["allowed"] is False


def test_other_operations_and_kinds_are_allowed() -> None:
    assert review(_request("DELETE", _cycle()))["response"]["allowed"] is True
    other = {**_cycle(), "kind": "ConfigMap"}
    assert review(_request("CREATE", other))["response"]["allowed"] is True


def _blueprint(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Blueprint",
        "metadata": {"name": "math", "namespace": "ns"},
        "spec": {"nodes": [{"id": "a", "uses": "add"}, {"id": "b", "uses": "add"}], **spec},
    }


def test_a_blueprint_is_checked_alone_its_parents_functions_assumed() -> None:
    """`add` is defined by no one here: a subflow's functions are its parent flow's."""
    ok = _blueprint(edges=[{"source": "a", "target": "b"}])
    assert review(_request("CREATE", ok))["response"] == {"uid": "r-1", "allowed": True}
    bad = _blueprint(edges=[{"source": "a", "target": "b"}, {"source": "b", "target": "a"}])
    bad["spec"]["nodes"].append({"id": "a", "uses": "add"})
    response = review(_request("CREATE", bad))["response"]
    assert response["allowed"] is False
    assert response["status"]["message"] == (
        "invalid blueprint: 2 problems\n"
        "  - spec.nodes[2].id: duplicate node id 'a' (first defined at spec.nodes[0])\n"
        "  - spec.edges: cycle: a -> b -> a"
    )
    unchanged = review(_request("UPDATE", bad, copy.deepcopy(bad)))["response"]
    assert unchanged["allowed"] is True  # metadata edits of an old invalid Blueprint
