"""What users see of a Flow: rendered status, Events, refusal reasons, mounted outputs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from flowcraft.drivers.kubernetes import status as fs
from flowcraft.model import FlowStatus, NodeStatus

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 12, 0, 2, 500000, tzinfo=UTC)


def _body(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": "f", "namespace": "n"},
        "spec": {"functions": {"ok": {"script": "x"}}, "nodes": nodes, "edges": edges},
    }


def test_parse_accepts_a_valid_flow() -> None:
    flow, problem = fs.parse_flow(_body([{"id": "a", "uses": "ok"}], []))
    assert flow is not None
    assert problem == ""


def test_parse_reports_every_graph_problem_in_one_message() -> None:
    nodes = [{"id": "a", "uses": "ok"}, {"id": "b", "uses": "ok"}]
    edges = [{"source": "a", "target": "b"}, {"source": "b", "target": "a"}]
    edges.append({"source": "a", "target": "zz"})
    flow, problem = fs.parse_flow(_body(nodes, edges))
    assert flow is None
    assert problem.startswith("invalid flow: ")
    assert "cycle" in problem
    assert "'zz'" in problem


def test_parse_reports_shape_problems_with_paths() -> None:
    flow, problem = fs.parse_flow(
        _body([{"id": "a", "uses": "ok", "config": {"maxRetries": 0}}], [])
    )
    assert flow is None
    assert "spec.nodes[0].config.maxRetries" in problem


def test_invalid_status_keeps_an_earlier_start() -> None:
    out = fs.invalid_status({"startedAt": "2025-01-01T00:00:00Z"}, "invalid flow: x", T0)
    assert out == {
        "phase": "Failed",
        "message": "invalid flow: x",
        "errors": ["invalid flow: x"],
        "startedAt": "2025-01-01T00:00:00Z",
        "finishedAt": "2026-01-01T12:00:00Z",
    }


def test_render_uses_real_pod_starts_and_adds_progress_and_duration() -> None:
    status = FlowStatus(
        phase="Succeeded",
        started_at=T0,
        finished_at=T1,
        nodes={
            "a": NodeStatus(phase="Succeeded", attempts=1, started_at=T0, finished_at=T1),
            "b": NodeStatus(phase="Skipped"),
            "c": NodeStatus(phase="Running", attempts=1, started_at=T0),
        },
    )
    pod_start = datetime(2026, 1, 1, 12, 0, 1, tzinfo=UTC)
    out = fs.render_status(status, {"a": pod_start}, total=3)
    assert out["nodes"]["a"]["startedAt"] == "2026-01-01T12:00:01Z"
    assert out["nodes"]["c"]["startedAt"] == "2026-01-01T12:00:00Z"
    assert out["progress"] == "2/3"
    assert out["duration"] == "2.5s"
    assert out["phase"] == "Succeeded"


def test_running_flow_has_no_duration() -> None:
    out = fs.render_status(FlowStatus(phase="Running", started_at=T0), {}, total=0)
    assert "duration" not in out
    assert out["progress"] == "0/0"


def test_notes_only_for_transitions() -> None:
    old = FlowStatus(phase="Running", nodes={"a": NodeStatus(phase="Running")})
    new = FlowStatus(
        phase="Failed",
        message="1 failure(s): a",
        nodes={"a": NodeStatus(phase="Failed", message="exit code 1: boom")},
    )
    notes = fs.notes(old, new)
    assert [n.reason for n in notes] == ["NodeFailed", "FlowFailed"]
    assert all(n.warning for n in notes)
    assert "boom" in notes[0].message
    assert fs.notes(new, new) == []
    done = FlowStatus(phase="Succeeded", message="ok")
    assert fs.notes(FlowStatus(phase="Running"), done) == [fs.Note("FlowSucceeded", "ok", False)]


def test_output_refs_name_only_nodes_that_succeeded() -> None:
    # flowcraft shows a node recovered by its fallback as null: it has no ConfigMap of its own.
    status = FlowStatus(
        phase="Running",
        nodes={
            "fetch": NodeStatus(phase="Failed", reason="Recovered"),
            "cache": NodeStatus(phase="Succeeded", output_ref="f-cache-1-out"),
            "other": NodeStatus(phase="Failed"),
            "x": NodeStatus(phase="Running"),
        },
    )
    assert fs.output_refs(status) == {"cache": "f-cache-1-out"}


def test_a_start_time_refinement_alone_is_not_worth_a_write() -> None:
    old = {"phase": "Running", "nodes": {"a": {"phase": "Running", "startedAt": "t0"}}}
    refined = {"phase": "Running", "nodes": {"a": {"phase": "Running", "startedAt": "t1"}}}
    done = {"phase": "Running", "nodes": {"a": {"phase": "Succeeded", "startedAt": "t1"}}}
    assert not fs.material_change(old, old)
    assert not fs.material_change(old, refined)
    assert fs.material_change(old, done)
    assert fs.material_change({}, old)
