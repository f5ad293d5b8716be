"""Engine microbenchmark: microseconds of engine work per node transition.

Why: the operator calls the engine on every pass; engine time must stay far below the tens of
milliseconds budgeted from "dependency succeeded" to "next Job created", even for large flows.
A random DAG (1,000 nodes by default) runs to completion with a simulated driver that
completes one running node per `advance` (the worst case: one call per event). A node
transition is one node going Pending -> Running -> Succeeded (one completion event, its
routing, and the starts it unlocks).

Two paths are measured, because the operator takes the slow one:

- **real** (what the operator does): every step's status goes through the API's shape and
  back — `model_dump(mode="json", by_alias=True, exclude_none=True)` and `json.dumps` (the
  status write), `json.loads` and `FlowStatus.model_validate` (the next pass reads the Flow
  its own write produced) — and `advance` gets that freshly parsed object, so the engine
  cannot reuse the index it derived from the snapshot it returned and scans every node.
  The three parts are timed separately (dump, parse, advance).
- **fast**: `advance` gets back the very snapshot it returned (the local runner's path;
  the engine then skips the scan).

Run: .venv/bin/python bench/engine_bench.py [--nodes 1000] [--runs 5] [--seed 1]
     [--path real,fast]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flowcraft.engine import Engine, NodeSucceeded, StartNode
from flowcraft.model import FlowSpec, FlowStatus, parse_flow


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


def _timed(spent: dict[str, float], part: str, fn: Callable[[], Any]) -> Any:
    began = time.perf_counter()
    out = fn()
    spent[part] = spent.get(part, 0.0) + time.perf_counter() - began
    return out


def run_once(spec: FlowSpec, seed: int, real: bool) -> tuple[dict[str, float], int, int]:
    """Returns (seconds per part, node transitions, advance calls). Parts: ``advance``, and
    on the real path ``dump`` (status -> JSON text) and ``parse`` (JSON text -> FlowStatus)."""
    rng = random.Random(seed)
    engine = Engine(spec)
    now = datetime(2024, 1, 1, tzinfo=UTC)
    outputs: dict[str, Any] = {}
    running: list[tuple[str, int]] = []
    spent: dict[str, float] = {}
    calls = 0

    step = _timed(spent, "advance", lambda: engine.start(now))
    while True:
        running.extend((a.node, a.attempt) for a in step.actions if isinstance(a, StartNode))
        if step.status.phase != "Running":
            break
        status = step.status
        if real:
            text = _timed(
                spent,
                "dump",
                lambda s=status: json.dumps(
                    s.model_dump(mode="json", by_alias=True, exclude_none=True)
                ),
            )
            status = _timed(spent, "parse", lambda t=text: FlowStatus.model_validate(json.loads(t)))
        node, attempt = running.pop(rng.randrange(len(running)))
        now += timedelta(milliseconds=1)
        outputs[node] = {"node": node}
        event = NodeSucceeded(node, attempt, now, output=outputs[node], output_ref=f"cm/{node}")
        step = _timed(
            spent,
            "advance",
            lambda s=status, e=event, t=now: engine.advance(s, [e], t, outputs),
        )
        calls += 1
    if step.status.phase != "Succeeded":
        raise SystemExit(f"benchmark flow ended {step.status.phase}: {step.status.errors}")
    return spent, len(spec.nodes), calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--path", default="real,fast", help="real, fast or both (real,fast)")
    args = parser.parse_args()

    spec = random_dag(args.nodes, args.seed)
    print(
        f"engine: {args.nodes} nodes, {len(spec.edges)} edges, one advance() per completion, "
        f"median of {args.runs} runs (us per node transition)"
    )
    for path in args.path.split(","):
        per_part: dict[str, list[float]] = {}
        total_ms = []
        for run in range(args.runs):
            spent, transitions, _calls = run_once(spec, args.seed + run, path == "real")
            for part, seconds in spent.items():
                per_part.setdefault(part, []).append(seconds / transitions * 1e6)
            total_ms.append(sum(spent.values()) * 1e3)
        totals = [sum(v) for v in zip(*per_part.values(), strict=True)]
        parts = ", ".join(
            f"{part} {statistics.median(v):.1f}" for part, v in sorted(per_part.items())
        )
        print(
            f"  {path:<4}: {statistics.median(totals):.1f} us per node transition ({parts}); "
            f"whole flow {statistics.median(total_ms):.1f} ms; "
            f"runs: {', '.join(f'{v:.1f}' for v in totals)} us"
        )


if __name__ == "__main__":
    main()
