"""Flow manifests for the cluster benchmarks: layered DAGs (chains, diamonds, fan-out/fan-in).

Why layers: every shape the benchmarks need is a sequence of layers where each node depends
on every node of the previous layer. Width-1 runs are chains, ``1 -> w -> 1`` is a diamond,
``1 -> 1000 -> 1`` is the big fan-out/fan-in. Knowing each node's predecessors lets the
driver pair "dependency finished" with "dependent Job created" without asking the operator.

The function is a one-line script: on kwok no container runs (kwok marks the pod Succeeded
with an empty termination message, which the runtime contract reads as output ``null``).
"""

from __future__ import annotations

from typing import Any

# 20 nodes: chains of 1-wide layers with diamonds (1 -> 3 -> 1, 1 -> 2 -> 1) between them.
MIX_20 = (1, 1, 1, 3, 1, 1, 2, 1, 1, 3, 1, 1, 2, 1)
# 10 nodes: a diamond, a chain, a smaller diamond.
MIX_10 = (1, 3, 1, 1, 2, 1, 1)

FUNCTIONS = {"ok": {"script": "def run(ctx):\n    return 1\n"}}


def node_id(layer: int, index: int) -> str:
    return f"l{layer}-{index}"


def layered(name: str, widths: tuple[int, ...] | list[int]) -> dict[str, Any]:
    """A Flow whose layer k has ``widths[k]`` nodes, each depending on all of layer k-1."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for layer, width in enumerate(widths):
        for index in range(width):
            nodes.append({"id": node_id(layer, index), "uses": "ok"})
            if layer:
                for prev in range(widths[layer - 1]):
                    edges.append(
                        {"source": node_id(layer - 1, prev), "target": node_id(layer, index)}
                    )
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name, "labels": {"flowcraft.io/bench": "true"}},
        "spec": {"functions": FUNCTIONS, "nodes": nodes, "edges": edges},
    }


def predecessors(flow: dict[str, Any]) -> dict[str, list[str]]:
    """node id -> ids of the nodes it depends on (roots map to [])."""
    out: dict[str, list[str]] = {n["id"]: [] for n in flow["spec"]["nodes"]}
    for edge in flow["spec"]["edges"]:
        out[edge["target"]].append(edge["source"])
    return out


def chain(name: str, length: int) -> dict[str, Any]:
    return layered(name, [1] * length)


def fan(name: str, width: int) -> dict[str, Any]:
    """1 -> width -> 1."""
    return layered(name, (1, width, 1))


def batch(
    name: str, items: int, chunk: int | None = None, parallelism: int | None = None
) -> dict[str, Any]:
    """1 -> a batch of ``items`` -> gather -> 1: ``start`` -> ``work_scatter`` (runs ``ok``
    once per item) -> ``work_gather`` -> ``end``.

    The items come from the initial context (``spec.context.items``), not from ``start``'s
    output: on kwok no container runs, so every output is null.
    """
    params: dict[str, Any] = {
        "workerUsesKey": "ok",
        "outputKey": "results",
        "gatherNodeId": "work_gather",
    }
    if chunk is not None:
        params["chunkSize"] = chunk
    spec: dict[str, Any] = {
        "functions": FUNCTIONS,
        "context": {"items": list(range(items))},
        "nodes": [
            {"id": "start", "uses": "ok"},
            {"id": "work_scatter", "uses": "batch-scatter", "inputs": "items", "params": params},
            {
                "id": "work_gather",
                "uses": "batch-gather",
                "params": {"outputKey": "results", "gatherNodeId": "work_gather"},
            },
            {"id": "end", "uses": "ok"},
        ],
        "edges": [
            {"source": "start", "target": "work_scatter"},
            {"source": "work_scatter", "target": "work_gather"},
            {"source": "work_gather", "target": "end"},
        ],
    }
    if parallelism is not None:
        spec["parallelism"] = parallelism
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name, "labels": {"flowcraft.io/bench": "true"}},
        "spec": spec,
    }


REAL_FUNCTIONS = {
    "items": {"script": "def run(ctx):\n    return list(range(ctx.input or 0))\n"},
    "double": {"script": "def run(ctx):\n    return ctx.input * 2\n"},
    "total": {"script": "def run(ctx):\n    return sum(ctx.input)\n"},
}


def batch_real(name: str, items: int, chunk: int | None = None) -> dict[str, Any]:
    """Real pods: ``start`` returns [0..items-1], each item is doubled, ``end`` sums the
    gathered list (expected output: items * (items - 1))."""
    flow = batch(name, items, chunk)
    spec = flow["spec"]
    spec["functions"] = REAL_FUNCTIONS
    spec.pop("context")
    nodes = {n["id"]: n for n in spec["nodes"]}
    nodes["start"].update(uses="items", params={})
    spec["context"] = {"n": items}
    nodes["start"]["inputs"] = "n"
    nodes["work_scatter"]["inputs"] = "start"
    nodes["work_scatter"]["params"]["workerUsesKey"] = "double"
    nodes["end"].update(uses="total", inputs="results")
    return flow
