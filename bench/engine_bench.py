"""Engine microbenchmark: microseconds of engine work per node transition.

Why: the operator calls the engine on every Job event; engine time must stay far below the
tens of milliseconds budgeted from "dependency succeeded" to "next Job created", even for
large flows. A random 1,000-node DAG runs to completion with a simulated driver that
completes one running node per `advance` (the worst case: one call per event). Only the
engine calls are timed. A node transition is one node going Pending -> Running -> Succeeded
(one completion event, its routing, and the starts it unlocks).

Run: .venv/bin/python bench/engine_bench.py [--nodes 1000] [--runs 5] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flowcraft.engine import Engine, NodeSucceeded, StartNode
from flowcraft.model import FlowSpec, parse_flow


def random_dag(nodes: int, seed: int, max_fan_in: int = 3) -> FlowSpec:
    """Each node draws up to `max_fan_in` predecessors among earlier nodes (so ~1.5k edges)."""
    rng = random.Random(seed)
    edges = []
    for j in range(1, nodes):
        for i in rng.sample(range(max(0, j - 50), j), k=min(j, rng.randint(0, max_fan_in))):
            edges.append({"source": f"n{i}", "target": f"n{j}"})
    return parse_flow(
        {
            "apiVersion": "flowcraft.io/v1alpha1",
            "kind": "Flow",
            "metadata": {"name": "bench"},
            "spec": {
                "nodes": [{"id": f"n{i}", "uses": "task"} for i in range(nodes)],
                "edges": edges,
                "functions": {"task": {"script": "def run(ctx): return 1"}},
            },
        }
    ).spec


def run_once(spec: FlowSpec, seed: int) -> tuple[float, int, int]:
    """Returns (engine seconds, node transitions, advance calls)."""
    rng = random.Random(seed)
    engine = Engine(spec)
    now = datetime(2024, 1, 1, tzinfo=UTC)
    outputs: dict[str, Any] = {}
    running: list[tuple[str, int]] = []
    spent = 0.0
    calls = 0

    began = time.perf_counter()
    step = engine.start(now)
    spent += time.perf_counter() - began
    while True:
        running.extend((a.node, a.attempt) for a in step.actions if isinstance(a, StartNode))
        if step.status.phase != "Running":
            break
        node, attempt = running.pop(rng.randrange(len(running)))
        now += timedelta(milliseconds=1)
        outputs[node] = {"node": node}
        event = NodeSucceeded(node, attempt, now, output=outputs[node], output_ref=f"cm/{node}")
        began = time.perf_counter()
        step = engine.advance(step.status, [event], now, outputs)
        spent += time.perf_counter() - began
        calls += 1
    if step.status.phase != "Succeeded":
        raise SystemExit(f"benchmark flow ended {step.status.phase}: {step.status.errors}")
    return spent, len(spec.nodes), calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    spec = random_dag(args.nodes, args.seed)
    per_transition = []
    total_ms = []
    for run in range(args.runs):
        spent, transitions, _calls = run_once(spec, args.seed + run)
        per_transition.append(spent / transitions * 1e6)
        total_ms.append(spent * 1e3)
    median = statistics.median(per_transition)
    print(
        f"engine: {median:.1f} us per node transition (median of {args.runs} runs; "
        f"{args.nodes} nodes, {len(spec.edges)} edges, one advance() per completion, "
        f"whole flow {statistics.median(total_ms):.1f} ms; "
        f"runs: {', '.join(f'{v:.1f}' for v in per_transition)} us)"
    )


if __name__ == "__main__":
    main()
