"""What nodes and expressions see: the flow's context, node inputs and expression scopes.

Why a module of its own: these are flowcraft's data rules (the context a node reads, the input
it gets, the scope a condition sees, what a batch adds), derived on demand from the snapshot
plus the outputs and writes the driver stores; the state transitions (``run``, ``routing``,
``builtin_nodes``, ``batch``) only decide *when* things happen. Everything here is a
deterministic function of (snapshot, outputs, writes), so a restarted driver computes the same
inputs and context: a node's input depends on the outputs of nodes that succeeded before it
first started (``seq <= input_seq``), so the same StartNode comes out after a restart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from flowcraft.contract import Write, apply_writes, item_key, result_key
from flowcraft.engine.batch import batch_id
from flowcraft.engine.graph import CompiledEdge, Expr, Graph
from flowcraft.engine.types import MissingOutputError
from flowcraft.model import UNDEFINED, Completion, NodeStatus


class Done(NamedTuple):
    """One success in the context's timeline: a node's current one, or an earlier loop
    iteration's (from the flow's history)."""

    node: str
    iteration: int
    seq: int
    taken_edges: list[int] | None
    writes: int | None
    action: str | None
    current: bool
    items: int | None = None  # a batch-scatter's item count


def resume_data(resume: Mapping[str, Any] | None, node_id: str) -> tuple[Any, str | None, bool]:
    """(output, action, present) of a wait node's resume data: flowcraft's resumeData is
    {output, action}; any other value is taken as the output."""
    if resume is None or node_id not in resume:
        return None, None, False
    data = resume[node_id]
    if isinstance(data, dict) and data and set(data) <= {"output", "action"}:
        action = data.get("action")
        return data.get("output"), action if isinstance(action, str) else None, True
    return data, None, True


class Values:
    """The derived-value half of one engine call (mixed into its working state)."""

    graph: Graph
    nodes: dict[str, NodeStatus]
    outputs: Mapping[str, Any]
    writes: Mapping[str, Sequence[Write]]
    fresh_outputs: dict[str, Any]
    fresh_writes: dict[str, Sequence[Write]]
    timeline_memo: list[Done] | None
    edge_memo: dict[tuple[int, int], Any]
    history: list[Completion]
    input_memo: dict[str, Any]
    context_memo: dict[int, dict[str, Any]]
    seq: int
    fresh_items: dict[str, Any]  # item key -> output of items that succeeded in this call
    gather_memo: dict[tuple[str, int], list[Any]]
    # The final context (Engine.context) also shows flowcraft's per-item batch keys; what
    # nodes see (inputs, conditions, views) does not.
    full: bool = False

    def output_of(self, node_id: str) -> Any:
        """The output of the node's current (latest) success."""
        if node_id in self.fresh_outputs:
            return self.fresh_outputs[node_id]
        ns = self.nodes[node_id]
        virtual = self.builtin_output(node_id, ns.action, ns.iteration or 0, None)
        if virtual is not _UNSET:
            return virtual
        key = result_key(node_id, ns.iteration or 0)
        try:
            return self.outputs[key]
        except KeyError:
            raise MissingOutputError(key) from None

    def builtin_output(
        self, node_id: str, action: str | None, iteration: int, context: Mapping[str, Any] | None
    ) -> Any:
        """The output of a built-in the engine runs itself (nothing stored), else _UNSET.

        loop-controller: undefined when it continues, null when it breaks (flowcraft's);
        wait: the resume data's output; sleep: its input (for an earlier iteration, the
        `_inputs` entry the context held for it)."""
        kind = self.graph.builtin.get(node_id)
        if kind == "loop-controller":
            return UNDEFINED if action == "continue" else None
        if kind == "wait":
            return resume_data(self.graph.spec.resume, node_id)[0]
        if kind == "sleep":
            if context is not None:
                return context.get(f"_inputs.{node_id}")
            return self.input_of(node_id)
        if kind == "batch-scatter":
            return scatter_output(self.graph.gather[node_id])
        if kind == "batch-gather":
            return gather_results(self, node_id, iteration)
        return _UNSET

    def writes_of(self, node_id: str, iteration: int | None = None) -> Sequence[Write]:
        current = iteration is None or iteration == (self.nodes[node_id].iteration or 0)
        if self.graph.builtin.get(node_id) == "batch-gather":
            it = self.nodes[node_id].iteration or 0 if current else iteration or 0
            return gather_writes(self, node_id, it)
        if current and node_id in self.fresh_writes:
            return self.fresh_writes[node_id]
        key = result_key(node_id, self.nodes[node_id].iteration or 0 if current else iteration or 0)
        try:
            return self.writes[key]
        except KeyError:
            raise MissingOutputError(key) from None

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

    def timeline(self) -> list[Done]:
        """Every success in completion order (earlier loop iterations included): the order
        the context is folded in."""
        if self.timeline_memo is None:
            done = [
                Done(c.node, c.iteration, c.seq, c.taken_edges, c.writes, c.action, False, c.items)
                for c in self.history
            ]
            done.extend(
                Done(
                    n,
                    ns.iteration or 0,
                    ns.seq,
                    ns.taken_edges,
                    ns.writes,
                    ns.action,
                    True,
                    ns.batch.total if ns.batch is not None else None,
                )
                for n, ns in self.nodes.items()
                if ns.phase == "Succeeded" and ns.seq is not None
            )
            done.sort(key=lambda d: d.seq)
            self.timeline_memo = done
        return self.timeline_memo

    def forget_views(self) -> None:
        """Drop derived values after the timeline or a routing decision changed."""
        self.timeline_memo = None
        self.context_memo.clear()
        self.input_memo.clear()
        self.edge_memo.clear()
        self.gather_memo.clear()

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
        for done in self.timeline():
            if done.seq > watermark:
                break
            for owner in reversed(self.owners(done.node)):
                context[f"_outputs.{owner}"] = None
                context[owner] = None
            scatter = self.full and done.items is not None
            if scatter:
                scatter_keys(self, done, context)
            if done.writes:
                apply_writes(context, self.writes_of(done.node, done.iteration))
            value = self.done_output(done, context)
            if value is UNDEFINED:
                # flowcraft stores undefined: the key exists but JSON leaves it out.
                context.pop(f"_outputs.{done.node}", None)
                context.pop(done.node, None)
            else:
                context[f"_outputs.{done.node}"] = value
                context[done.node] = value
            for index in done.taken_edges or ():
                if index >= 0:  # a negative index is a trigger: no `_inputs` (see routing.route)
                    self._apply_edge(self.graph.edges[index], done, context, effective)
            if scatter:
                item_keys(self, done, context)
        self.context_memo[watermark] = context
        return context

    def done_output(self, done: Done, context: Mapping[str, Any]) -> Any:
        if done.current:
            return self.output_of(done.node)
        virtual = self.builtin_output(done.node, done.action, done.iteration, context)
        if virtual is not _UNSET:
            return virtual
        key = result_key(done.node, done.iteration)
        try:
            return self.outputs[key]
        except KeyError:
            raise MissingOutputError(key) from None

    def _apply_edge(
        self, edge: CompiledEdge, done: Done, context: dict[str, Any], effective: dict[str, Any]
    ) -> None:
        """Set `_inputs.<target>` for a taken edge, as flowcraft does when it routes."""
        target = edge.target
        current = effective.get(target, self.graph.nodes[target].inputs)
        memo_key = (edge.index, done.seq)
        value = self.edge_memo.get(memo_key, _UNSET)
        if value is _UNSET:
            source_value = self.done_output(done, context)
            if source_value is UNDEFINED:
                source_value = None
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
            self.edge_memo[memo_key] = value
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
            if node_id not in self.graph.in_loop and not any(e.transform for _, e in applied):
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
                if index < 0:
                    continue  # a trigger carries no input
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


