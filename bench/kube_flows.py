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
