"""Property-based engine tests over random DAGs, with a simulated driver.

The driver completes running nodes in an order hypothesis picks, so these properties hold for
any interleaving: each node runs once, only after its predecessors, as early as possible;
with failures and retries every run terminates in a consistent final state.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowcraft.engine import (
    CancelNode,
    Engine,
    Event,
    NodeFailed,
    NodeSucceeded,
    StartNode,
    Step,
)
from flowcraft.model import FlowSpec, FlowStatus, parse_flow

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@st.composite
def dags(draw: st.DrawFn, max_nodes: int = 12) -> tuple[int, list[tuple[int, int]]]:
    """n nodes and edges i -> j with i < j (acyclic by construction)."""
    n = draw(st.integers(min_value=1, max_value=max_nodes))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []
    return n, sorted(chosen)


def build(
    n: int,
    edges: list[tuple[int, int]],
    configs: list[dict[str, Any]] | None = None,
    fallbacks: frozenset[int] = frozenset(),
    **flow: Any,
) -> FlowSpec:
    """Nodes n0..n{n-1}; node i in `fallbacks` gets an extra fallback node f{i}."""
    nodes = []
    for i in range(n):
        data: dict[str, Any] = {"id": f"n{i}", "uses": "task"}
        config = dict(configs[i]) if configs is not None else {}
        if i in fallbacks:
            config["fallback"] = f"f{i}"
            nodes.append({"id": f"f{i}", "uses": "task"})
        if config:
            data["config"] = config
        nodes.append(data)
    return parse_flow(
        {
            "apiVersion": "flowcraft.io/v1alpha1",
            "kind": "Flow",
            "metadata": {"name": "prop"},
            "spec": {
                "nodes": nodes,
                "edges": [{"source": f"n{a}", "target": f"n{b}"} for a, b in edges],
                "functions": {"task": {"script": "def run(ctx): return 1"}},
                **flow,
            },
        }
    ).spec


def preds_of(n: int, edges: list[tuple[int, int]]) -> dict[str, set[str]]:
    preds: dict[str, set[str]] = {f"n{i}": set() for i in range(n)}
    for a, b in edges:
        preds[f"n{b}"].add(f"n{a}")
    return preds


@settings(max_examples=150, deadline=None)
@given(graph=dags(), data=st.data())
def test_random_dag_runs_each_node_once_eagerly_and_succeeds(
    graph: tuple[int, list[tuple[int, int]]], data: st.DataObject
) -> None:
    n, edges = graph
    spec = build(n, edges)
    preds = preds_of(n, edges)
    engine = Engine(spec)
    outputs: dict[str, Any] = {}
    started: dict[str, int] = {}
    now = T0

    def record(step: Step, before: FlowStatus | None) -> None:
        for action in step.actions:
            assert isinstance(action, StartNode)
            started[action.node] = started.get(action.node, 0) + 1
            # Only after every predecessor succeeded (judged on the snapshot before).
            for pred in preds[action.node]:
                assert before is not None
                assert before.nodes[pred].phase == "Succeeded" or pred in outputs
            # flowcraft: the input is the output of the predecessor that arrived last.
            if preds[action.node]:
                done = step.status.nodes
                last = max(preds[action.node], key=lambda p: done[p].seq or 0)
                assert action.input == outputs[last]
        # Eagerness: nothing satisfied is left waiting.
        for node_id, ns in step.status.nodes.items():
            if ns.phase == "Pending":
                assert not all(step.status.nodes[p].phase == "Succeeded" for p in preds[node_id]), (
                    f"{node_id} is ready but not started"
                )

    step = engine.start(now)
    record(step, None)
    roots = {f"n{i}" for i in range(n) if not preds[f"n{i}"]}
    assert {a.node for a in step.actions if isinstance(a, StartNode)} == roots

    while step.status.phase == "Running":
        running = [node_id for node_id, _ in engine.running(step.status)]
        assert running, "a running flow with nothing running would hang"
        batch = data.draw(st.lists(st.sampled_from(running), min_size=1, unique=True))
        now += timedelta(milliseconds=data.draw(st.integers(0, 50)))
        events: list[Event] = []
        for node_id in batch:
            outputs[node_id] = f"out-{node_id}"
            events.append(NodeSucceeded(node_id, 1, now, output=outputs[node_id]))
        before = step.status
        step = engine.advance(before, events, now, outputs)
        record(step, before)

    assert step.status.phase == "Succeeded"
    assert started == {f"n{i}": 1 for i in range(n)}
    assert all(ns.phase == "Succeeded" for ns in step.status.nodes.values())
    context = engine.context(step.status, outputs)
    assert all(context[f"_outputs.n{i}"] == f"out-n{i}" for i in range(n))


node_configs = st.fixed_dictionaries(
    {},
    optional={
        "maxRetries": st.integers(1, 3),
        "retryDelay": st.sampled_from([0, 10, 250]),
    },
)


@settings(max_examples=150, deadline=None)
@given(
    graph=dags(max_nodes=10),
    fail_fast=st.booleans(),
    parallelism=st.none() | st.integers(1, 3),
    data=st.data(),
)
def test_random_failures_and_retries_always_terminate_consistently(
    graph: tuple[int, list[tuple[int, int]]],
    fail_fast: bool,
    parallelism: int | None,
    data: st.DataObject,
) -> None:
    n, edges = graph
    configs = [data.draw(node_configs) for _ in range(n)]
    fallbacks = data.draw(st.frozensets(st.integers(0, n - 1)))
    flow: dict[str, Any] = {"failFast": fail_fast}
    if parallelism is not None:
        flow["parallelism"] = parallelism
    spec = build(n, edges, configs, fallbacks, **flow)
    preds = preds_of(n, edges)
    engine = Engine(spec)
    outputs: dict[str, Any] = {}
    now = T0
    step = engine.start(now)
    attempts: dict[str, int] = {}

    for _ in range(500):
        for action in step.actions:
            if isinstance(action, StartNode):
                assert action.attempt == attempts.get(action.node, 0) + 1
                attempts[action.node] = action.attempt
                limit = spec.node(action.node).config.max_retries
                assert action.attempt <= limit
            else:
                assert isinstance(action, CancelNode)
        running = engine.running(step.status)
        if parallelism is not None:
            assert len(running) <= parallelism
        if step.status.phase != "Running":
            break
        # Sometimes round-trip the snapshot through JSON (a restarted driver), sometimes
        # hand back the same object: the engine must not care.
        status = step.status
        if data.draw(st.booleans()):
            status = FlowStatus.model_validate(json.loads(json.dumps(status.to_dict())))
        if not running:
            assert step.wake_at is not None, "nothing running and nothing to wait for"
            now = max(now, step.wake_at)
            step = engine.advance(status, [], now, outputs)
            continue
        node_id, attempt = data.draw(st.sampled_from(running))
        now += timedelta(milliseconds=data.draw(st.integers(0, 100)))
        event: Event
        if data.draw(st.booleans()):
            outputs[node_id] = attempt
            event = NodeSucceeded(node_id, attempt, now, output=attempt)
        else:
            event = NodeFailed(node_id, attempt, now, f"failure {attempt}")
        step = engine.advance(status, [event], now, outputs)
    else:
        pytest.fail("the flow did not terminate")

    final = step.status
    nodes = final.nodes
    assert final.phase in ("Succeeded", "Failed")
    assert final.finished_at is not None
    assert not engine.running(final)
    assert all(ns.phase in ("Succeeded", "Failed", "Skipped", "Cancelled") for ns in nodes.values())

    def outcome(node_id: str) -> str:
        """Succeeded (itself or through its fallback chain), or its own phase."""
        phase = nodes[node_id].phase
        if phase == "Failed" and node_id[0] == "n" and int(node_id[1:]) in fallbacks:
            return (
                outcome(f"f{node_id[1:]}") if nodes[f"f{node_id[1:]}"].phase != "Skipped" else phase
            )
        return phase

    unrecovered = [f"n{i}" for i in range(n) if outcome(f"n{i}") == "Failed"]
    assert (final.phase == "Failed") == bool(unrecovered)
    assert len(final.errors) == (1 if fail_fast and unrecovered else len(unrecovered))
    for i in fallbacks:
        if nodes[f"f{i}"].phase not in ("Skipped", "Cancelled"):
            assert nodes[f"n{i}"].phase == "Failed", "a fallback runs only after its node failed"
    for node_id in (f"n{i}" for i in range(n)):
        if nodes[node_id].phase == "Succeeded":
            assert all(outcome(p) == "Succeeded" for p in preds[node_id])
        if nodes[node_id].phase == "Skipped":
            # No conditions here: only a failed (or itself skipped) predecessor skips a node.
            assert any(outcome(p) != "Succeeded" for p in preds[node_id]), node_id
