"""Batches (batch-scatter + batch-gather) in the engine and the local runner: rounds of
chunkSize, parallelism, per-item retries and timeouts, item failure (with and without a
fallback on the scatter), restarts from a JSON snapshot, loops, and the status size bound."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flowcraft.contract import item_key
from flowcraft.drivers.local import LocalRunner
from flowcraft.engine import (
    CancelFlow,
    CancelNode,
    Engine,
    EngineError,
    NodeFailed,
    NodeSucceeded,
    StartNode,
    Step,
)
from flowcraft.engine.batch import batch_id, worker_id
from flowcraft.model import Flow, FlowSpec, FlowStatus, parse_flow

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SCATTER = "sum-items_scatter"
GATHER = "sum-items_gather"


def batch_flow(
    *,
    chunk: int | None = None,
    config: dict[str, Any] | None = None,
    fallback: bool = False,
    source: str = "def run(ctx):\n    return {'output': list(range(1, 201))}\n",
    **extra: Any,
) -> Flow:
    """start -> scatter (worker doubles) -> gather (outputKey doubled) -> total (sums)."""
    params: dict[str, Any] = {
        "workerUsesKey": "double",
        "outputKey": "doubled",
        "gatherNodeId": GATHER,
    }
    if chunk is not None:
        params["chunkSize"] = chunk
    scatter: dict[str, Any] = {
        "id": SCATTER,
        "uses": "batch-scatter",
        "inputs": "start",
        "params": params,
    }
    scatter_config = dict(config or {})
    nodes = [{"id": "start", "uses": "start"}, scatter]
    if fallback:
        scatter_config["fallback"] = "rescue"
        nodes.append({"id": "rescue", "uses": "rescue"})
    if scatter_config:
        scatter["config"] = scatter_config
    nodes += [
        {
            "id": GATHER,
            "uses": "batch-gather",
            "params": {"outputKey": "doubled", "gatherNodeId": GATHER},
        },
        {"id": "total", "uses": "total", "inputs": "doubled"},
    ]
    return parse_flow(
        {
            "apiVersion": "flowcraft.io/v1alpha1",
            "kind": "Flow",
            "metadata": {"name": "batch"},
            "spec": {
                "nodes": nodes,
                "edges": [
                    {"source": "start", "target": SCATTER},
                    {"source": SCATTER, "target": GATHER},
                    {"source": GATHER, "target": "total"},
                ],
                "functions": {
                    "start": {"script": source},
                    "double": {
                        "script": "def run(ctx):\n"
                        "    if ctx.input == -1:\n"
                        "        raise ValueError('bad item')\n"
                        "    return {'output': ctx.input * 2}\n"
                    },
                    "total": {"script": "def run(ctx):\n    return {'output': sum(ctx.input)}\n"},
                    "rescue": {"script": "def run(ctx):\n    return {'output': 'rescued'}\n"},
                },
                **extra,
            },
        }
    )


class Driver:
    """A simulated driver: runs nodes and items in Python, in the order the test asks."""

    def __init__(self, spec: FlowSpec, items: list[Any] | None) -> None:
        self.engine = Engine(spec)
        self.items = items
        self.outputs: dict[str, Any] = {}
        self.now = T0
        self.step = self.engine.start(T0)
        self.started: list[StartNode] = []
        self.cancelled: list[CancelNode] = []
        self.running: dict[tuple[str, int | None], StartNode] = {}
        self.record(self.step)

    def record(self, step: Step) -> None:
        for action in step.actions:
            if isinstance(action, StartNode):
                self.started.append(action)
                self.running[(action.node, action.item)] = action
            else:
                self.cancelled.append(action)
                self.running.pop((action.node, action.item), None)

    def advance(self, *events: Any, roundtrip: bool = False) -> Step:
        status = self.step.status
        if roundtrip:
            status = FlowStatus.model_validate(json.loads(json.dumps(status.to_dict())))
        self.step = self.engine.advance(status, list(events), self.now, self.outputs)
        self.record(self.step)
        return self.step

    def succeed(self, action: StartNode) -> NodeSucceeded:
        self.running.pop((action.node, action.item), None)
        if action.item is not None:
            output = action.input * 2
            self.outputs[item_key(action.node, action.iteration, action.item)] = output
        elif action.node == "start":
            output = self.items
            self.outputs["start"] = output
        elif action.node == "total":
            output = sum(action.input)
            self.outputs["total"] = output
        else:
            output = "rescued"
            self.outputs[action.node] = output
        return NodeSucceeded(
            action.node,
            action.attempt,
            self.now,
            output=output,
            iteration=action.iteration,
            item=action.item,
        )

    def fail(self, action: StartNode, message: str = "boom", timed_out: bool = False) -> NodeFailed:
        self.running.pop((action.node, action.item), None)
        return NodeFailed(
            action.node,
            action.attempt,
            self.now,
            message,
            timed_out=timed_out,
            iteration=action.iteration,
            item=action.item,
        )

    def items_running(self) -> list[StartNode]:
        return [a for a in self.running.values() if a.item is not None]

    def run_all(self, limit: int = 100_000) -> Step:
        """Complete everything that runs, one advance per batch of running attempts."""
        for _ in range(limit):
            if self.step.status.phase != "Running":
                return self.step
            if not self.running:
                assert self.step.wake_at is not None
                self.now = self.step.wake_at
                self.advance()
                continue
            self.advance(*[self.succeed(a) for a in list(self.running.values())])
        raise AssertionError("did not terminate")


def test_200_items_in_rounds_of_20_gather_sums() -> None:
    driver = Driver(batch_flow(chunk=20).spec, list(range(1, 201)))
    driver.advance(driver.succeed(driver.started[0]))
    rounds = []
    while driver.items_running():
        running = driver.items_running()
        rounds.append(sorted(a.item for a in running if a.item is not None))
        assert all(a.uses == "double" and a.node == SCATTER for a in running)
        assert all(a.input == a.item + 1 for a in running if a.item is not None)
        assert driver.step.status.nodes[SCATTER].phase == "Running"
        # The round's items finish one by one; the next round waits for the last of them.
        for action in running[:-1]:
            step = driver.advance(driver.succeed(action))
            assert not [a for a in step.actions if isinstance(a, StartNode)]
        driver.advance(driver.succeed(running[-1]))
    assert rounds == [list(range(k, k + 20)) for k in range(0, 200, 20)]
    step = driver.run_all()
    assert step.status.phase == "Succeeded"
    assert driver.outputs["total"] == sum(range(1, 201)) * 2
    batch = step.status.nodes[SCATTER].batch
    assert batch is not None
    assert (batch.total, batch.chunk, batch.items, batch.attempts) == (200, 20, "S" * 200, {})
    context = driver.engine.context(step.status, driver.outputs)
    assert context["doubled"] == [2 * i for i in range(1, 201)]
    assert context[GATHER] == context["doubled"]
    assert context[SCATTER] == {"gatherNodeId": GATHER, "hasMore": False}
    assert context["_inputs.total"] == context["doubled"]
    bid = batch_id(SCATTER, 0)
    assert context[f"_batch.{SCATTER}_{bid}_item_7"] == 8
    assert context[f"{SCATTER}_currentIndex"] == 200
    assert context[f"{GATHER}_hasMore"] is False
    workers = context[f"{GATHER}_allWorkerIds"]
    assert workers == [f"double_{bid}_{i}" for i in range(200)]
    assert context[f"_outputs.{workers[5]}"] == context[workers[5]] == 12
    # A node's view: the scatter and the gather inline (with the gather's write), no items.
    view = [item.to_json() for item in driver.engine.view(step.status, "total", driver.outputs)]
    assert view[1] == {"id": SCATTER, "value": {"gatherNodeId": GATHER, "hasMore": False}}
    assert view[2]["id"] == GATHER
    assert view[2]["set"] == [{"op": "set", "key": "doubled", "value": context["doubled"]}]
    assert len(view) == 3


def test_items_count_toward_parallelism_and_without_chunk_all_start() -> None:
    driver = Driver(batch_flow(parallelism=7).spec, list(range(50)))
    driver.advance(driver.succeed(driver.started[0]))
    assert len(driver.items_running()) == 7
    assert len(driver.engine.running_items(driver.step.status)) == 7
    assert driver.engine.running(driver.step.status) == []  # the scatter runs no Job itself
    driver.advance(driver.succeed(driver.items_running()[0]))
    assert [a.item for a in driver.items_running()] == [1, 2, 3, 4, 5, 6, 7]
    assert driver.run_all().status.phase == "Succeeded"

    unbounded = Driver(batch_flow().spec, list(range(50)))
    unbounded.advance(unbounded.succeed(unbounded.started[0]))
    assert len(unbounded.items_running()) == 50
    assert unbounded.step.status.nodes[SCATTER].batch.chunk == 50  # type: ignore[union-attr]


def test_item_retries_with_backoff_then_success() -> None:
    config = {"maxRetries": 3, "retryDelay": 100, "timeout": 5000}
    driver = Driver(batch_flow(chunk=4, config=config).spec, [1, 2, 3, 4, 5])
    driver.advance(driver.succeed(driver.started[0]))
    first = driver.items_running()
    assert all(a.timeout_seconds == 5.0 and a.attempt == 1 for a in first)
    third = next(a for a in first if a.item == 2)
    step = driver.advance(driver.fail(third))
    batch = step.status.nodes[SCATTER].batch
    assert batch is not None
    assert batch.items == "RRrR."
    assert batch.retry_at == {"2": T0 + timedelta(milliseconds=100)}
    assert step.wake_at == T0 + timedelta(milliseconds=100)
    driver.now = T0 + timedelta(milliseconds=100)
    step = driver.advance()
    retry = [a for a in step.actions if isinstance(a, StartNode)]
    assert [(a.item, a.attempt, a.input) for a in retry] == [(2, 2, 3)]
    assert step.status.nodes[SCATTER].batch.attempts == {"2": 2}  # type: ignore[union-attr]
    assert driver.engine.running_items(step.status) == [
        (SCATTER, 0, 0, 1),
        (SCATTER, 0, 1, 1),
        (SCATTER, 0, 2, 2),
        (SCATTER, 0, 3, 1),
    ]
    step = driver.advance(driver.fail(retry[0], timed_out=True))
    assert step.wake_at == driver.now + timedelta(milliseconds=200)  # doubled
    driver.now = step.wake_at
    driver.advance()
    final = driver.run_all()
    assert final.status.phase == "Succeeded"
    attempts = [a.attempt for a in driver.started if a.item == 2]
    assert attempts == [1, 2, 3]
    assert driver.outputs["total"] == 30


@pytest.mark.parametrize("timed_out", [False, True])
def test_item_failure_fails_the_scatter_and_cancels_its_running_items(timed_out: bool) -> None:
    driver = Driver(batch_flow(config={"maxRetries": 2}).spec, [1, 2, 3, 4])
    driver.advance(driver.succeed(driver.started[0]))
    items = driver.items_running()
    driver.advance(driver.succeed(items[0]))
    driver.advance(driver.fail(items[1]))
    retry = next(a for a in driver.items_running() if a.item == 1)
    step = driver.advance(driver.fail(retry, "bad item", timed_out=timed_out))
    assert step.status.phase == "Failed"
    scatter = step.status.nodes[SCATTER]
    assert scatter.phase == "Failed"
    assert scatter.reason == ("Timeout" if timed_out else "Error")
    assert scatter.message == "item 1 failed after 2 attempts: bad item"
    assert scatter.batch is not None
    assert scatter.batch.items == "SFCC"
    assert {(c.node, c.item, c.attempt) for c in driver.cancelled} == {
        (SCATTER, 2, 1),
        (SCATTER, 3, 1),
    }
    assert step.status.errors == [f"node {SCATTER!r} item 1 failed after 2 attempts: bad item"]
    assert step.status.nodes[GATHER].phase == "Cancelled"
    assert driver.engine.running_items(step.status) == []


def test_item_failure_with_a_fallback_on_the_scatter() -> None:
    driver = Driver(batch_flow(fallback=True).spec, [1, 2, 3])
    driver.advance(driver.succeed(driver.started[0]))
    items = driver.items_running()
    step = driver.advance(driver.fail(items[0]))
    rescue = [a for a in step.actions if isinstance(a, StartNode) and a.node == "rescue"]
    assert len(rescue) == 1
    assert rescue[0].input is None
    assert {c.item for c in driver.cancelled} == {1, 2}
    final = driver.run_all()
    assert final.status.phase == "Succeeded"
    assert final.status.nodes[SCATTER].reason == "Recovered"
    context = driver.engine.context(final.status, driver.outputs)
    assert context["doubled"] == []
    assert context["total"] == 0
    assert context[SCATTER] is None


@pytest.mark.parametrize("value", [{"a": 1}, "text", 3])
def test_a_scatter_whose_input_is_not_an_array_fails(value: Any) -> None:
    driver = Driver(batch_flow().spec, value)
    step = driver.advance(driver.succeed(driver.started[0]))
    assert step.status.phase == "Failed"
    message = f"Input for batch-scatter node '{SCATTER}' must be an array."
    assert step.status.nodes[SCATTER].message == message
    assert step.status.nodes[SCATTER].reason == "InputError"


def test_null_input_is_an_empty_batch() -> None:
    driver = Driver(batch_flow().spec, None)
    step = driver.advance(driver.succeed(driver.started[0]))
    assert step.status.nodes[SCATTER].phase == "Succeeded"
    final = driver.run_all()
    assert final.status.phase == "Succeeded"
    assert driver.outputs["total"] == 0


def test_restart_from_a_json_snapshot_gives_the_same_starts() -> None:
    spec = batch_flow(chunk=3, config={"maxRetries": 2, "retryDelay": 10}).spec
    driver = Driver(spec, list(range(10)))
    driver.advance(driver.succeed(driver.started[0]))
    items = driver.items_running()
    driver.advance(driver.succeed(items[0]), driver.fail(items[1]))
    status = driver.step.status
    copy = FlowStatus.model_validate(json.loads(json.dumps(status.to_dict())))
    fresh = Engine(spec)
    for scatter, iteration, item, attempt in fresh.running_items(copy):
        again = fresh.start_action(copy, scatter, driver.outputs, item=item)
        issued = next(a for a in driver.started if a.item == item and a.attempt == attempt)
        assert again == issued
        assert again.iteration == iteration
    with pytest.raises(EngineError):
        fresh.start_action(copy, SCATTER, driver.outputs)
    # The same events applied to the live snapshot and to its JSON copy decide the same.
    driver.now = T0 + timedelta(milliseconds=10)
    events = [driver.succeed(items[2])]
    a = driver.engine.advance(status, events, driver.now, driver.outputs)
    b = fresh.advance(copy, events, driver.now, driver.outputs)
    assert a.actions == b.actions
    assert a.wake_at == b.wake_at
    assert a.status.to_dict() == b.status.to_dict()


def test_cancel_flow_cancels_running_items() -> None:
    driver = Driver(batch_flow(chunk=2).spec, [1, 2, 3])
    driver.advance(driver.succeed(driver.started[0]))
    step = driver.advance(CancelFlow("stop"))
    assert step.status.phase == "Cancelled"
    assert sorted(c.item for c in driver.cancelled if c.item is not None) == [0, 1]
    assert step.status.nodes[SCATTER].batch.items == "CC."  # type: ignore[union-attr]


def test_a_batch_inside_a_loop_runs_per_iteration() -> None:
    spec = parse_flow(
        {
            "apiVersion": "flowcraft.io/v1alpha1",
            "kind": "Flow",
            "metadata": {"name": "loop"},
            "spec": {
                "nodes": [
                    {"id": "start", "uses": "start"},
                    {
                        "id": "loop",
                        "uses": "loop-controller",
                        "params": {"condition": "rounds < 3", "maxIterations": 5},
                    },
                    {
                        "id": SCATTER,
                        "uses": "batch-scatter",
                        "inputs": "start",
                        "params": {
                            "workerUsesKey": "double",
                            "outputKey": "doubled",
                            "gatherNodeId": GATHER,
                        },
                    },
                    {
                        "id": GATHER,
                        "uses": "batch-gather",
                        "params": {"outputKey": "doubled", "gatherNodeId": GATHER},
                    },
                    {"id": "count", "uses": "count"},
                    {"id": "end", "uses": "count"},
                ],
                "edges": [
                    {"source": "start", "target": "loop"},
                    {"source": "loop", "target": SCATTER, "action": "continue"},
                    {"source": SCATTER, "target": GATHER},
                    {"source": GATHER, "target": "count"},
                    {"source": "count", "target": "loop"},
                    {"source": "loop", "target": "end", "action": "break"},
                ],
                "functions": {
                    "start": {"script": "def run(ctx): return None"},
                    "double": {"script": "def run(ctx): return None"},
                    "count": {"script": "def run(ctx): return None"},
                },
                "context": {"rounds": 0},
            },
        }
    ).spec
    driver = Driver(spec, [1, 2])
    writes: dict[str, Any] = {}
    rounds = 0
    for _ in range(100):
        if driver.step.status.phase != "Running":
            break
        events = []
        for action in list(driver.running.values()):
            event = driver.succeed(action)
            if action.node == "count":
                rounds += 1
                w = ({"op": "set", "key": "rounds", "value": rounds},)
                key = "count" if not action.iteration else f"count/{action.iteration}"
                writes[key] = w
                driver.outputs[key] = rounds
                event = NodeSucceeded(
                    "count",
                    action.attempt,
                    driver.now,
                    output=rounds,
                    writes=w,
                    iteration=action.iteration,
                )
            events.append(event)
        driver.step = driver.engine.advance(
            driver.step.status, events, driver.now, driver.outputs, writes
        )
        driver.record(driver.step)
    assert driver.step.status.phase == "Succeeded", driver.step.status.errors
    per_iteration = sorted((a.iteration, a.item) for a in driver.started if a.item is not None)
    assert per_iteration == [(it, i) for it in range(3) for i in range(2)]
    context = driver.engine.context(driver.step.status, driver.outputs, writes)
    assert context["doubled"] == [2, 4]
    for it in range(3):
        assert context[f"_batch.{SCATTER}_{batch_id(SCATTER, it)}_item_1"] == 2
        assert context[worker_id("double", SCATTER, it, 1)] == 4
    assert driver.engine.result_keys(driver.step.status).count(item_key(SCATTER, 1, 0)) == 1


def test_status_of_10000_items_stays_small() -> None:
    driver = Driver(batch_flow(config={"maxRetries": 3, "retryDelay": 1000}).spec, None)
    driver.items = list(range(10_000))
    driver.advance(driver.succeed(driver.started[0]))
    running = driver.items_running()
    assert len(running) == 10_000
    # Worst case for the status: half the items failed once and wait for their retry.
    step = driver.advance(*[driver.fail(a) for a in running[::2]])
    size = len(json.dumps(step.status.to_dict()).encode())
    assert size <= 256 * 1024, size
    assert step.status.nodes[SCATTER].batch.items.count("r") == 5_000  # type: ignore[union-attr]
    final = driver.run_all()
    assert final.status.phase == "Succeeded"
    assert len(json.dumps(final.status.to_dict()).encode()) <= 128 * 1024


LOCAL_WORKER = "def run(ctx):\n    return {'output': ctx.input * 2}\n"


def test_local_runner_200_items_chunk_20(tmp_path: Path) -> None:
    flow = batch_flow(chunk=20, parallelism=20)
    result = asyncio.run(LocalRunner(flow, tmp_path / "run").run())
    assert result.status.phase == "Succeeded", result.status.errors
    assert result.context["total"] == sum(range(1, 201)) * 2
    assert result.context["doubled"] == [2 * i for i in range(1, 201)]
    items = [r for r in result.attempts if r.item is not None]
    assert sorted(r.item for r in items if r.item is not None) == list(range(200))
    # Rounds: every item of round k finished before any item of round k+1 started.
    for k in range(1, 10):
        previous = [r for r in items if r.item is not None and r.item // 20 == k - 1]
        current = [r for r in items if r.item is not None and r.item // 20 == k]
        assert max(r.finished_at for r in previous) <= min(r.started_at for r in current)
    assert (tmp_path / "run" / "nodes" / SCATTER / "0.items" / "199.1" / "log.txt").is_file()


def test_local_runner_item_retry_and_failure(tmp_path: Path) -> None:
    source = "def run(ctx):\n    return {'output': [1, -1, 3]}\n"
    flow = batch_flow(config={"maxRetries": 2}, source=source)
    result = asyncio.run(LocalRunner(flow, tmp_path / "run").run())
    assert result.status.phase == "Failed"
    scatter = result.status.nodes[SCATTER]
    assert scatter.message is not None
    assert scatter.message.startswith("item 1 failed after 2")
    assert "bad item" in scatter.message
    assert [r.attempt for r in result.attempts if r.item == 1] == [1, 2]

    rescued = batch_flow(fallback=True, source=source)
    result = asyncio.run(LocalRunner(rescued, tmp_path / "run2").run())
    assert result.status.phase == "Succeeded"
    assert result.context["doubled"] == []
    assert result.context["rescue"] == "rescued"
