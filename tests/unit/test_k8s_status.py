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
    assert [(c["type"], c["status"], c["reason"]) for c in out.pop("conditions")] == [
        ("Succeeded", "False", "Failed"),
        ("Failed", "True", "Failed"),
    ]
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


# ------------------------------------------------------------------ status conventions


def _conditions(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in out["conditions"]}


@pytest.mark.parametrize(
    ("phase", "succeeded", "failed"),
    [
        ("Pending", "Unknown", "False"),
        ("Running", "Unknown", "False"),
        ("Succeeded", "True", "False"),
        ("Failed", "False", "True"),
        ("Cancelled", "False", "True"),
    ],
)
def test_conditions_follow_the_phase_with_every_metav1_field(
    phase: str, succeeded: str, failed: str
) -> None:
    out = fs.render_status(FlowStatus(phase=phase), {}, total=1, generation=3, now=T1)  # type: ignore[arg-type]
    assert out["observedGeneration"] == 3
    conds = _conditions(out)
    assert (conds["Succeeded"]["status"], conds["Failed"]["status"]) == (succeeded, failed)
    for cond in conds.values():
        assert set(cond) == {
            "type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"
        }  # fmt: skip
        assert cond["reason"] == phase
        assert cond["message"]
        assert cond["observedGeneration"] == 3
        assert cond["lastTransitionTime"] == "2026-01-01T12:00:02Z"  # whole seconds


def test_transition_time_moves_only_when_a_condition_changes() -> None:
    running = fs.render_status(FlowStatus(phase="Running"), {}, total=1, generation=1, now=T0)
    later = fs.render_status(
        FlowStatus(phase="Running"), {}, total=1, previous=running, generation=1, now=T1
    )
    assert later == running  # an unchanged Flow renders identically: no status write
    assert not fs.material_change(running, later)
    done = fs.render_status(
        FlowStatus(phase="Succeeded", message="ok"),
        {},
        total=1,
        previous=running,
        generation=1,
        now=T1,
    )
    conds = _conditions(done)
    assert conds["Succeeded"]["lastTransitionTime"] == "2026-01-01T12:00:02Z"
    assert conds["Failed"]["lastTransitionTime"] == "2026-01-01T12:00:00Z"  # still False
    assert conds["Succeeded"]["message"] == "ok"


def test_without_now_the_rendering_is_unchanged() -> None:
    out = fs.render_status(FlowStatus(phase="Running"), {}, total=1)
    assert "conditions" not in out
    assert "observedGeneration" not in out


def test_a_finished_flow_observes_later_generations_and_gains_conditions() -> None:
    old = {"phase": "Succeeded", "message": "done", "finishedAt": "2026-01-01T12:00:00Z"}
    first = fs.observe_finished(old, 1, T0)
    assert first is not None
    assert _conditions(first)["Succeeded"]["status"] == "True"
    assert fs.observe_finished(first, 1, T1) is None  # nothing to write
    edited = fs.observe_finished(first, 2, T1)
    assert edited is not None
    assert edited["observedGeneration"] == 2
    assert _conditions(edited)["Succeeded"]["observedGeneration"] == 2
    assert _conditions(edited)["Succeeded"]["lastTransitionTime"] == "2026-01-01T12:00:00Z"


def test_long_messages_fit_a_condition() -> None:
    out = fs.render_status(FlowStatus(phase="Failed", message="x" * 40000), {}, total=1, now=T0)
    assert all(len(c["message"]) <= 32768 for c in out["conditions"])
    assert "observedGeneration" not in out["conditions"][0]
