"""Property-based tests of batches, with a simulated driver (hypothesis picks the order in
which items finish, which attempts fail, and when the snapshot goes through JSON):

* without failures every item runs exactly once per iteration, in rounds of chunkSize,
  never above parallelism, and the gather holds the item outputs in order;
* with failures and retries no item exceeds maxRetries attempts, and the run ends consistent;
* a driver that restarts from the JSON snapshot at any step reaches the same final result;
* a batch inside a loop runs once per iteration, and the loop ends or fails at its bound.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowcraft.contract import item_key
from flowcraft.engine import Engine, Event, NodeFailed, NodeSucceeded, StartNode
from flowcraft.model import FlowSpec, FlowStatus, parse_flow

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 1, tzinfo=UTC)
S, G = "b_scatter", "b_gather"


def spec_of(
    chunk: int | None,
    parallelism: int | None,
    max_retries: int = 1,
    loop: tuple[int, int] | None = None,
    fail_fast: bool = True,
) -> FlowSpec:
    """start -> scatter -> gather -> end; with `loop` = (threshold, maxIterations), the
    batch is the body of a loop that continues while the counter `end` writes < threshold."""
    params: dict[str, Any] = {"workerUsesKey": "w", "outputKey": "out", "gatherNodeId": G}
    if chunk is not None:
        params["chunkSize"] = chunk
    nodes: list[dict[str, Any]] = [
        {"id": "start", "uses": "t"},
        {
            "id": S,
            "uses": "batch-scatter",
            "inputs": "start",
            "params": params,
            "config": {"maxRetries": max_retries, "retryDelay": 5},
        },
        {"id": G, "uses": "batch-gather", "params": {"outputKey": "out", "gatherNodeId": G}},
        {"id": "end", "uses": "t"},
    ]
    edges = [
        {"source": S, "target": G},
        {"source": G, "target": "end"},
    ]
    extra: dict[str, Any] = {"failFast": fail_fast}
    if loop is None:
        edges.append({"source": "start", "target": S})
    else:
        threshold, bound = loop
        nodes.append(
            {
                "id": "loop",
                "uses": "loop-controller",
                "params": {"condition": f"n < {threshold}", "maxIterations": bound},
            }
        )
        nodes.append({"id": "done", "uses": "t"})
        edges += [
            {"source": "start", "target": "loop"},
            {"source": "loop", "target": S, "action": "continue"},
            {"source": "end", "target": "loop"},
            {"source": "loop", "target": "done", "action": "break"},
        ]
        extra["context"] = {"n": 0}
    if parallelism is not None:
        extra["parallelism"] = parallelism
    return parse_flow(
        {
            "apiVersion": "flowcraft.io/v1alpha1",
            "kind": "Flow",
            "metadata": {"name": "prop"},
            "spec": {
                "nodes": nodes,
                "edges": edges,
                "functions": {"t": {"script": "def run(ctx): return 1"}, "w": {"script": "x=1"}},
                **extra,
            },
        }
    ).spec


def key(node: str, iteration: int) -> str:
    return node if not iteration else f"{node}/{iteration}"


class Sim:
    """Drives one flow; `choose(n)` picks among n options, `fail()` says whether to fail."""

    def __init__(self, spec: FlowSpec, items: list[int], roundtrip: Any = None) -> None:
        self.engine = Engine(spec)
        self.spec = spec
        self.items = items
        self.roundtrip = roundtrip
        self.outputs: dict[str, Any] = {}
        self.writes: dict[str, Any] = {}
        self.now = T0
        self.step = self.engine.start(T0)
        self.running: dict[tuple[str, int, int | None], StartNode] = {}
        self.starts: list[StartNode] = []
        self.counter = 0
        self.take()

    def take(self) -> None:
        for action in self.step.actions:
            if isinstance(action, StartNode):
                self.starts.append(action)
                self.running[(action.node, action.iteration, action.item)] = action
            else:
                self.running.pop((action.node, action.iteration, action.item), None)

    def event(self, action: StartNode, fail: bool) -> Event:
        if fail and action.item is not None:
            return NodeFailed(
                action.node,
                action.attempt,
                self.now,
                "x",
                iteration=action.iteration,
                item=action.item,
            )
        writes: tuple[dict[str, Any], ...] = ()
        if action.item is not None:
            output: Any = action.input * 10
            self.outputs[item_key(action.node, action.iteration, action.item)] = output
        elif action.node == "start":
            output = self.items
        elif action.node == "end":
            self.counter += 1
            output = action.input
            writes = ({"op": "set", "key": "n", "value": self.counter},)
            self.writes[key("end", action.iteration)] = writes
        else:
            output = None
        if action.item is None:
            self.outputs[key(action.node, action.iteration)] = output
        return NodeSucceeded(
            action.node,
            action.attempt,
            self.now,
            output=output,
            writes=writes,
            iteration=action.iteration,
            item=action.item,
        )

    def run(self, choose: Any, fail: Any, limit: int = 3000) -> None:
        for _ in range(limit):
            if self.step.status.phase != "Running":
                return
            self.check()
            status = self.step.status
            if self.roundtrip is not None and self.roundtrip():
                status = FlowStatus.model_validate(json.loads(json.dumps(status.to_dict())))
                self.engine = Engine(self.spec)  # a restarted driver: a fresh engine too
            if not self.running:
                assert self.step.wake_at is not None, "nothing running, nothing to wait for"
                self.now = max(self.now, self.step.wake_at)
                self.step = self.engine.advance(status, [], self.now, self.outputs, self.writes)
                self.take()
                continue
            ordered = sorted(self.running, key=lambda k: (k[0], k[1], -1 if k[2] is None else k[2]))
            picked = ordered[choose(len(ordered))]
            action = self.running.pop(picked)
            self.now += timedelta(milliseconds=1)
            event = self.event(action, fail())
            self.step = self.engine.advance(status, [event], self.now, self.outputs, self.writes)
            self.take()
        raise AssertionError("did not terminate")

    def check(self) -> None:
        """Invariants of every snapshot: running items agree with what was started, stay
        within parallelism, and belong to one round."""
        status = self.step.status
        items = self.engine.running_items(status)
        assert sorted((s, it, i) for s, it, i, _ in items) == sorted(
            k for k in self.running if k[2] is not None
        )
        limit = self.spec.parallelism
        running = len(items) + len(self.engine.running(status))
        if limit is not None:
            assert running <= limit
        batch = status.nodes[S].batch
        if items and batch is not None:
            rounds = {i // batch.chunk for _, _, i, _ in items}
            assert len(rounds) == 1, "items of two rounds run at once"
            assert all(c == "S" for c in batch.items[: min(rounds) * batch.chunk])


def chooser(data: st.DataObject) -> Any:
    return lambda n: data.draw(st.integers(0, n - 1)) if n > 1 else 0


items_strategy = st.lists(st.integers(-50, 50), max_size=25)


@settings(max_examples=120, deadline=None)
@given(
    items=items_strategy,
    chunk=st.none() | st.integers(1, 8),
    parallelism=st.none() | st.integers(1, 4),
    data=st.data(),
)
def test_every_item_runs_exactly_once_without_failures(
    items: list[int], chunk: int | None, parallelism: int | None, data: st.DataObject
) -> None:
    sim = Sim(spec_of(chunk, parallelism), items, roundtrip=lambda: data.draw(st.booleans()))
    sim.run(chooser(data), lambda: False)
    assert sim.step.status.phase == "Succeeded"
    started = [a.item for a in sim.starts if a.item is not None]
    assert sorted(started) == list(range(len(items)))
    assert all(a.attempt == 1 for a in sim.starts)
    context = sim.engine.context(sim.step.status, sim.outputs, sim.writes)
    assert context["out"] == [10 * v for v in items]


@settings(max_examples=120, deadline=None)
@given(
    items=st.lists(st.integers(0, 9), min_size=1, max_size=15),
    chunk=st.none() | st.integers(1, 5),
    parallelism=st.none() | st.integers(1, 4),
    max_retries=st.integers(1, 3),
    data=st.data(),
)
def test_failures_and_retries_stay_within_max_retries(
    items: list[int],
    chunk: int | None,
    parallelism: int | None,
    max_retries: int,
    data: st.DataObject,
) -> None:
    sim = Sim(spec_of(chunk, parallelism, max_retries), items)
    sim.run(chooser(data), lambda: data.draw(st.integers(0, 3)) == 0)
    attempts: dict[int, list[int]] = {}
    for action in sim.starts:
        if action.item is not None:
            attempts.setdefault(action.item, []).append(action.attempt)
    for found in attempts.values():
        assert found == list(range(1, len(found) + 1))
        assert len(found) <= max_retries
    final = sim.step.status
    batch = final.nodes[S].batch
    assert batch is not None
    assert not sim.engine.running_items(final)
    assert "R" not in batch.items
    assert "r" not in batch.items
    if final.phase == "Succeeded":
        assert batch.items == "S" * len(items)
    else:
        assert final.phase == "Failed"
        assert batch.items.count("F") == 1
        assert final.nodes[S].message is not None
        assert final.nodes[S].message.startswith(f"item {batch.items.index('F')} failed")


@settings(max_examples=80, deadline=None)
@given(
    items=st.lists(st.integers(0, 9), max_size=12),
    chunk=st.none() | st.integers(1, 4),
    parallelism=st.none() | st.integers(1, 3),
    max_retries=st.integers(1, 2),
    choices=st.lists(st.integers(0, 1000), min_size=1, max_size=200),
    roundtrips=st.lists(st.booleans(), min_size=1, max_size=200),
)
def test_restarts_from_any_snapshot_reach_the_same_result(
    *,
    items: list[int],
    chunk: int | None,
    parallelism: int | None,
    max_retries: int,
    choices: list[int],
    roundtrips: list[bool],
) -> None:
    def replay(restart: bool) -> tuple[dict[str, Any], dict[str, Any], list[StartNode]]:
        picks, fails, trips = iter(choices * 50), iter(choices[::-1] * 50), iter(roundtrips * 50)
        sim = Sim(
            spec_of(chunk, parallelism, max_retries),
            items,
            roundtrip=(lambda: next(trips)) if restart else None,
        )
        sim.run(lambda n: next(picks) % n, lambda: next(fails) % 4 == 0)
        context = sim.engine.context(sim.step.status, sim.outputs, sim.writes)
        return sim.step.status.to_dict(), context, sim.starts

    assert replay(False) == replay(True)


@settings(max_examples=40, deadline=None)
@given(
    threshold=st.integers(0, 5),
    bound=st.integers(1, 5),
    items=st.lists(st.integers(0, 9), max_size=4),
    chunk=st.none() | st.integers(1, 3),
    data=st.data(),
)
def test_a_batch_in_a_loop_runs_once_per_iteration_and_the_loop_ends_or_fails_at_its_bound(
    threshold: int, bound: int, items: list[int], chunk: int | None, data: st.DataObject
) -> None:
    sim = Sim(spec_of(chunk, None, loop=(threshold, bound)), items)
    sim.run(chooser(data), lambda: False)
    final = sim.step.status
    iterations = sorted({a.iteration for a in sim.starts if a.item is not None})
    per_iteration = sorted((a.iteration, a.item) for a in sim.starts if a.item is not None)
    assert per_iteration == [(it, i) for it in iterations for i in range(len(items))]
    if threshold <= bound:
        assert final.phase == "Succeeded"
        assert sim.counter == threshold
    else:
        assert final.phase == "Failed"
        assert final.nodes["loop"].reason == "MaxIterations"
        assert sim.counter <= bound + 1
