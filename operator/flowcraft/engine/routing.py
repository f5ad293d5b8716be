"""Routing and joins: which edges a success takes, and when a node may start.

Why a module of its own: this is the graph half of the engine's semantics (the package
docstring's "Routing" and "Joins"). Routing is decided once, when a node succeeds: the taken
edge indices are stored in `NodeStatus.taken_edges`; an edge is *taken* if in that list,
*dead* once its source (or the fallback standing in for it) resolved without taking it,
*failed* if the source's fallback chain ended in failure. Joins only read these facts, so a
restarted engine decides exactly as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from flowcraft.engine.graph import CompiledEdge
from flowcraft.engine.state import ACTIVE, RunState
from flowcraft.engine.types import REASON_NOT_ROUTED, REASON_UPSTREAM_FAILED
from flowcraft.engine.values import truthy
from flowcraft.model import ExpressionError, NodeStatus

EdgeState = Literal["taken", "dead", "failed", "pending"]


class Routing(RunState):
    """Routing a success over its outgoing edges, and resolving the joins it affects."""

    # -- routing a success ----------------------------------------------------------------

    def route(self, node_id: str, ns: NodeStatus) -> list[int]:
        """Edge indices taken: action edges first; the default (no-action) edges when the
        result names no action or none of its action edges passed its condition."""
        edges = [self.graph.edges[i] for i in self.graph.routes[node_id]]
        taken: list[int] = []
        if self.graph.builtin.get(node_id) == "loop-controller":
            # flowcraft routes a loop controller by its conditional edges first.
            taken = self._passing(node_id, ns, [e for e in edges if e.condition is not None])
        if not taken and ns.action is not None:
            taken = self._passing(node_id, ns, [e for e in edges if e.action == ns.action])
        if not taken:
            taken = self._passing(node_id, ns, [e for e in edges if e.action is None])
        if not taken:
            # flowcraft: a node that routed nowhere still starts successors none of whose
            # incoming edges has a condition (when their joins allow) — without handing them
            # an input. Recorded as -(index + 1): a trigger, not a data edge.
            taken = [
                -(e.index + 1) for e in edges if e.target not in self.graph.conditional_targets
            ]
        # Record the routing, then evaluate the taken edges' transforms now (in the context
        # as it stands after this node) so a broken transform fails the source, not the
        # target later.
        self.set(node_id, taken_edges=taken)
        self.forget_views()
        for index in taken:
            if index < 0:
                break  # triggers carry no data
            edge = self.graph.edges[index]
            if edge.transform is not None:
                try:
                    self.context_at(ns.seq or 0)
                except ExpressionError as exc:
                    raise ExpressionError(
                        exc.source, f"transform of edge {edge.label}: {exc.reason}"
                    ) from exc
                break
        return taken

    def _passing(self, node_id: str, ns: NodeStatus, edges: Iterable[CompiledEdge]) -> list[int]:
        taken: list[int] = []
        for edge in edges:
            if edge.condition is None:
                taken.append(edge.index)
                continue
            try:
                value = edge.condition.evaluate(self.condition_scope(edge.condition, node_id))
            except ExpressionError as exc:
                raise ExpressionError(
                    exc.source, f"condition of edge {edge.label}: {exc.reason}"
                ) from exc
            if edge.condition.language == "cel" and not isinstance(value, bool):
                raise ExpressionError(
                    edge.condition.source,
                    f"condition of edge {edge.label} must be true or false, "
                    f"got {type(value).__name__}",
                )
            if truthy(value):  # flowcraft: an edge is taken when its condition is truthy
                taken.append(edge.index)
        return taken

    # -- joins ----------------------------------------------------------------------------

    def edge_state(self, source: str, target: str) -> EdgeState:
        """Resolve (source -> target) through the source's fallback chain."""
        current = source
        while True:
            ns = self.nodes[current]
            phase = ns.phase
            if phase == "Succeeded":
                taken = ns.taken_edges or ()
                for index in taken:
                    edge = self.graph.edges[index if index >= 0 else -index - 1]
                    if edge.source == source and edge.target == target:
                        return "taken"
                # A loop controller runs again: an edge it did not take this time may be
                # taken later (a node it never reaches ends as NotReached, not skipped now).
                return "pending" if current in self.graph.loop_body else "dead"
            if phase in ACTIVE:
                return "pending"
            if phase == "Failed":
                fallback = self.graph.fallback.get(current)
                if fallback is None:
                    return "failed"
                current = fallback
                continue
            if phase == "Skipped" and ns.reason == REASON_UPSTREAM_FAILED:
                return "failed"
            return "dead"

    def check(self, node_id: str) -> None:
        ns = self.nodes[node_id]
        if ns.phase == "Succeeded" and node_id in self.graph.loop_body:
            # A loop controller runs again on every new arrival (flowcraft's `any` join).
            if self.arrived_since(node_id, ns.seq or 0):
                self.rearm(node_id)
            return
        if ns.phase != "Pending" or node_id in self.graph.owner:
            return
        states = [self.edge_state(s, node_id) for s in self.graph.sources[node_id]]
        # A loop controller is entered from outside and from its body: always an `any` join.
        if (
            self.graph.nodes[node_id].config.join_strategy == "any"
            or node_id in self.graph.loop_body
        ):
            if "taken" in states:
                self.ready.add(node_id)
            elif "pending" in states:
                return
            elif "failed" in states:
                self.skip(node_id, REASON_UPSTREAM_FAILED, "every predecessor failed or skipped")
            else:
                self.skip(node_id, REASON_NOT_ROUTED, "no incoming edge was taken")
            return
        if "failed" in states:
            sources = self.graph.sources[node_id]
            culprit = next(s for s, st in zip(sources, states, strict=True) if st == "failed")
            self.skip(node_id, REASON_UPSTREAM_FAILED, f"upstream node {culprit!r} failed")
        elif "pending" in states:
            return
        elif "taken" in states:
            self.ready.add(node_id)
        else:
            self.skip(node_id, REASON_NOT_ROUTED, "no incoming edge was taken")

    def drain_checks(self) -> None:
        while self.checks and not self.terminal:
            self.check(self.checks.popleft())

    def arrived_since(self, node_id: str, since: int) -> bool:
        """Whether a predecessor took an edge into `node_id` after completion `since`."""
        for source in self.graph.sources[node_id]:
            router = self.router(source)
            if router is None:
                continue
            rs = self.nodes[router]
            if (rs.seq or 0) <= since:
                continue
            for index in rs.taken_edges or ():
                edge = self.graph.edges[index if index >= 0 else -index - 1]
                if edge.source == source and edge.target == node_id:
                    return True
        return False