# -- what a batch adds to the context ------------------------------------------------------


def scatter_output(graph_gather: str) -> dict[str, Any]:
    """flowcraft's scatter output once every round is out: `{gatherNodeId, hasMore: false}`."""
    return {"gatherNodeId": graph_gather, "hasMore": False}


def scatter_of(values: Values, gather: str) -> str | None:
    for scatter, target in values.graph.gather.items():
        if target == gather:
            return scatter
    return None


def gather_results(values: Values, gather: str, iteration: int) -> list[Any]:
    """The gather's output: its scatter's item outputs in item order (the scatter's success
    of the same iteration; none when the scatter failed, e.g. recovered by a fallback)."""
    memo_key = (gather, iteration)
    cached = values.gather_memo.get(memo_key)
    if cached is not None:
        return cached
    scatter = scatter_of(values, gather)
    total = None if scatter is None else scatter_items(values, scatter, iteration)
    results: list[Any] = []
    if scatter is not None and total is not None:
        results = [item_output(values, scatter, iteration, i) for i in range(total)]
    values.gather_memo[memo_key] = results
    return results


def scatter_items(values: Values, scatter: str, iteration: int) -> int | None:
    """How many items the scatter's success in `iteration` ran (None: it did not succeed)."""
    ns = values.nodes[scatter]
    if (ns.iteration or 0) == iteration:
        if ns.phase == "Succeeded" and ns.batch is not None:
            return ns.batch.total
        return None
    for completion in values.history:
        if completion.node == scatter and completion.iteration == iteration:
            return completion.items
    return None


