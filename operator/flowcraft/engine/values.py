"""What nodes and expressions see: the flow's context, node inputs and expression scopes.

Why a module of its own: these are flowcraft's data rules (the context a node reads, the input
it gets, the scope a condition sees), derived on demand from the snapshot plus the outputs and
writes the driver stores; the state transitions in ``core`` only decide *when* things happen.
Everything here is a deterministic function of (snapshot, outputs, writes), so a restarted
driver computes the same inputs and context.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from flowcraft.contract import Write, apply_writes
from flowcraft.engine.graph import CompiledEdge, Expr, Graph
from flowcraft.engine.types import MissingOutputError
from flowcraft.model import UNDEFINED, NodeStatus


class Values:
    """The derived-value half of one engine call (mixed into its working state)."""

    graph: Graph
    nodes: dict[str, NodeStatus]
    outputs: Mapping[str, Any]
    writes: Mapping[str, Sequence[Write]]
    fresh_outputs: dict[str, Any]
    fresh_writes: dict[str, Sequence[Write]]
    timeline_memo: list[str] | None
    edge_memo: dict[int, Any]
    input_memo: dict[str, Any]
    context_memo: dict[int, dict[str, Any]]
    seq: int

    def output_of(self, node_id: str) -> Any:
        if node_id in self.fresh_outputs:
            return self.fresh_outputs[node_id]
        try:
            return self.outputs[node_id]
        except KeyError:
            raise MissingOutputError(node_id) from None

    def writes_of(self, node_id: str) -> Sequence[Write]:
        if node_id in self.fresh_writes:
            return self.fresh_writes[node_id]
        if not self.nodes[node_id].writes:
            return ()
        try:
            return self.writes[node_id]
        except KeyError:
            raise MissingOutputError(node_id) from None

    def router(self, node_id: str) -> str | None:
        """The node whose success decides `node_id`'s routing (itself or a fallback)."""
        current = node_id
        while True:
            ns = self.nodes[current]
            if ns.phase == "Succeeded":
                return current
            fallback = self.graph.fallback.get(current)
            if ns.phase != "Failed" or fallback is None:
                return None
            current = fallback

    def owners(self, router: str) -> list[str]:
        """The nodes a succeeded fallback stands in for, nearest first."""
        chain = []
        owner = self.graph.owner.get(router)
        while owner is not None:
            chain.append(owner)
            owner = self.graph.owner.get(owner)
        return chain

    def timeline(self) -> list[str]:
        """Succeeded nodes in completion order: the order the context is folded in."""
        if self.timeline_memo is None:
            done = [
                n for n, ns in self.nodes.items() if ns.phase == "Succeeded" and ns.seq is not None
            ]
            done.sort(key=lambda n: self.nodes[n].seq or 0)
            self.timeline_memo = done
        return self.timeline_memo

    def forget_views(self) -> None:
        """Drop derived values after the timeline or a routing decision changed."""
        self.timeline_memo = None
        self.context_memo.clear()
        self.input_memo.clear()
        self.edge_memo.clear()

    def context_at(self, watermark: int) -> dict[str, Any]:
        """The context after the first `watermark` completions (do not mutate it).

        flowcraft's order per completion: the node's writes, its output as `_outputs.<id>`
        and `<id>` (nodes it recovered as a fallback: null), then `_inputs.<target>` for
        each edge it took, computed in the context as it stands at that point.
        """
        cached = self.context_memo.get(watermark)
        if cached is not None:
            return cached
        context: dict[str, Any] = dict(self.graph.initial)
        effective: dict[str, Any] = {}
        for router in self.timeline():
            ns = self.nodes[router]
            if (ns.seq or 0) > watermark:
                break
            for owner in reversed(self.owners(router)):
                context[f"_outputs.{owner}"] = None
                context[owner] = None
            apply_writes(context, self.writes_of(router))
            value = self.output_of(router)
            context[f"_outputs.{router}"] = value
            context[router] = value
            for index in ns.taken_edges or ():
                self._apply_edge(self.graph.edges[index], router, context, effective)
        self.context_memo[watermark] = context
        return context

    def _apply_edge(
        self, edge: CompiledEdge, router: str, context: dict[str, Any], effective: dict[str, Any]
    ) -> None:
        """Set `_inputs.<target>` for a taken edge, as flowcraft does when it routes."""
        target = edge.target
        current = effective.get(target, self.graph.nodes[target].inputs)
        value = self.edge_memo.get(edge.index, _UNSET)
        if value is _UNSET:
            source_value = self.output_of(router)
            if edge.transform is not None:
                # flowcraft feeds a transform the target's `inputs` key instead of the
                # source's output when that key names something already in the context.
                if isinstance(current, str):
                    key = current if current.startswith("_") else f"_outputs.{current}"
                    if key in context and current != edge.source:
                        source_value = context[key]
                value = edge.transform.evaluate({"input": source_value, "context": context})
            else:
                value = source_value
            self.edge_memo[edge.index] = value
        key = f"_inputs.{target}"
        if value is UNDEFINED:
            context.pop(key, None)
        else:
            context[key] = value
        if current is None or edge.transform is not None:
            effective[target] = key

    def condition_scope(self, expr: Expr, router: str) -> dict[str, Any]:
        """flowcraft's condition scope: every context key, plus `result` and `context`."""
        ns = self.nodes[router]
        result = {"output": self.output_of(router), "action": ns.action}
        if not expr.needs_context:
            return {"result": result}
        context = self.context_at(ns.seq or 0)
        return {**context, "result": result, "context": context}

    def input_of(self, node_id: str) -> Any:
        if node_id in self.input_memo:
            return self.input_memo[node_id]
        value = self._compute_input(node_id)
        if value is UNDEFINED:
            value = None
        self.input_memo[node_id] = value
        return value

    def _compute_input(self, node_id: str) -> Any:
        """flowcraft's input: `_inputs.<id>` (the last taken edge's value) unless the node
        declares `inputs` and no transform edge replaced them; `inputs` read the context."""
        ns = self.nodes[node_id]
        watermark = ns.input_seq if ns.input_seq is not None else self.seq
        selector = self.graph.nodes[node_id].inputs
        applied = self._applied_edges(node_id, watermark)
        if applied and (selector is None or any(e.transform for _, e in applied)):
            router = applied[-1][0]
            if not any(e.transform for _, e in applied):
                return self.output_of(router)  # fast path: no context needed
            return self.context_at(watermark).get(f"_inputs.{node_id}")
        context = self.context_at(watermark)
        if selector is None:
            return context.get(f"_inputs.{node_id}")  # roots, fallbacks: initial context
        if isinstance(selector, str):
            return _lookup(context, selector)
        return {name: _lookup(context, key) for name, key in selector.items()}

    def _applied_edges(self, node_id: str, watermark: int) -> list[tuple[str, CompiledEdge]]:
        """(router, edge) of the taken edges into `node_id` within `watermark`, in the order
        flowcraft applies them (completion order, then edge order)."""
        found: list[tuple[int, int, str, CompiledEdge]] = []
        for source in self.graph.sources[node_id]:
            router = self.router(source)
            if router is None:
                continue
            rs = self.nodes[router]
            if rs.seq is None or rs.seq > watermark:
                continue
            for index in rs.taken_edges or ():
                edge = self.graph.edges[index]
                if edge.source == source and edge.target == node_id:
                    found.append((rs.seq, index, router, edge))
        found.sort(key=lambda item: (item[0], item[1]))
        return [(router, edge) for _, _, router, edge in found]


_UNSET = object()


def truthy(value: Any) -> bool:
    """JavaScript truthiness, which flowcraft applies to a condition's value."""
    if value is None or value is UNDEFINED or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return not math.isnan(value) and value != 0  # NaN and 0 are falsy
    if isinstance(value, str):
        return value != ""
    return True


def _lookup(context: Mapping[str, Any], key: str) -> Any:
    """flowcraft's `inputs` resolution: `_…` keys as is, else `_outputs.<key>`, else `<key>`."""
    if key.startswith("_"):
        return context.get(key)
    output_key = f"_outputs.{key}"
    if output_key in context:
        return context[output_key]
    return context.get(key)
