"""flowcraft's built-in nodes the engine runs itself: sleep, wait (resume), loop-controller."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flowcraft.engine import Engine, NodeFailed, NodeSucceeded, StartNode, Step
from flowcraft.model import FlowSpec, FlowStatus, FlowValidationError, parse_flow

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def spec_of(
    nodes: list[dict[str, Any]], edges: list[dict[str, Any]] | None = None, **extra: Any
) -> FlowSpec:
    data = {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": "t"},
        "spec": {
            "nodes": nodes,
            "edges": edges or [],
            "functions": {"task": {"script": "def run(ctx):\n    return None\n"}},
            **extra,
        },
    }
    return parse_flow(data).spec


def n(node_id: str, uses: str = "task", **fields: Any) -> dict[str, Any]:
    return {"id": node_id, "uses": uses, **fields}


def e(source: str, target: str, **fields: Any) -> dict[str, Any]:
    return {"source": source, "target": target, **fields}


def key(node: str, iteration: int) -> str:
    return node if not iteration else f"{node}/{iteration}"


class Run:
    def __init__(self, spec: FlowSpec) -> None:
        self.engine = Engine(spec)
        self.outputs: dict[str, Any] = {}
        self.writes: dict[str, Any] = {}
        self.now = T0
        self.step = self.engine.start(T0)
        self.started: list[StartNode] = list(starts(self.step))

    def advance(self, *events: Any) -> Step:
        self.step = self.engine.advance(
            self.step.status, list(events), self.now, self.outputs, self.writes
        )
        self.started.extend(starts(self.step))
        return self.step

    def ok(self, node: str, output: Any = None, **writes: Any) -> Step:
        ns = self.step.status.nodes[node]
        it = ns.iteration or 0
        self.outputs[key(node, it)] = output
        w = tuple({"op": "set", "key": k, "value": v} for k, v in writes.items())
        if w:
            self.writes[key(node, it)] = w
        return self.advance(
            NodeSucceeded(node, ns.attempts, self.now, output=output, writes=w, iteration=it)
        )

    def phase(self, node: str) -> str:
        return self.step.status.nodes[node].phase

    def context(self) -> dict[str, Any]:
        return self.engine.context(self.step.status, self.outputs, self.writes)


def starts(step: Step) -> list[StartNode]:
    return [a for a in step.actions if isinstance(a, StartNode)]


# -- sleep ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("duration", "ms"), [(1500, 1500), ("2s", 2000), ("1m", 60_000)])
def test_sleep_is_a_durable_timer_whose_output_is_its_input(duration: Any, ms: int) -> None:
    spec = spec_of(
        [n("start"), n("pause", "sleep", params={"duration": duration}), n("after")],
        [e("start", "pause"), e("pause", "after")],
    )
    run = Run(spec)
    step = run.ok("start", 42)
    assert starts(step) == []  # no pod for a sleep
    assert run.phase("pause") == "Sleeping"
    wake = T0 + timedelta(milliseconds=ms)
    assert run.step.status.nodes["pause"].wake_at == wake
    assert step.wake_at == wake
    # A restarted driver reads the status back: the timer is in it, nothing is forgotten.
    status = FlowStatus.model_validate(json.loads(json.dumps(step.status.to_dict())))
    fresh = Engine(spec)
    early = fresh.advance(status, [], wake - timedelta(milliseconds=1), run.outputs)
    assert early.status.nodes["pause"].phase == "Sleeping"
    assert early.wake_at == wake
    due = fresh.advance(status, [], wake, run.outputs)
    assert due.status.nodes["pause"].phase == "Succeeded"
    assert [(a.node, a.input) for a in starts(due)] == [("after", 42)]
    context = fresh.context(due.status, run.outputs)
    assert context["_outputs.pause"] == 42


def test_a_bad_sleep_duration_is_a_validation_error_naming_the_node() -> None:
    with pytest.raises(FlowValidationError, match=r"spec.nodes\[0\].params.duration.*'5 minutes'"):
        spec_of([n("pause", "SleepNode", params={"duration": "5 minutes"})])


# -- wait / resume --------------------------------------------------------------------------


def wait_spec(**extra: Any) -> FlowSpec:
    return spec_of(
        [n("submit"), n("approval", "wait"), n("approve"), n("reject")],
        [
            e("submit", "approval"),
            e("approval", "approve", action="approved"),
            e("approval", "reject", action="rejected"),
        ],
        **extra,
    )


def test_wait_makes_the_flow_awaiting_until_resumed_through_the_spec() -> None:
    run = Run(wait_spec())
    run.ok("submit", {"amount": 700})
    assert run.phase("approval") == "Awaiting"
    assert run.step.status.phase == "Awaiting"
    assert run.step.wake_at is None
    assert run.step.actions == ()
    # Resuming = the same status under a spec that carries the resume data.
    resumed = Engine(wait_spec(resume={"approval": {"output": "ok by ann", "action": "approved"}}))
    step = resumed.advance(run.step.status, [], T0, run.outputs)
    assert step.status.phase == "Running"
    assert [(a.node, a.input) for a in starts(step)] == [("approve", "ok by ann")]
    assert step.status.nodes["reject"].phase == "Skipped"
    assert resumed.context(step.status, run.outputs)["_outputs.approval"] == "ok by ann"


def test_resume_data_without_output_or_action_keys_is_the_output() -> None:
    engine = Engine(wait_spec(resume={"approval": {"approved": True}}))
    step = engine.start(T0)
    step = engine.advance(step.status, [NodeSucceeded("submit", 1, T0, output=1)], T0, {})
    assert step.status.nodes["approval"].phase == "Succeeded"
    assert engine.context(step.status, {"submit": 1})["approval"] == {"approved": True}


# -- loops ----------------------------------------------------------------------------------


def loop_spec(condition: str = "count < 3", **params: Any) -> FlowSpec:
    return spec_of(
        [
            n("init"),
            n("loop", "loop-controller", params={"condition": condition, **params}),
            n("body"),
            n("done"),
        ],
        [
            e("init", "loop"),
            e("loop", "body", action="continue", transform='context["body"]'),
            e("body", "loop"),
            e("loop", "done", action="break"),
        ],
    )


def test_a_loop_runs_its_body_while_the_condition_holds_with_iterations_named() -> None:
    run = Run(loop_spec())
    step = run.ok("init", "ready", count=0)
    # The controller ran in the engine: count < 3, so the body starts (iteration 0).
    assert [(a.node, a.iteration, a.attempt) for a in starts(step)] == [("body", 0, 1)]
    for i in range(3):
        assert run.step.status.nodes["body"].iteration == (i or None)
        step = run.ok("body", f"pass {i}", count=i + 1)
    assert [(a.node, a.iteration) for a in run.started] == [
        ("init", 0),
        ("body", 0),
        ("body", 1),
        ("body", 2),
        ("done", 0),
    ]
    run.ok("done", "fin")
    status = run.step.status
    assert status.phase == "Succeeded"
    assert status.nodes["loop"].action == "break"
    context = run.context()
    assert context["count"] == 3
    assert context["body"] == "pass 2"  # the latest iteration's output
    assert context["_outputs.loop"] is None  # flowcraft: a breaking controller outputs null
    # Earlier iterations stay in the history (bounded by maxIterations), in order.
    assert [(h.node, h.iteration) for h in status.history] == [
        ("loop", 0),
        ("body", 0),
        ("loop", 1),
        ("body", 1),
        ("loop", 2),
        ("body", 2),
    ]


def test_each_iteration_sees_the_previous_iterations_writes_and_input() -> None:
    run = Run(loop_spec())
    run.ok("init", "ready", count=0)
    run.ok("body", "b0", count=1, first="kept")
    step = run.ok("body", "b1", count=2)
    (body,) = starts(step)
    assert body.iteration == 2
    assert body.input == "b1"  # the continue edge's transform: context["body"]
    assert run.context()["first"] == "kept"


def test_restart_from_json_mid_loop_gives_the_same_next_attempt() -> None:
    spec = loop_spec()
    run = Run(spec)
    run.ok("init", "ready", count=0)
    run.ok("body", "b0", count=1)
    status = FlowStatus.model_validate(json.loads(json.dumps(run.step.status.to_dict())))
    again = Engine(spec).start_action(status, "body", run.outputs, run.writes)
    assert (again.iteration, again.attempt, again.input) == (1, 1, "b0")


def test_a_loop_that_never_stops_fails_at_max_iterations() -> None:
    run = Run(loop_spec("true", maxIterations=2))
    run.ok("init")
    run.ok("body")
    run.ok("body")
    status = run.step.status
    assert status.phase == "Failed"
    assert status.nodes["loop"].reason == "MaxIterations"
    assert "exceeded maxIterations (2)" in (status.nodes["loop"].message or "")


def test_a_loop_that_breaks_at_once_skips_its_body() -> None:
    run = Run(loop_spec("count < 0"))
    run.ok("init", count=5)
    assert run.phase("body") == "Pending"  # the controller could still continue later
    run.ok("done")
    assert run.step.status.phase == "Succeeded"
    assert run.phase("body") == "Skipped"
    assert run.step.status.nodes["body"].reason == "NotReached"


def test_a_failed_body_attempt_retries_within_its_iteration() -> None:
    spec = spec_of(
        [
            n("loop", "loop-controller", params={"condition": "!context.stop"}),
            n("body", config={"maxRetries": 2}),
            n("done"),
        ],
        [
            e("loop", "body", action="continue"),
            e("body", "loop"),
            e("loop", "done", action="break"),
        ],
    )
    run = Run(spec)
    run.ok("body", stop=False)
    ns = run.step.status.nodes["body"]
    run.advance(NodeFailed("body", ns.attempts, T0, "flaky", iteration=1))
    assert [(a.iteration, a.attempt) for a in run.started if a.node == "body"] == [
        (0, 1),
        (1, 1),
        (1, 2),
    ]
    # A stale event from the first iteration is ignored.
    run.advance(NodeSucceeded("body", 1, T0, output="stale", iteration=0))
    assert run.phase("body") == "Running"
    run.ok("body", stop=True)
    run.ok("done")
    assert run.step.status.phase == "Succeeded"


def test_a_loop_without_a_break_edge_reruns_its_body_until_the_bound_as_in_flowcraft() -> None:
    # flowcraft starts the unconditional successors of a node that routed nowhere: a
    # controller that breaks with no break edge re-runs its body (flowcraft ends with
    # "Traversal exceeded maximum iterations"); here the loop's bound ends it.
    spec = spec_of(
        [n("loop", "loop-controller", params={"condition": "false", "maxIterations": 3}), n("b")],
        [e("loop", "b", action="continue"), e("b", "loop")],
    )
    run = Run(spec)
    while run.step.status.phase == "Running":
        run.ok("b")
    assert run.step.status.phase == "Failed"
    assert run.step.status.nodes["loop"].reason == "MaxIterations"
    assert [a.iteration for a in run.started] == [0, 1, 2, 3]


def test_a_node_waiting_on_a_loop_that_never_ran_does_not_run_as_in_flowcraft() -> None:
    # flowcraft's `all` join needs every predecessor; the controller never runs, so neither
    # does `work` — the flow still completes.
    spec = spec_of(
        [n("setup"), n("work"), n("loop", "loop-controller", params={"condition": "true"})],
        [e("setup", "work"), e("work", "loop"), e("loop", "work", action="continue")],
    )
    run = Run(spec)
    run.ok("setup", "ready")
    assert run.step.status.phase == "Succeeded"
    assert run.phase("work") == "Skipped"
    assert run.step.status.nodes["work"].reason == "NotReached"


def test_cycles_outside_loops_are_still_rejected_with_their_path() -> None:
    with pytest.raises(FlowValidationError, match="cycle: a -> b -> a"):
        spec_of([n("a"), n("b")], [e("a", "b"), e("b", "a")])
