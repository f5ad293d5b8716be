"""The flow's shared context in the engine: initial context, node writes, flowcraft's inputs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from flowcraft.engine import Engine, MissingOutputError, NodeFailed, NodeSucceeded, StartNode, Step
from flowcraft.model import FlowSpec, FlowStatus, parse_flow

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


def n(node_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": node_id, "uses": "task", **fields}


def e(source: str, target: str, **fields: Any) -> dict[str, Any]:
    return {"source": source, "target": target, **fields}


def sets(**values: Any) -> tuple[dict[str, Any], ...]:
    return tuple({"op": "set", "key": k, "value": v} for k, v in values.items())


class Run:
    """Drive an engine and keep outputs and writes the way a driver stores them."""

    def __init__(self, spec: FlowSpec) -> None:
        self.engine = Engine(spec)
        self.outputs: dict[str, Any] = {}
        self.writes: dict[str, Any] = {}
        self.step = self.engine.start(T0)

    def ok(self, node: str, output: Any = None, writes: tuple[dict[str, Any], ...] = ()) -> Step:
        attempt = self.step.status.nodes[node].attempts
        self.outputs[node] = output
        if writes:
            self.writes[node] = writes
        event = NodeSucceeded(node, attempt, T0, output=output, writes=writes)
        self.step = self.engine.advance(self.step.status, [event], T0, self.outputs, self.writes)
        return self.step

    def fail(self, node: str) -> Step:
        attempt = self.step.status.nodes[node].attempts
        event = NodeFailed(node, attempt, T0, "boom")
        self.step = self.engine.advance(self.step.status, [event], T0, self.outputs, self.writes)
        return self.step

    def context(self) -> dict[str, Any]:
        return self.engine.context(self.step.status, self.outputs, self.writes)


def starts(step: Step) -> dict[str, Any]:
    return {a.node: a.input for a in step.actions if isinstance(a, StartNode)}


def test_initial_context_is_visible_to_inputs_and_in_the_final_context() -> None:
    spec = spec_of(
        [n("fetchOrder", inputs="orderId"), n("ship", inputs={"id": "orderId", "o": "fetchOrder"})],
        [e("fetchOrder", "ship")],
        context={"orderId": 7, "_inputs.fetchOrder": "ignored: explicit inputs win"},
    )
    run = Run(spec)
    assert starts(run.step) == {"fetchOrder": 7}
    assert starts(run.ok("fetchOrder", {"total": 3})) == {"ship": {"id": 7, "o": {"total": 3}}}
    run.ok("ship", "shipped")
    context = run.context()
    assert context["orderId"] == 7
    assert context["_outputs.ship"] == "shipped"


def test_a_root_reads_its_input_from_the_initial_context() -> None:
    spec = spec_of([n("start")], context={"_inputs.start": [1, 2]})
    assert starts(Run(spec).step) == {"start": [1, 2]}


def test_writes_are_visible_downstream_and_in_the_final_context() -> None:
    spec = spec_of([n("a"), n("b", inputs="user")], [e("a", "b")])
    run = Run(spec)
    # `inputs` naming a key a node wrote reads that key (no `_outputs.user` exists).
    assert starts(run.ok("a", "A", sets(user={"name": "ada"}))) == {"b": {"name": "ada"}}
    run.ok("b", None, ({"op": "delete", "key": "user"},))
    context = run.context()
    assert "user" not in context
    assert run.step.status.nodes["a"].writes == 1


def test_parallel_writers_apply_in_completion_order() -> None:
    spec = spec_of(
        [n("s"), n("x"), n("y"), n("join")],
        [e("s", "x"), e("s", "y"), e("x", "join"), e("y", "join")],
    )
    run = Run(spec)
    run.ok("s")
    run.ok("y", "Y", sets(winner="y", onlyY=1))
    run.ok("x", "X", sets(winner="x"))
    assert run.context()["winner"] == "x"
    assert run.context()["onlyY"] == 1
    # Same events, other order: the other writer wins.
    run2 = Run(spec)
    run2.ok("s")
    run2.ok("x", "X", sets(winner="x"))
    run2.ok("y", "Y", sets(winner="y"))
    assert run2.context()["winner"] == "y"


def test_a_retried_node_contributes_only_the_succeeding_attempts_writes() -> None:
    spec = spec_of([n("a", config={"maxRetries": 2}), n("b")], [e("a", "b")])
    run = Run(spec)
    run.fail("a")  # drivers never report a failed attempt's writes
    assert run.step.status.nodes["a"].attempts == 2
    run.ok("a", "A", sets(second=2))
    assert run.context()["second"] == 2
    assert run.step.status.nodes["a"].writes == 1


def test_context_and_inputs_survive_a_restart_from_json() -> None:
    spec = spec_of([n("a"), n("b", inputs="k"), n("c")], [e("a", "b"), e("a", "c")])
    run = Run(spec)
    run.ok("a", "A", sets(k="from-a"))
    text = json.dumps(run.step.status.to_dict())
    engine = Engine(spec)
    status = FlowStatus.model_validate(json.loads(text))
    assert engine.start_action(status, "b", {"a": "A"}, {"a": sets(k="from-a")}).input == "from-a"
    # The status says `a` wrote: a driver that forgot its writes gets a clear error.
    with pytest.raises(MissingOutputError):
        engine.start_action(status, "b", {"a": "A"}, {})


def test_transform_input_comes_from_the_targets_inputs_node_when_it_has_an_output() -> None:
    # flowcraft feeds a transform the output named by the target's `inputs` (a node id)
    # instead of the source's output, when that node has completed.
    spec = spec_of(
        [n("seed"), n("a"), n("b", inputs="seed"), n("c", inputs="plain")],
        [e("a", "b", transform="input + 1"), e("a", "c", transform="input + 1")],
        context={"plain": 5},
    )
    run = Run(spec)
    run.ok("seed", 41)
    # `plain` is a context key, not a node output: the source's output is used.
    assert starts(run.ok("a", 100)) == {"b": 42, "c": 101}


def test_a_routing_failure_discards_the_nodes_writes() -> None:
    spec = spec_of(
        [n("a"), n("b")], [e("a", "b", condition="result.output.x")], expressionLanguage="cel"
    )
    run = Run(spec)
    run.ok("a", {}, sets(secret=1))
    assert run.step.status.nodes["a"].phase == "Failed"
    assert "secret" not in run.context()


def test_view_lists_what_a_node_can_see_in_completion_order() -> None:
    spec = spec_of(
        [n("s"), n("x"), n("y"), n("after")],
        [e("s", "x"), e("s", "y"), e("y", "after")],
    )
    run = Run(spec)
    run.ok("s")
    run.ok("y")
    run.ok("x")  # finishes after `after` started: not in its view
    assert [i.node for i in run.engine.view(run.step.status, "after")] == ["s", "y"]
