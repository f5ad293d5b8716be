"""The compiled, read-only view of a FlowSpec the engine consults on every event.

Why: adjacency, fallback links and compiled expressions are derived once per spec, so handling an
event costs time proportional to the node's edges, not to the size of the flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from flowcraft.model import BuiltinKind, EdgeSpec, FlowSpec, NodeSpec, compile_expression
from flowcraft.model.validation import DEFAULT_MAX_ITERATIONS, MAX_SLEEP_MS, duration_ms


class Expr(Protocol):
    """A compiled condition or transform, in either expression language."""

    @property
    def source(self) -> str: ...

    @property
    def language(self) -> str: ...

    @property
    def needs_context(self) -> bool: ...

    def evaluate(self, scope: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True)
class CompiledEdge:
    index: int
    source: str
    target: str
    action: str | None
    condition: Expr | None
    transform: Expr | None

    @property
    def label(self) -> str:
        return f"{self.source} -> {self.target}"


def _compile_edge(index: int, edge: EdgeSpec, language: str) -> CompiledEdge:
    def compiled(source: str | None) -> Expr | None:
        return compile_expression(source, language) if source is not None else None

    return CompiledEdge(
        index=index,
        source=edge.source,
        target=edge.target,
        action=edge.action,
        condition=compiled(edge.condition),
        transform=compiled(edge.transform),
    )


class Graph:
    """Adjacency by node id; `routes[n]` are the edges routed when `n` succeeds.

    For a fallback node the routes are its own outgoing edges followed by the ones it
    inherits from the node it stands in for (recursively along a fallback chain).
    """

    def __init__(self, spec: FlowSpec) -> None:
        self.spec = spec
        self.initial: dict[str, Any] = dict(spec.context or {})
        self.order: dict[str, int] = {node.id: i for i, node in enumerate(spec.nodes)}
        self.nodes: dict[str, NodeSpec] = {node.id: node for node in spec.nodes}
        self.edges: tuple[CompiledEdge, ...] = tuple(
            _compile_edge(i, edge, spec.expression_language) for i, edge in enumerate(spec.edges)
        )
        out: dict[str, list[int]] = {node_id: [] for node_id in self.order}
        incoming: dict[str, list[int]] = {node_id: [] for node_id in self.order}
        for edge in self.edges:
            out[edge.source].append(edge.index)
            incoming[edge.target].append(edge.index)
        self.out: dict[str, tuple[int, ...]] = {k: tuple(v) for k, v in out.items()}
        self.incoming: dict[str, tuple[int, ...]] = {k: tuple(v) for k, v in incoming.items()}
        # Distinct predecessors in edge order: the join looks at each source once.
        self.sources: dict[str, tuple[str, ...]] = {
            node_id: tuple(dict.fromkeys(self.edges[i].source for i in idx))
            for node_id, idx in self.incoming.items()
        }
        # owner -> fallback and fallback -> owner (validation: a fallback serves one node).
        self.fallback: dict[str, str] = {
            node.id: node.config.fallback for node in spec.nodes if node.config.fallback
        }
        self.owner: dict[str, str] = {fb: owner for owner, fb in self.fallback.items()}
        self.routes: dict[str, tuple[int, ...]] = {n: self._routes(n) for n in self.order}
        # Targets to re-examine when a node's routing resolves (own and inherited edges).
        self.route_targets: dict[str, tuple[str, ...]] = {
            n: tuple(dict.fromkeys(self.edges[i].target for i in r)) for n, r in self.routes.items()
        }
        # Nodes with a conditional incoming edge: flowcraft never triggers them without data.
        self.conditional_targets: frozenset[str] = frozenset(
            e.target for e in self.edges if e.condition is not None
        )
        # Built-in node types, and what the engine needs to run loops and sleeps itself.
        self.builtin: dict[str, BuiltinKind] = {
            node.id: kind for node in spec.nodes if (kind := spec.builtin(node)) is not None
        }
        self.loop_condition: dict[str, Expr] = {}
        self.loop_limit: dict[str, int] = {}
        self.loop_body: dict[str, frozenset[str]] = {}
        for node_id, kind in self.builtin.items():
            if kind != "loop-controller":
                continue
            params = self.nodes[node_id].params
            self.loop_condition[node_id] = compile_expression(
                str(params.get("condition", "")), spec.expression_language
            )
            self.loop_limit[node_id] = int(params.get("maxIterations", DEFAULT_MAX_ITERATIONS))
            self.loop_body[node_id] = self._body(node_id)
        self.in_loop: frozenset[str] = frozenset().union(*self.loop_body.values())
        # Batches: scatter -> its worker function, gather and chunk size (None: all items).
        self.scatters: tuple[str, ...] = tuple(
            n for n in self.order if self.builtin.get(n) == "batch-scatter"
        )
        self.worker: dict[str, str] = {}
        self.gather: dict[str, str] = {}
        self.chunk: dict[str, int | None] = {}
        for node_id in self.scatters:
            params = self.nodes[node_id].params
            self.worker[node_id] = str(params.get("workerUsesKey", ""))
            self.gather[node_id] = str(params.get("gatherNodeId", ""))
            chunk = params.get("chunkSize")
            self.chunk[node_id] = chunk if isinstance(chunk, int) and chunk > 0 else None
        # Roots start with the flow; a fallback node only ever runs in place of its owner.
        self.roots: tuple[str, ...] = tuple(
            n for n in self.order if not self.incoming[n] and n not in self.owner
        )
        if not self.roots and self.loop_body:
            # Every node is in a cycle: like flowcraft, enter through the loops.
            self.roots = tuple(n for n in self.order if n in self.loop_body)

    def _routes(self, node_id: str) -> tuple[int, ...]:
        routes = list(self.out[node_id])
        seen = {node_id}
        current = node_id
        while current in self.owner and self.owner[current] not in seen:
            current = self.owner[current]
            seen.add(current)
            routes.extend(self.out[current])
        return tuple(dict.fromkeys(routes))

    def _body(self, controller: str) -> frozenset[str]:
        """The nodes a loop re-runs: everything reachable from its `continue` target without
        passing through a loop controller (flowcraft resets these on each iteration)."""
        start = next(
            (e.target for e in self.edges if e.source == controller and e.action == "continue"),
            None,
        )
        if start is None:
            return frozenset()
        body = {start}
        stack = [start]
        while stack:
            current = stack.pop()
            for index in self.out[current]:
                target = self.edges[index].target
                if target in body or self.builtin.get(target) == "loop-controller":
                    continue
                body.add(target)
                stack.append(target)
        return frozenset(body)

    def sleep_ms(self, node_id: str) -> float:
        """A sleep node's duration in milliseconds (validated: a number or 5s/10m/1h/2d)."""
        duration = self.nodes[node_id].params.get("duration")
        ms = duration_ms(duration) if duration is not None else 0.0
        if ms is None:
            raise ValueError(f"invalid duration {duration!r}")
        return min(ms, MAX_SLEEP_MS)

    def timeout_seconds(self, node_id: str) -> float | None:
        timeout = self.nodes[node_id].config.timeout
        return timeout / 1000.0 if timeout is not None else None
