"""Wait/resume and sleep with the local runner and the CLI; resume and Events on the cluster
side as pure functions (what `flowcraft resume FLOW` patches, when it refuses, which Events).

Locally a run that reaches Awaiting keeps its run directory, saves its state there and exits 4
with the resume command on stderr; `flowcraft resume RUN_DIR NODE --data JSON` continues the
same run from that state (no node runs twice).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowcraft import clustercli
from flowcraft.cli import EXIT_AWAITING, main
from flowcraft.drivers.kubernetes import status as fs
from flowcraft.drivers.local import LocalRunner
from flowcraft.drivers.local_state import STATE_FILE, load_results, load_state
from flowcraft.engine import Engine
from flowcraft.model import FlowStatus, NodeStatus, parse_flow

pytestmark = pytest.mark.unit

FUNCTIONS = {
    "start": {
        "script": "def run(ctx):\n    ctx.set('asked', 'alice')\n    return {'amount': 1500}\n"
    },
    "decide": {
        "script": "def run(ctx):\n    return {'got': ctx.input, 'asked': ctx.get('asked')}\n"
    },
    "no": {"script": "def run(ctx):\n    return 'rejected'\n"},
}


def manifest(name: str, nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {"functions": FUNCTIONS, "nodes": nodes, "edges": edges},
    }


APPROVAL = manifest(
    "approval",
    [
        {"id": "start", "uses": "start"},
        {"id": "approve", "uses": "wait"},
        {"id": "decide", "uses": "decide"},
        {"id": "reject", "uses": "no"},
    ],
    [
        {"source": "start", "target": "approve"},
        {"source": "approve", "target": "decide"},
        {"source": "approve", "target": "reject", "action": "deny"},
    ],
)

TWO_WAITS = manifest(
    "two",
    [
        {"id": "start", "uses": "start"},
        {"id": "w1", "uses": "wait"},
        {"id": "w2", "uses": "WaitNode"},
        {"id": "decide", "uses": "decide"},
    ],
    [
        {"source": "start", "target": "w1"},
        {"source": "start", "target": "w2"},
        {"source": "w1", "target": "decide"},
        {"source": "w2", "target": "decide"},
    ],
)


def write_flow(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / f"{doc['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run_dir_of(workdir: Path) -> Path:
    (run_dir,) = workdir.iterdir()
    return run_dir


def test_run_stops_awaiting_keeps_state_and_prints_the_resume_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = write_flow(tmp_path, APPROVAL)
    assert main(["run", str(flow), "-q"]) == EXIT_AWAITING == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # -q: only the resume line
    match = re.fullmatch(
        r"flowcraft: flow approval is awaiting node approve; resume: "
        r"flowcraft resume (\S+) approve --data '\{\"output\": \.\.\.\}'",
        err[0],
    )
    assert match, err[0]
    run_dir = Path(match.group(1))
    try:
        assert run_dir.is_dir()  # a temporary run directory, kept because it is resumable
        state = load_state(run_dir)
        assert state.status.phase == "Awaiting"
        assert state.flow.spec.functions["start"].script == FUNCTIONS["start"]["script"]
        outputs, writes = load_results(run_dir, Engine(state.flow.spec).result_keys(state.status))
        assert outputs == {"start": {"amount": 1500}}
        assert writes == {"start": ({"op": "set", "key": "asked", "value": "alice"},)}
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def test_resume_continues_the_same_run_and_runs_no_node_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = write_flow(tmp_path, APPROVAL)
    assert main(["run", str(flow), "-q", "--workdir", str(tmp_path / "runs")]) == 4
    run_dir = run_dir_of(tmp_path / "runs")
    capsys.readouterr()
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"output": {"ok": True}}))
    code = main(["resume", str(run_dir), "approve", "--data", f"@{data}", "--output", "json", "-q"])
    assert code == 0
    context = json.loads(capsys.readouterr().out)
    assert context["_outputs.approve"] == {"ok": True}
    assert context["_outputs.decide"] == {"got": {"ok": True}, "asked": "alice"}
    assert "_awaitingNodeIds" not in context
    assert "reject" not in context  # the action edge was not taken
    assert sorted(p.name for p in (run_dir / "nodes").iterdir()) == ["decide", "start"]
    assert [p.name for p in (run_dir / "nodes" / "start").iterdir()] == ["1"]
    # The saved state now records the end: nothing left to resume.
    assert load_state(run_dir).status.phase == "Succeeded"
    assert main(["resume", str(run_dir), "approve", "--data", "1"]) == 2
    assert "is not awaiting: flow approval is Succeeded" in capsys.readouterr().err


def test_resume_data_action_routes_like_flowcraft(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = write_flow(tmp_path, APPROVAL)
    assert main(["run", str(flow), "-q", "--workdir", str(tmp_path)]) == 4
    run_dir = next(p for p in tmp_path.iterdir() if p.is_dir())
    data = '{"output": "no way", "action": "deny"}'
    assert main(["resume", str(run_dir), "approve", "--data", data, "-q", "--output", "json"]) == 0
    context = json.loads(capsys.readouterr().out)
    assert context["_outputs.reject"] == "rejected"
    assert context["_outputs.approve"] == "no way"
    assert "_outputs.decide" not in context


def test_output_json_of_an_awaiting_run_is_its_context(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = write_flow(tmp_path, APPROVAL)
    assert main(["run", str(flow), "-q", "--output", "json", "--workdir", str(tmp_path)]) == 4
    context = json.loads(capsys.readouterr().out)
    assert context["_awaitingNodeIds"] == ["approve"]
    assert context["_awaitingDetails"] == {"approve": {"reason": "external_event"}}
    assert context["_outputs.start"] == {"amount": 1500}


def test_two_waits_resume_one_at_a_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = write_flow(tmp_path, TWO_WAITS)
    assert main(["run", str(flow), "-q", "--workdir", str(tmp_path / "r")]) == 4
    assert "awaiting nodes w1, w2; resume (one node at a time)" in capsys.readouterr().err
    run_dir = run_dir_of(tmp_path / "r")
    assert main(["resume", str(run_dir), "w2", "--data", '"b"', "-q"]) == 4
    assert "is awaiting node w1;" in capsys.readouterr().err
    assert main(["resume", str(run_dir), "w1", "--data", '{"output": "a"}', "-q"]) == 0
    state = load_state(run_dir)
    assert state.status.phase == "Succeeded"
    assert state.flow.spec.resume == {"w2": "b", "w1": {"output": "a"}}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "--data", "1"], "flow approval has no node 'nope' (awaiting: approve)"),
        (
            ["start", "--data", "1"],
            "node 'start' of flow approval is not awaiting (phase Succeeded; awaiting: approve)",
        ),
        (["approve", "--data", "{oops"], "--data: not valid JSON"),
        (["approve", "--data", "@/no/such/file"], "--data @/no/such/file: cannot read"),
        (["approve", "--data", "1", "-n", "x"], "--namespace names a Flow on a cluster"),
    ],
)
def test_resume_refuses_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    flow = write_flow(tmp_path, APPROVAL)
    assert main(["run", str(flow), "-q", "--workdir", str(tmp_path / "r")]) == 4
    capsys.readouterr()
    assert main(["resume", str(run_dir_of(tmp_path / "r")), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_resume_of_a_directory_that_is_no_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["resume", str(tmp_path), "n", "--data", "1"]) == 2
    assert f"has no {STATE_FILE}" in capsys.readouterr().err
    assert main(["resume", str(tmp_path / "gone") + "/", "n", "--data", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_sleep_between_two_nodes_delays_the_second(tmp_path: Path) -> None:
    flow = parse_flow(
        manifest(
            "nap",
            [
                {"id": "start", "uses": "start"},
                {"id": "nap", "uses": "sleep", "params": {"duration": 300}},
                {"id": "decide", "uses": "decide"},
            ],
            [{"source": "start", "target": "nap"}, {"source": "nap", "target": "decide"}],
        )
    )
    seen: list[FlowStatus] = []
    result = asyncio.run(LocalRunner(flow, tmp_path, on_status=seen.append).run())
    assert result.status.phase == "Succeeded"
    first = next(r for r in result.attempts if r.node == "start")
    second = next(r for r in result.attempts if r.node == "decide")
    assert (second.started_at - first.finished_at).total_seconds() >= 0.3
    assert any(s.nodes["nap"].phase == "Sleeping" and s.nodes["nap"].wake_at for s in seen)
    assert result.context["_outputs.decide"]["got"] == {"amount": 1500}  # sleep passes through


# ---------------------------------------------------------------- the cluster side (pure)


def flow_object(phase: str, nodes: dict[str, str], spec_extra: Any = None) -> dict[str, Any]:
    body = APPROVAL | {"metadata": {"name": "approval", "namespace": "ns"}}
    body["spec"] = {**APPROVAL["spec"], **(spec_extra or {})}
    body["status"] = {"phase": phase, "nodes": {n: {"phase": p} for n, p in nodes.items()}}
    return body


def test_cluster_resume_checks_the_node_first() -> None:
    awaiting = flow_object("Awaiting", {"start": "Succeeded", "approve": "Awaiting"})
    assert clustercli.resume_problem(awaiting, "approve") is None
    assert clustercli.resume_problem(awaiting, "x") == (
        "flow 'approval' has no node 'x' (awaiting: approve)"
    )
    assert clustercli.resume_problem(awaiting, "start") == (
        "node 'start' of flow 'approval' is not a wait node (uses 'start')"
    )
    running = flow_object("Running", {"start": "Running"})
    problem = clustercli.resume_problem(running, "approve")
    assert problem is not None
    assert problem.startswith("node 'approve' of flow 'approval' is not awaiting (phase Pending;")
    done = flow_object("Succeeded", {"approve": "Succeeded"})
    assert clustercli.resume_problem(done, "approve") == (
        "flow 'approval' already finished (Succeeded): there is nothing to resume"
    )


def test_cluster_resume_patch_is_a_merge_patch_unless_data_holds_null() -> None:
    flow = flow_object("Awaiting", {"approve": "Awaiting"})
    assert clustercli.resume_patch(flow, "approve", {"output": {"ok": True}}) == (
        "merge",
        {"spec": {"resume": {"approve": {"output": {"ok": True}}}}},
    )
    assert clustercli.resume_patch(flow, "approve", {"output": None}) == (
        "json",
        [{"op": "add", "path": "/spec/resume", "value": {"approve": {"output": None}}}],
    )
    with_resume = flow_object("Awaiting", {"a/b": "Awaiting"}, {"resume": {"x": 1}})
    assert clustercli.resume_patch(with_resume, "a/b", [None]) == (
        "json",
        [{"op": "add", "path": "/spec/resume/a~1b", "value": [None]}],
    )


def test_events_mark_awaiting_and_resumed() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    running = FlowStatus(phase="Running", started_at=t, nodes={"w": NodeStatus(phase="Pending")})
    awaiting = FlowStatus(
        phase="Awaiting", started_at=t, nodes={"w": NodeStatus(phase="Awaiting", attempts=1)}
    )
    resumed = FlowStatus(
        phase="Running",
        started_at=t,
        nodes={"w": NodeStatus(phase="Succeeded", attempts=1, action="ok")},
    )
    (note,) = fs.notes(running, awaiting, "f", "team")
    assert (note.reason, note.warning) == ("NodeAwaiting", False)
    assert "flowcraft resume f w -n team --data" in note.message
    assert "kubectl patch flow f -n team --type merge" in note.message
    assert fs.notes(awaiting, awaiting, "f") == []
    (note,) = fs.notes(awaiting, resumed, "f")
    assert (note.reason, note.message, note.warning) == (
        "NodeResumed",
        "node w resumed (action ok)",
        False,
    )