def item_output(values: Values, scatter: str, iteration: int, item: int) -> Any:
    key = item_key(scatter, iteration, item)
    if key in values.fresh_items:
        return values.fresh_items[key]
    try:
        return values.outputs[key]
    except KeyError:
        raise MissingOutputError(key) from None


def gather_writes(values: Values, gather: str, iteration: int) -> tuple[Write, ...]:
    key = values.graph.nodes[gather].params.get("outputKey")
    if not isinstance(key, str):
        return ()
    return ({"op": "set", "key": key, "value": gather_results(values, gather, iteration)},)


def scatter_keys(values: Values, done: Done, context: dict[str, Any]) -> None:
    """flowcraft's bookkeeping keys a scatter writes (final context only): each item under
    `_batch.<scatter>_<batchId>_item_<i>`, `<scatter>_currentIndex`, `<gather>_hasMore`,
    `<gather>_allWorkerIds`."""
    scatter = done.node
    total = done.items or 0
    if done.current:
        items = values.input_of(scatter)
    else:
        selector = values.graph.nodes[scatter].inputs
        items = context.get(f"_inputs.{scatter}") if selector is None else None
        if isinstance(selector, str):
            items = context.get(
                selector if selector.startswith("_") else f"_outputs.{selector}",
                context.get(selector),
            )
    items = items if isinstance(items, list) else [None] * total
    bid = batch_id(scatter, done.iteration)
    for i in range(total):
        context[f"_batch.{scatter}_{bid}_item_{i}"] = items[i] if i < len(items) else None
    gather = values.graph.gather[scatter]
    context[f"{scatter}_currentIndex"] = total
    context[f"{gather}_hasMore"] = False
    uses = values.graph.worker[scatter]
    context[f"{gather}_allWorkerIds"] = [f"{uses}_{bid}_{i}" for i in range(total)]


def item_keys(values: Values, done: Done, context: dict[str, Any]) -> None:
    """Each item's writes and `_outputs.<workerId>`/`<workerId>` (final context only), in
    item order, right after its scatter."""
    scatter = done.node
    prefix = f"{values.graph.worker[scatter]}_{batch_id(scatter, done.iteration)}_"
    for i in range(done.items or 0):
        key = item_key(scatter, done.iteration, i)
        apply_writes(context, values.writes.get(key))
        output = item_output(values, scatter, done.iteration, i)
        wid = f"{prefix}{i}"
        context[f"_outputs.{wid}"] = output
        context[wid] = output
