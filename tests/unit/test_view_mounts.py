"""What a node's pod mounts: exactly the stored results it can read (``Engine.view``), and a
large input from the ConfigMap that already holds it. A 300-node chain and a 300-iteration
loop stay within the API's limits."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from flowcraft.contract import result_key
from flowcraft.drivers.kubernetes import builders
from flowcraft.engine import Engine, NodeSucceeded, StartNode, Step
from flowcraft.model import FlowSpec, parse_flow

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 1, tzinfo=UTC)
FLOW = builders.FlowRef(name="f", namespace="ns", uid="0123456789abcdef")


def spec_of(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> FlowSpec:
    fns = {"task": {"script": "def run(ctx):\n    return None\n"}}
    doc = {"nodes": nodes, "edges": edges, "functions": fns}
    data = {"apiVersion": "flowcraft.io/v1alpha1", "kind": "Flow", "metadata": {"name": "t"}}
    return parse_flow({**data, "spec": doc}).spec


class Run:
    def __init__(self, spec: FlowSpec) -> None:
        self.spec = spec
        self.engine = Engine(spec)
        self.outputs: dict[str, Any] = {}
        self.writes: dict[str, Any] = {}
        self.step: Step = self.engine.start(T0)

    def ok(self, node: str, output: Any = None, **writes: Any) -> Step:
        ns = self.step.status.nodes[node]
        it = ns.iteration or 0
        self.outputs[result_key(node, it)] = output
        w = tuple({"op": "set", "key": k, "value": v} for k, v in writes.items())
        if w:
            self.writes[result_key(node, it)] = w
        event = NodeSucceeded(node, ns.attempts, T0, output=output, writes=w, iteration=it)
        self.step = self.engine.advance(self.step.status, [event], T0, self.outputs, self.writes)
        return self.step

    def view(self, node: str) -> list[Any]:
        return self.engine.view(self.step.status, node, self.outputs, self.writes)

    def job(self, node: str, input_value: Any = None) -> dict[str, Any]:
        order = tuple(self.view(node))
        cms = {i.key: f"out-{i.key.replace('/', '-')}" for i in order if i.key is not None}
        view = builders.View(
            order=order,
            configmaps=cms,
            input_key=builders.input_source(input_value, order, self.outputs),
        )
        spec_node = self.spec.node(node)
        fn = self.spec.functions[spec_node.uses]
        return builders.job_manifest(
            FLOW, spec_node, fn, 1, input_value, timeout_seconds=None, view=view, runner_image="r"
        )


def _sources(job: dict[str, Any]) -> list[dict[str, Any]]:
    volume = job["spec"]["template"]["spec"]["volumes"][0]
    return list(volume["projected"]["sources"])


def _mounted(job: dict[str, Any]) -> list[str]:
    return [s["configMap"]["name"] for s in _sources(job) if "configMap" in s]


def test_a_300_node_chain_mounts_each_nodes_ancestors_and_stays_small() -> None:
    ids = [f"step-{i:03d}" for i in range(300)]
    spec = spec_of(
        [{"id": i, "uses": "task"} for i in ids],
        [{"source": a, "target": b} for a, b in itertools.pairwise(ids)],
    )
    run = Run(spec)
    for i in ids[:-1]:
        run.ok(i, {"from": i})
    last = run.job(ids[-1], {"from": ids[-2]})
    assert _mounted(last) == [f"out-{i}" for i in ids[:-1]]  # 299: all it can read, in order
    # One pod template: 299 small projected sources, far below the API's 1.5 MiB object and
    # 3 MiB request limits, and a view annotation of a few KiB.
    size = len(json.dumps(last).encode())
    assert size < 120 * 1024, size
    view = json.loads(last["spec"]["template"]["metadata"]["annotations"][builders.ANN_VIEW])
    assert view == [{"id": i} for i in ids[:-1]]
    # A node in the middle mounts only what finished before it started: its ancestors.
    middle = Run(spec)
    for i in ids[:150]:
        middle.ok(i)
    assert _mounted(middle.job(ids[150])) == [f"out-{i}" for i in ids[:150]]


def loop_spec(limit: int) -> FlowSpec:
    return spec_of(
        [
            {"id": "init", "uses": "task"},
            {
                "id": "loop",
                "uses": "loop-controller",
                "params": {"condition": f"count < {limit}", "maxIterations": limit + 1},
            },
            {"id": "body", "uses": "task"},
            {"id": "done", "uses": "task"},
        ],
        [
            {"source": "init", "target": "loop"},
            {"source": "loop", "target": "body", "action": "continue"},
            {"source": "body", "target": "loop"},
            {"source": "loop", "target": "done", "action": "break"},
        ],
    )


def test_a_300_iteration_loop_mounts_only_the_results_still_visible() -> None:
    run = Run(loop_spec(300))
    run.ok("init", "ready", count=0, first=True)
    run.ok("body", "b0", count=1, kept="only iteration 0 wrote this")
    for i in range(1, 300):
        run.ok("body", f"b{i}", count=i + 1)
    order = run.view("done")
    stored = [i.key for i in order if i.key is not None]
    # init (its `first`), body's first iteration (its `kept`) and the last one: not 300.
    assert stored == ["init", "body", "body/299"]
    assert _mounted(run.job("done")) == ["out-init", "out-body", "out-body-299"]
    # What the node folds from the pruned view is the whole context.
    context = run.engine.context(run.step.status, run.outputs, run.writes)
    assert context["count"] == 300
    assert context["kept"] == "only iteration 0 wrote this"
    assert context["body"] == "b299"


def test_parallel_results_are_all_kept() -> None:
    spec = spec_of(
        [{"id": x, "uses": "task"} for x in ("s", "a", "b", "join")],
        [
            {"source": "s", "target": "a"},
            {"source": "s", "target": "b"},
            {"source": "a", "target": "join"},
            {"source": "b", "target": "join"},
        ],
    )
    run = Run(spec)
    run.ok("s", 1, k="s")
    run.ok("a", 2, k="a")  # overwrites s's only write, but s's output keys stay visible
    run.ok("b", 3)
    assert [i.key for i in run.view("join")] == ["s", "a", "b"]


def test_a_large_input_is_mounted_from_its_routers_configmap() -> None:
    spec = spec_of(
        [{"id": "big", "uses": "task"}, {"id": "next", "uses": "task"}],
        [{"source": "big", "target": "next"}],
    )
    run = Run(spec)
    blob = {"data": "x" * (700 * 1024)}
    step = run.ok("big", blob)
    (start,) = [a for a in step.actions if isinstance(a, StartNode)]
    job = run.job("next", start.input)
    annotations = job["spec"]["template"]["metadata"]["annotations"]
    assert builders.ANN_INPUT not in annotations
    assert sum(len(v) for v in annotations.values()) < 4096
    sources = _sources(job)
    (downward,) = [s["downwardAPI"] for s in sources if "downwardAPI" in s]
    assert "input.json" not in [i["path"] for i in downward["items"]]
    assert {
        "configMap": {"name": "out-big", "items": [{"key": "output.json", "path": "input.json"}]}
    } in sources


def test_a_small_or_different_input_stays_in_the_pod_template() -> None:
    spec = spec_of(
        [{"id": "a", "uses": "task"}, {"id": "b", "uses": "task"}],
        [{"source": "a", "target": "b"}],
    )
    run = Run(spec)
    run.ok("a", {"x": 1})
    order = run.view("b")
    assert builders.input_source({"x": 1}, order, run.outputs) is None  # small
    big = "y" * 20_000
    run.outputs["a"] = big
    assert builders.input_source(big, order, run.outputs) == "a"
    assert builders.input_source(big + "z", order, run.outputs) is None  # not a stored output
    run.outputs["a"] = [True] * 5000
    assert builders.input_source([1] * 5000, order, run.outputs) is None  # equal, not same JSON
