"""Engine microbenchmark for batches: a 10,000-item batch driven to completion, one item
event per `advance` (the worst case: the operator calls the engine on every Job event).

Why: an item event must cost the same whether the batch has 100 or 10,000 items (the engine
indexes running and retrying items; only the status's one-character-per-item string is
copied per call). Only engine calls are timed. Also prints the status size in bytes.

Run: .venv/bin/python bench/batch_engine_bench.py [--items 10000]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flowcraft.contract import item_key
from flowcraft.engine import Engine, Event, NodeFailed, NodeSucceeded, StartNode
from flowcraft.model import FlowSpec, parse_flow


def batch_spec(chunk: int | None, parallelism: int | None, retries: int) -> FlowSpec:
    params: dict[str, Any] = {"workerUsesKey": "w", "outputKey": "out", "gatherNodeId": "b_g"}
    if chunk is not None:
        params["chunkSize"] = chunk
    spec: dict[str, Any] = {
        "nodes": [
            {"id": "start", "uses": "t"},
            {
                "id": "b_s",
                "uses": "batch-scatter",
                "inputs": "start",
                "params": params,
                "config": {"maxRetries": retries, "retryDelay": 5},
            },
            {"id": "b_g", "uses": "batch-gather", "params": {"outputKey": "out"}},
            {"id": "sum", "uses": "t"},
        ],
        "edges": [
            {"source": "start", "target": "b_s"},
            {"source": "b_s", "target": "b_g"},
            {"source": "b_g", "target": "sum"},
        ],
        "functions": {"t": {"script": "x = 1"}, "w": {"script": "x = 1"}},
    }
    if parallelism is not None:
        spec["parallelism"] = parallelism
    flow = {"apiVersion": "flowcraft.io/v1alpha1", "kind": "Flow", "metadata": {"name": "b"}}
    return parse_flow({**flow, "spec": spec}).spec


def run(items: int, chunk: int | None, parallelism: int | None, fail_every: int) -> str:
    engine = Engine(batch_spec(chunk, parallelism, 2 if fail_every else 1))
    now = datetime(2024, 1, 1, tzinfo=UTC)
    outputs: dict[str, Any] = {}
    running: dict[tuple[str, int | None], StartNode] = {}
    failed: set[int] = set()
    spent, calls, largest = 0.0, 0, 0
    began = time.perf_counter()
    step = engine.start(now)
    spent += time.perf_counter() - began
    while True:
        for action in step.actions:
            if isinstance(action, StartNode):
                running[(action.node, action.item)] = action
        if step.status.phase != "Running":
            break
        events: list[Event] = []
        if running:
            action = running.pop(next(iter(running)))
            now += timedelta(milliseconds=1)
            item = action.item
            if item is not None and fail_every and item % fail_every == 0 and item not in failed:
                failed.add(item)
                events.append(NodeFailed("b_s", action.attempt, now, "x", item=item))
            if not events:
                output = list(range(items)) if action.node == "start" else action.input
                key = action.node if action.item is None else item_key("b_s", 0, action.item)
                outputs[key] = output
                events.append(
                    NodeSucceeded(action.node, action.attempt, now, output=output, item=action.item)
                )
        else:
            assert step.wake_at is not None
            now = step.wake_at
        began = time.perf_counter()
        step = engine.advance(step.status, events, now, outputs)
        spent += time.perf_counter() - began
        calls += 1
        if calls % 500 == 0:
            largest = max(largest, len(json.dumps(step.status.to_dict()).encode()))
    size = len(json.dumps(step.status.to_dict()).encode())
    return (
        f"{step.status.phase}: engine {spent:.3f} s over {calls} advances "
        f"({spent / calls * 1e6:.1f} us each); status {size} B at the end, "
        f"largest sampled {largest} B"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    args = parser.parse_args()
    for chunk, parallelism, fail_every in [
        (None, None, 0),
        (100, None, 0),
        (None, 50, 0),
        (500, None, 2),
    ]:
        label = f"chunk={chunk} parallelism={parallelism} failEvery={fail_every}"
        print(f"{args.items} items, {label}: {run(args.items, chunk, parallelism, fail_every)}")


if __name__ == "__main__":
    main()
