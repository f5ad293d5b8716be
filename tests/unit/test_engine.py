"""Engine transitions, driven directly with events (no driver, no clock)."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flowcraft.engine import (
    CancelFlow,
    CancelNode,
    Engine,
    EngineError,
    Event,
    MissingOutputError,
    NodeFailed,
    NodeStarted,
    NodeSucceeded,
    StartNode,
    Step,
)
from flowcraft.model import FlowSpec, FlowStatus, parse_flow

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def ms(value: float) -> datetime:
    return T0 + timedelta(milliseconds=value)


def node(node_id: str, **config: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"id": node_id, "uses": "task"}
    inputs = config.pop("inputs", None)
    if inputs is not None:
        data["inputs"] = inputs
    if config:
        data["config"] = config
    return data


def edge(source: str, target: str, **extra: Any) -> dict[str, Any]:
    return {"source": source, "target": target, **extra}


def make_spec(
    nodes: list[dict[str, Any]], edges: list[dict[str, Any]] | None = None, **spec: Any
) -> FlowSpec:
    data = {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": "t"},
        "spec": {
            "nodes": nodes,
            "edges": edges or [],
            "functions": {"task": {"script": "def run(ctx): return 1"}},
            **spec,
        },
    }
    return parse_flow(data).spec


def chain(*ids: str) -> list[dict[str, Any]]:
    return [edge(a, b) for a, b in itertools.pairwise(ids)]


class Run:
    """A minimal driver: keeps the status and outputs, feeds events, records actions."""

    def __init__(self, spec: FlowSpec, now: datetime = T0) -> None:
        self.engine = Engine(spec)
        self.outputs: dict[str, Any] = {}
        self.step = self.engine.start(now)

    @property
    def status(self) -> FlowStatus:
        return self.step.status

    def phase(self, node_id: str) -> str:
        return self.status.nodes[node_id].phase

    def attempt(self, node_id: str) -> int:
        return self.status.nodes[node_id].attempts

    def advance(self, *events: Event, now: datetime = T0) -> Step:
        for event in events:
            if isinstance(event, NodeSucceeded):
                self.outputs.setdefault(event.node, event.output)
        self.step = self.engine.advance(self.status, list(events), now, self.outputs)
        return self.step

    def ok(
        self, node_id: str, output: Any = None, action: str | None = None, now: datetime = T0
    ) -> Step:
        event = NodeSucceeded(node_id, self.attempt(node_id), now, output=output, action=action)
        return self.advance(event, now=now)

    def fail(
        self, node_id: str, message: str = "boom", now: datetime = T0, timed_out: bool = False
    ) -> Step:
        event = NodeFailed(node_id, self.attempt(node_id), now, message, timed_out=timed_out)
        return self.advance(event, now=now)


def starts(step: Step) -> dict[str, Any]:
    """node -> input of the StartNode actions in a step."""
    return {a.node: a.input for a in step.actions if isinstance(a, StartNode)}


def cancels(step: Step) -> list[str]:
    return [a.node for a in step.actions if isinstance(a, CancelNode)]


# -- start and plain progress ---------------------------------------------------------------


def test_start_starts_every_root_at_once() -> None:
    spec = make_spec([node("a"), node("b"), node("c")], [edge("a", "c"), edge("b", "c")])
    run = Run(spec)
    assert run.status.phase == "Running"
    assert run.status.started_at == T0
    assert starts(run.step) == {"a": None, "b": None}
    assert run.phase("a") == "Running"
    assert run.attempt("a") == 1
    assert run.phase("c") == "Pending"
    assert run.step.wake_at is None


def test_linear_flow_succeeds_and_builds_context() -> None:
    run = Run(make_spec([node("a"), node("b")], chain("a", "b")))
    assert starts(run.ok("a", {"x": 1}, now=ms(5))) == {"b": {"x": 1}}
    step = run.ok("b", "done", now=ms(9))
    assert step.actions == ()
    assert run.status.phase == "Succeeded"
    assert run.status.finished_at == ms(9)
    assert run.status.nodes["a"].finished_at == ms(5)
    assert run.engine.context(run.status, run.outputs) == {
        "_outputs.a": {"x": 1},
        "a": {"x": 1},
        "_outputs.b": "done",
        "b": "done",
        "_inputs.b": {"x": 1},
    }


def test_join_all_waits_for_every_predecessor_and_gets_the_last_arrival() -> None:
    # flowcraft: each taken edge sets `_inputs.<target>`; the last one to arrive wins.
    spec = make_spec(
        [node("s"), node("b"), node("c"), node("d")],
        [edge("s", "b"), edge("s", "c"), edge("b", "d"), edge("c", "d")],
    )
    run = Run(spec)
    assert set(starts(run.ok("s", 0))) == {"b", "c"}
    assert starts(run.ok("c", "C")) == {}
    assert run.phase("d") == "Pending"
    assert starts(run.ok("b", "B")) == {"d": "B"}
    assert run.engine.context(run.status, run.outputs)["_inputs.d"] == "B"


def test_newly_ready_nodes_start_in_the_same_step_in_one_batch() -> None:
    spec = make_spec(
        [node("a"), node("b"), node("x"), node("y")],
        [edge("a", "x"), edge("b", "y")],
    )
    run = Run(spec)
    step = run.advance(NodeSucceeded("a", 1, T0, output=1), NodeSucceeded("b", 1, T0, output=2))
    assert starts(step) == {"x": 1, "y": 2}


# -- routing --------------------------------------------------------------------------------


def routing_spec() -> FlowSpec:
    return make_spec(
        [node("a"), node("yes"), node("no"), node("default")],
        [
            edge("a", "yes", action="approve"),
            edge("a", "no", action="reject"),
            edge("a", "default"),
        ],
    )


def test_action_selects_its_edges_and_the_rest_are_skipped() -> None:
    run = Run(routing_spec())
    step = run.ok("a", 1, action="approve")
    assert starts(step) == {"yes": 1}
    assert run.phase("no") == "Skipped"
    assert run.status.nodes["no"].reason == "NotRouted"
    assert run.phase("default") == "Skipped"
    assert run.status.nodes["a"].taken_edges == [0]
    run.ok("yes")
    assert run.status.phase == "Succeeded"


def test_no_action_takes_the_edges_without_action() -> None:
    run = Run(routing_spec())
    assert starts(run.ok("a", 1)) == {"default": 1}
    assert run.phase("yes") == "Skipped"
    assert run.phase("no") == "Skipped"


def test_unknown_action_falls_back_to_edges_without_action() -> None:
    run = Run(routing_spec())
    assert starts(run.ok("a", 1, action="shrug")) == {"default": 1}


def test_condition_filters_edges() -> None:
    spec = make_spec(
        [node("a"), node("big"), node("small")],
        [
            edge("a", "big", condition="result.output.n > 10"),
            edge("a", "small", condition="result.output.n <= 10"),
        ],
    )
    run = Run(spec)
    assert starts(run.ok("a", {"n": 3})) == {"small": {"n": 3}}
    assert run.phase("big") == "Skipped"


def test_condition_sees_context_keys_bare_and_through_context() -> None:
    spec = make_spec(
        [node("a"), node("b"), node("c")],
        [
            edge("a", "b"),
            edge(
                "b",
                "c",
                condition='context["_outputs.a"] === 7 && context.a === 7 && a === 7 '
                '&& result.output === "anything"',
            ),
        ],
    )
    run = Run(spec)
    run.ok("a", 7)
    assert starts(run.ok("b", "anything")) == {"c": "anything"}


def test_condition_on_action_edges_failing_falls_back_to_defaults() -> None:
    spec = make_spec(
        [node("a"), node("special"), node("normal")],
        [
            edge("a", "special", action="go", condition="result.output > 5"),
            edge("a", "normal"),
        ],
    )
    run = Run(spec)
    assert starts(run.ok("a", 1, action="go")) == {"normal": 1}


def test_transform_computes_the_target_input() -> None:
    spec = make_spec(
        [node("a"), node("b"), node("c")],
        [
            edge("a", "b"),
            # flowcraft: `input` is the source's output, `context` the flow's context.
            edge("b", "c", transform='{"doubled": input * 2, "a": context.a}'),
        ],
    )
    run = Run(spec)
    run.ok("a", 5)
    assert starts(run.ok("b", 21)) == {"c": {"doubled": 42, "a": 5}}


def test_condition_error_fails_the_node_with_the_expression() -> None:
    spec = make_spec(
        [node("a"), node("b")],
        [edge("a", "b", condition="result.output.missing")],
        expressionLanguage="cel",
    )
    run = Run(spec)
    run.advance(NodeSucceeded("a", 1, T0, output={}, output_ref="cm/a"))
    status = run.status
    assert status.nodes["a"].output_ref is None
    assert run.engine.context(status, run.outputs) == {}
    assert status.nodes["a"].phase == "Failed"
    assert status.nodes["a"].reason == "RoutingError"
    assert status.nodes["a"].message == (
        "condition of edge a -> b: evaluation failed: no such key: missing "
        "in expression 'result.output.missing'"
    )
    assert status.phase == "Failed"
    assert "node 'a'" in status.errors[0]


def test_condition_must_be_boolean() -> None:
    spec = make_spec(
        [node("a"), node("b")],
        [edge("a", "b", condition="result.output")],
        expressionLanguage="cel",
    )
    run = Run(spec)
    run.ok("a", 3)
    assert run.status.nodes["a"].reason == "RoutingError"
    assert "must be true or false" in (run.status.nodes["a"].message or "")


def test_transform_error_fails_the_source() -> None:
    spec = make_spec(
        [node("a"), node("b")], [edge("a", "b", transform="input + 1")], expressionLanguage="cel"
    )
    run = Run(spec)
    run.ok("a", "text")
    assert run.status.nodes["a"].reason == "RoutingError"
    assert "transform of edge a -> b" in (run.status.nodes["a"].message or "")
    assert run.phase("b") == "Cancelled"


# -- joins and skipping ---------------------------------------------------------------------


def test_join_any_starts_on_first_arrival_and_runs_once() -> None:
    spec = make_spec(
        [node("a"), node("b"), node("c", joinStrategy="any")],
        [edge("a", "c"), edge("b", "c")],
    )
    run = Run(spec)
    assert starts(run.ok("b", "B")) == {"c": "B"}
    assert starts(run.ok("a", "A")) == {}
    assert run.attempt("c") == 1
    run.ok("c")
    assert run.status.phase == "Succeeded"
    # The restart view gives the input of the first arrival, not both.
    # The node ran once with the first arrival's value; flowcraft still records the later
    # arrival in `_inputs.c`.
    assert run.engine.context(run.status, run.outputs)["_inputs.c"] == "A"


def test_join_any_with_every_edge_dead_is_skipped() -> None:
    spec = make_spec(
        [node("a"), node("b"), node("c", joinStrategy="any")],
        [edge("a", "c", condition="false"), edge("b", "c", condition="false")],
    )
    run = Run(spec)
    run.ok("a")
    assert run.phase("c") == "Pending"
    run.ok("b")
    assert run.phase("c") == "Skipped"
    assert run.status.phase == "Succeeded"


def test_join_all_runs_with_the_taken_edge_when_another_is_dead() -> None:
    spec = make_spec(
        [node("a"), node("b"), node("c")],
        [edge("a", "c", condition="false"), edge("b", "c")],
    )
    run = Run(spec)
    run.ok("a", "A")
    assert starts(run.ok("b", "B")) == {"c": "B"}


def test_skipping_propagates_so_joins_never_hang() -> None:
    spec = make_spec(
        [node("a"), node("b"), node("c"), node("d"), node("e")],
        [
            edge("a", "b", condition="false"),
            edge("b", "c"),
            edge("c", "d"),
            edge("a", "e"),
            edge("e", "d"),
        ],
    )
    run = Run(spec)
    step = run.ok("a", 1)
    assert starts(step) == {"e": 1}
    assert run.phase("b") == "Skipped"
    assert run.phase("c") == "Skipped"
    assert run.phase("d") == "Pending"
    assert starts(run.ok("e", 2)) == {"d": 2}
    run.ok("d")
    assert run.status.phase == "Succeeded"


def test_everything_skipped_downstream_still_succeeds() -> None:
    spec = make_spec(
        [node("a"), node("b"), node("c")],
        [edge("a", "b", condition="false"), *chain("b", "c")],
    )
    run = Run(spec)
    step = run.ok("a")
    assert step.actions == ()
    assert run.status.phase == "Succeeded"
    assert [run.phase(n) for n in "bc"] == ["Skipped", "Skipped"]


def test_a_node_that_routes_nowhere_triggers_unconditional_successors_as_flowcraft() -> None:
    # flowcraft: no action edge matched and no default edge -> successors whose incoming
    # edges carry no condition still start, without an input from this node.
    spec = make_spec(
        [node("a"), node("b"), node("c")],
        [edge("a", "b", action="x", transform="input"), edge("a", "c", condition="false")],
    )
    run = Run(spec)
    step = run.ok("a", "A", action="y")
    assert starts(step) == {"b": None}
    assert run.phase("c") == "Skipped"  # a conditional edge into c: never triggered
    assert "_inputs.b" not in run.engine.context(run.status, run.outputs)


# -- inputs selectors -----------------------------------------------------------------------


def test_inputs_selects_from_context_with_flowcraft_rules() -> None:
    spec = make_spec(
        [
            node("a"),
            node("b"),
            node("pick", inputs="a"),
            node("many", inputs={"first": "a", "raw": "_outputs.b", "none": "ghost"}),
        ],
        [edge("a", "pick"), edge("b", "pick"), edge("a", "many"), edge("b", "many")],
    )
    run = Run(spec)
    run.ok("a", {"v": 1})
    step = run.ok("b", [2])
    assert starts(step) == {
        "pick": {"v": 1},
        "many": {"first": {"v": 1}, "raw": [2], "none": None},
    }


# -- retries, timeouts ----------------------------------------------------------------------


def test_retries_use_exponential_backoff_from_now() -> None:
    run = Run(make_spec([node("a", maxRetries=3, retryDelay=100)]))
    step = run.fail("a", "first", now=ms(10))
    assert step.actions == ()
    ns = run.status.nodes["a"]
    assert ns.phase == "Retrying"
    assert ns.retry_at == ms(110)
    assert ns.message == "attempt 1 failed: first"
    assert step.wake_at == ms(110)

    assert run.advance(now=ms(109)).actions == ()
    step = run.advance(now=ms(110))
    assert step.actions == (StartNode("a", 2, None, None),)

    step = run.fail("a", "second", now=ms(200))
    assert run.status.nodes["a"].retry_at == ms(400)
    assert step.wake_at == ms(400)
    assert run.advance(now=ms(400)).actions == (StartNode("a", 3, None, None),)

    step = run.fail("a", "third", now=ms(450))
    assert run.phase("a") == "Failed"
    assert run.status.phase == "Failed"
    assert run.status.errors == ["node 'a' failed after 3 attempts: third"]
    assert step.wake_at is None


def test_retry_without_delay_restarts_in_the_same_step_with_the_same_input() -> None:
    run = Run(make_spec([node("a"), node("b", maxRetries=2)], chain("a", "b")))
    run.ok("a", {"in": 1})
    step = run.fail("b")
    assert step.actions == (StartNode("b", 2, {"in": 1}, None),)
    run.ok("b")
    assert run.status.phase == "Succeeded"


def test_timeout_is_passed_to_the_driver_and_counts_as_a_failed_attempt() -> None:
    run = Run(make_spec([node("a", timeout=1500, maxRetries=2)]))
    assert run.step.actions == (StartNode("a", 1, None, 1.5),)
    step = run.fail("a", "timed out after 1.5s", timed_out=True)
    assert run.status.nodes["a"].reason == "Timeout"
    assert step.actions == (StartNode("a", 2, None, 1.5),)
    run.fail("a", "timed out after 1.5s", timed_out=True)
    assert run.status.phase == "Failed"
    assert "timed out" in run.status.errors[0]


# -- fallback -------------------------------------------------------------------------------


def fallback_spec(**extra: Any) -> FlowSpec:
    return make_spec(
        [node("a"), node("b", fallback="f", **extra), node("f"), node("c"), node("d")],
        [edge("a", "b"), edge("b", "c", action="ok"), edge("b", "d", action="bad")],
    )


def test_fallback_only_node_does_not_start_as_a_root() -> None:
    run = Run(fallback_spec())
    assert starts(run.step) == {"a": None}
    assert run.phase("f") == "Pending"


def test_fallback_runs_as_a_root_and_inherits_edges() -> None:
    run = Run(fallback_spec())
    run.ok("a", "in")
    step = run.fail("b", "broken")
    assert starts(step) == {"f": None}  # flowcraft: nothing sets a fallback's `_inputs`
    assert run.phase("b") == "Failed"
    assert run.status.errors == []
    step = run.ok("f", "rescued", action="bad")
    assert starts(step) == {"d": "rescued"}
    assert run.phase("c") == "Skipped"
    assert run.status.nodes["b"].reason == "Recovered"
    run.ok("d")
    assert run.status.phase == "Succeeded"
    context = run.engine.context(run.status, run.outputs)
    assert context["b"] is None  # flowcraft records the recovered node's output as null
    assert context["_outputs.b"] is None
    assert context["_outputs.f"] == "rescued"
    assert context["_inputs.d"] == "rescued"
    assert "_inputs.f" not in context


def test_fallback_is_skipped_when_not_needed() -> None:
    run = Run(fallback_spec())
    run.ok("a")
    run.ok("b", action="ok")
    assert run.phase("f") == "Skipped"
    assert run.status.nodes["f"].reason == "FallbackNotNeeded"
    run.ok("c")
    assert run.status.phase == "Succeeded"


def test_fallback_after_retries() -> None:
    run = Run(fallback_spec(maxRetries=2, retryDelay=50))
    run.ok("a")
    run.fail("b", now=ms(0))
    assert run.phase("f") == "Pending"
    run.advance(now=ms(50))
    assert starts(run.fail("b", now=ms(60))) == {"f": None}


def test_failing_fallback_fails_the_flow_naming_both() -> None:
    run = Run(fallback_spec())
    run.ok("a")
    run.fail("b", "first")
    run.fail("f", "second")
    assert run.status.phase == "Failed"
    assert run.status.errors == [
        "node 'b' failed and its fallback 'f' failed after 1 attempt: second"
    ]


def test_fallback_chain() -> None:
    spec = make_spec(
        [node("a", fallback="f1"), node("f1", fallback="f2"), node("f2"), node("z")],
        [edge("a", "z")],
    )
    run = Run(spec)
    run.fail("a")
    run.fail("f1")
    assert starts(run.ok("f2", "last")) == {"z": "last"}
    assert run.status.nodes["a"].reason == "Recovered"
    assert run.status.nodes["f1"].reason == "Recovered"


# -- failFast -------------------------------------------------------------------------------


def two_branches(**spec: Any) -> FlowSpec:
    return make_spec(
        [node("x"), node("x2"), node("y"), node("y2"), node("z")],
        [edge("x", "x2"), edge("y", "y2"), edge("x2", "z"), edge("y2", "z")],
        **spec,
    )


def test_fail_fast_cancels_running_nodes_and_fails_the_flow() -> None:
    run = Run(two_branches())
    step = run.fail("x", "bad input", now=ms(3))
    assert cancels(step) == ["y"]
    assert starts(step) == {}
    assert run.status.phase == "Failed"
    assert run.status.finished_at == ms(3)
    assert run.status.errors == ["node 'x' failed after 1 attempt: bad input"]
    assert run.phase("y") == "Cancelled"
    assert run.status.nodes["y"].reason == "FlowFailed"
    assert run.phase("z") == "Cancelled"
    # The cancelled node's late report changes nothing.
    late = run.advance(NodeSucceeded("y", 1, ms(4), output=1))
    assert late.actions == ()
    assert run.status.phase == "Failed"


def test_without_fail_fast_independent_branches_finish() -> None:
    run = Run(two_branches(failFast=False))
    step = run.fail("x", "bad")
    assert step.actions == ()
    assert run.phase("x2") == "Skipped"
    assert run.status.nodes["x2"].reason == "UpstreamFailed"
    assert run.phase("z") == "Skipped"
    assert run.status.phase == "Running"
    assert starts(run.ok("y", 1)) == {"y2": 1}
    run.ok("y2")
    assert run.status.phase == "Failed"
    assert run.status.errors == ["node 'x' failed after 1 attempt: bad"]
    assert run.phase("y2") == "Succeeded"


def test_without_fail_fast_any_join_treats_failure_as_dead() -> None:
    spec = make_spec(
        [node("x"), node("y"), node("z", joinStrategy="any")],
        [edge("x", "z"), edge("y", "z")],
        failFast=False,
    )
    run = Run(spec)
    run.fail("x")
    assert starts(run.ok("y", 2)) == {"z": 2}


# -- parallelism, suspend, deadline, cancel -------------------------------------------------


def test_parallelism_limits_running_nodes_and_starts_in_spec_order() -> None:
    spec = make_spec([node(n) for n in "abcde"], parallelism=2)
    run = Run(spec)
    assert list(starts(run.step)) == ["a", "b"]
    assert run.status.queue == ["c", "d", "e"]
    assert list(starts(run.ok("b"))) == ["c"]
    assert run.status.queue == ["d", "e"]
    step = run.advance(NodeSucceeded("a", 1, T0), NodeSucceeded("c", 1, T0))
    assert list(starts(step)) == ["d", "e"]
    run.advance(NodeSucceeded("d", 1, T0), NodeSucceeded("e", 1, T0))
    assert run.status.phase == "Succeeded"


def test_parallelism_also_gates_retries() -> None:
    spec = make_spec([node("a", maxRetries=2, retryDelay=10), node("b")], parallelism=1)
    run = Run(spec)
    assert run.status.queue == ["b"]
    step = run.fail("a", now=ms(0))
    assert starts(step) == {"b": None}
    step = run.advance(now=ms(10))
    assert step.actions == ()
    assert run.status.queue == ["a"]
    assert run.phase("a") == "Retrying"
    step = run.ok("b", now=ms(20))
    assert step.actions == (StartNode("a", 2, None, None),)


def test_suspend_starts_nothing_new() -> None:
    run = Run(make_spec([node("a")], suspend=True))
    assert run.step.actions == ()
    assert run.status.phase == "Running"
    assert run.status.queue == ["a"]
    resumed = Engine(make_spec([node("a")]))
    step = resumed.advance(run.status, [], T0, {})
    assert starts(step) == {"a": None}


def test_deadline_cancels_running_nodes_and_fails() -> None:
    run = Run(make_spec([node("a"), node("b")], chain("a", "b"), activeDeadlineSeconds=10))
    assert run.step.wake_at == T0 + timedelta(seconds=10)
    assert run.advance(now=ms(9999)).actions == ()
    step = run.advance(now=ms(10_000))
    assert step.actions == (CancelNode("a", 1, "activeDeadlineSeconds (10s) exceeded"),)
    assert run.status.phase == "Failed"
    assert run.status.errors == ["flow activeDeadlineSeconds (10s) exceeded"]
    assert run.status.nodes["b"].reason == "DeadlineExceeded"
    assert step.wake_at is None


def test_deadline_wake_competes_with_retry_wake() -> None:
    spec = make_spec([node("a", maxRetries=2, retryDelay=5000)], activeDeadlineSeconds=3)
    run = Run(spec)
    step = run.fail("a", now=ms(1))
    assert step.wake_at == T0 + timedelta(seconds=3)


def test_cancel_flow() -> None:
    run = Run(make_spec([node("a"), node("b", maxRetries=2, retryDelay=1000), node("c")]))
    run.fail("b")
    step = run.advance(CancelFlow("user asked"), now=ms(7))
    assert cancels(step) == ["a", "c"]
    assert run.status.phase == "Cancelled"
    assert run.status.message == "cancelled: user asked"
    assert run.status.finished_at == ms(7)
    assert {run.phase(n) for n in "abc"} == {"Cancelled"}
    assert run.advance(CancelFlow("again")).actions == ()
    assert run.status.finished_at == ms(7)


# -- idempotence, purity, resume ------------------------------------------------------------


def test_duplicate_and_stale_events_are_ignored() -> None:
    run = Run(make_spec([node("a", maxRetries=3), node("b")], chain("a", "b")))
    run.fail("a")  # attempt 2 now running
    before = run.status
    for event in (
        NodeFailed("a", 1, T0, "late report of attempt 1"),
        NodeSucceeded("a", 1, T0, output="stale"),
        NodeSucceeded("b", 1, T0, output="not running"),
        NodeSucceeded("ghost", 1, T0),
        NodeStarted("a", 2, T0),
    ):
        step = run.advance(event)
        assert step.actions == ()
        assert run.status == before
    run.ok("a", "fresh")
    again = run.advance(NodeSucceeded("a", 2, T0, output="fresh"))
    assert again.actions == ()
    assert run.attempt("b") == 1


def test_advance_never_mutates_the_status_passed_in() -> None:
    run = Run(fallback_spec())
    snapshot = run.status
    frozen = copy.deepcopy(snapshot)
    run.engine.advance(snapshot, [NodeSucceeded("a", 1, T0, output=1)], T0, {})
    assert snapshot == frozen
    step = run.engine.advance(snapshot, [CancelFlow("x")], T0, {})
    assert snapshot == frozen
    assert step.status is not snapshot


def test_same_snapshot_and_events_give_the_same_step() -> None:
    spec = make_spec([node("a"), node("b"), node("c")], chain("a", "b"), parallelism=1)
    run = Run(spec)
    snapshot = run.status
    event = NodeSucceeded("a", 1, T0, output=1)
    first = run.engine.advance(snapshot, [event], T0, {})
    later = run.engine.advance(first.status, [NodeSucceeded("b", 1, T0)], T0, {"a": 1})
    again = run.engine.advance(snapshot, [event], T0, {})
    assert again == first
    assert later.status.nodes["c"].phase == "Running"
    reloaded = FlowStatus.model_validate(json.loads(json.dumps(snapshot.to_dict())))
    assert run.engine.advance(reloaded, [event], T0, {}).actions == first.actions


def test_resume_from_a_json_snapshot_mid_flow() -> None:
    spec = make_spec(
        [node("a"), node("b"), node("c"), node("d")],
        [
            edge("a", "b", transform='{"from_a": input}'),
            edge("a", "c"),
            edge("b", "d"),
            edge("c", "d"),
        ],
    )
    run = Run(spec)
    issued = run.ok("a", 10)
    text = json.dumps(run.status.to_dict())

    # A new driver process: new Engine, snapshot from JSON, outputs from its store.
    engine = Engine(spec)
    status = FlowStatus.model_validate(json.loads(text))
    outputs = {"a": 10}
    assert engine.running(status) == [("b", 1), ("c", 1)]
    recomputed = {n: engine.start_action(status, n, outputs) for n, _ in engine.running(status)}
    assert {n: a.input for n, a in recomputed.items()} == starts(issued)
    assert recomputed["b"] == StartNode("b", 1, {"from_a": 10}, None)

    step = engine.advance(status, [NodeSucceeded("b", 1, T0, output="B")], T0, outputs)
    outputs["b"] = "B"
    step = engine.advance(step.status, [NodeSucceeded("c", 1, T0, output="C")], T0, outputs)
    assert starts(step) == {"d": "C"}


def test_any_join_input_is_stable_across_restart() -> None:
    spec = make_spec(
        [node("a"), node("b"), node("c", joinStrategy="any")],
        [edge("a", "c"), edge("b", "c")],
    )
    run = Run(spec)
    run.ok("a", "A")
    run.ok("b", "B")  # arrives after c started: not part of c's input
    assert run.engine.start_action(run.status, "c", run.outputs).input == "A"


def test_start_action_rejects_a_node_that_is_not_running() -> None:
    run = Run(make_spec([node("a"), node("b")], chain("a", "b")))
    with pytest.raises(EngineError, match="'b' is not running"):
        run.engine.start_action(run.status, "b", {})


def test_missing_output_is_a_clear_error() -> None:
    run = Run(make_spec([node("a"), node("b"), node("c")], [*chain("a", "b"), edge("a", "c")]))
    step = run.engine.advance(run.status, [NodeSucceeded("a", 1, T0, output=1)], T0, {})
    with pytest.raises(MissingOutputError, match="output of node 'a'"):
        run.engine.start_action(step.status, "b", {})


def test_naive_now_is_rejected() -> None:
    engine = Engine(make_spec([node("a")]))
    with pytest.raises(EngineError, match="timezone-aware"):
        engine.start(datetime(2024, 1, 1))


def test_terminal_flow_ignores_everything() -> None:
    run = Run(make_spec([node("a")]))
    run.ok("a")
    done = run.status
    step = run.advance(NodeFailed("a", 1, T0, "late"), CancelFlow("late"), now=ms(99))
    assert step.status is done
    assert step.actions == ()


def test_pending_status_is_started_by_advance() -> None:
    engine = Engine(make_spec([node("a")]))
    step = engine.advance(FlowStatus(), [], T0, {})
    assert starts(step) == {"a": None}
    assert step.status.phase == "Running"


def test_routing_is_recorded_not_reevaluated() -> None:
    spec = make_spec(
        [node("a"), node("b"), node("c")],
        [edge("a", "b", condition="result.output > 1"), edge("a", "c")],
    )
    run = Run(spec)
    run.ok("a", 5)
    # Outputs seen later by the engine cannot change a decision already taken.
    step = run.engine.advance(run.status, [NodeSucceeded("b", 1, T0)], T0, {"a": 0})
    assert step.status.nodes["a"].taken_edges == [0, 1]
    assert step.status.nodes["b"].phase == "Succeeded"


def test_status_from_another_spec_is_rejected_clearly() -> None:
    run = Run(make_spec([node("a"), node("b")]))
    other = Engine(make_spec([node("a"), node("c")]))
    with pytest.raises(EngineError, match=r"missing nodes \['c'\], unknown nodes \['b'\]"):
        other.advance(run.status, [], T0, {})
