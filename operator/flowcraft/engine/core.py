"""The Engine: (spec, status snapshot, events, now, outputs) -> (new snapshot, actions, wake).

Why a module of its own: this is the engine's public face, what drivers hold. See the package
docstring for the semantics. An Engine compiles the spec once (`graph`) and keeps an index of
the last snapshot it returned; each call builds a `run.Run` (the working state of one call)
and returns a new snapshot. Besides `start`/`advance`, it answers what drivers ask of a
snapshot: what runs, the StartNode to (re)issue, the keys to reload, the context and what a
node sees. Where the rest lives: `run` (one call: events, starts, settling), `routing` (edges
and joins), `builtin_nodes` (sleep, wait, loops), `batch` (batch items), `values` (context,
inputs, outputs), `state` (what those share).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from flowcraft.contract import ViewItem, Write, item_key, result_key
from flowcraft.engine.batch import item_input, running_items
from flowcraft.engine.graph import Graph
from flowcraft.engine.run import Run
from flowcraft.engine.state import VIRTUAL, Index
from flowcraft.engine.types import EngineError, Event, StartNode, Step
from flowcraft.model import (
    TERMINAL_FLOW_PHASES,
    UNDEFINED,
    ExpressionError,
    FlowSpec,
    FlowStatus,
    NodeStatus,
    format_timestamp,
)
from flowcraft.model.flow import ITEM_RUNNING, ITEM_SUCCEEDED


def _require_aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise EngineError("`now` must be timezone-aware (use datetime.now(UTC))")
    return now


class Engine:
    """The scheduling state machine for one FlowSpec (validated beforehand)."""

    def __init__(self, spec: FlowSpec) -> None:
        try:
            self.graph = Graph(spec)
        except ExpressionError as exc:
            raise EngineError(f"spec has an invalid expression (validate it first): {exc}") from exc
        except KeyError as exc:
            raise EngineError(f"spec refers to unknown node {exc} (validate it first)") from exc
        self.spec = spec
        # Derived from the last status this engine returned: (its node map, running count,
        # Retrying nodes). When a driver hands that same snapshot back, advance() skips a
        # scan over every node; any other status object (e.g. read back from JSON) is
        # scanned. Snapshots are values: callers must not mutate them in place.
        self._index: Index | None = None

    # -- public API -----------------------------------------------------------------------

    def start(self, now: datetime) -> Step:
        """A fresh Running status and the StartNode actions for the roots."""
        now = _require_aware(now)
        status = FlowStatus(
            phase="Running",
            started_at=now,
            nodes={node_id: NodeStatus() for node_id in self.graph.order},
        )
        run = Run(self.graph, status, now, {}, None)
        run.ready.update(self.graph.roots)
        return self._remember(run.finish(), run)

    def advance(
        self,
        status: FlowStatus,
        events: Sequence[Event],
        now: datetime,
        outputs: Mapping[str, Any],
        writes: Mapping[str, Sequence[Write]] | None = None,
    ) -> Step:
        """Apply `events` (in order) at time `now` and decide what happens next.

        `writes` maps node id -> that node's context writes, for succeeded nodes that wrote
        (their NodeStatus.writes > 0); like `outputs`, the driver stores them."""
        now = _require_aware(now)
        if status.phase == "Pending":
            return self.start(now)
        if status.phase in TERMINAL_FLOW_PHASES:
            return Step(status=status, actions=(), wake_at=None)
        index, self._index = self._index, None  # rebuilt below; a raise leaves none behind
        run = Run(self.graph, status, now, outputs, writes, index=index)
        for event in events:
            if run.terminal:
                break
            run.apply(event)
        if not run.terminal:
            run.check_deadline()
        if not run.terminal:
            run.collect_due_retries()
            run.batches.collect_due()
            run.wake_sleepers()
            run.resume_waiters()
        return self._remember(run.finish(), run)

    def _remember(self, step: Step, run: Run) -> Step:
        retrying = tuple(n for n in run.retrying if run.nodes[n].phase == "Retrying")
        self._index = Index(step.status.nodes, run.running, retrying, run.batches.lives)
        return step

    def running(self, status: FlowStatus) -> list[tuple[str, int]]:
        """(node, attempt) pairs the snapshot says are running, in spec order. A running
        batch-scatter is not listed (it runs nothing itself): see `running_items`."""
        return [
            (node_id, ns.attempts)
            for node_id in self.graph.order
            if (ns := status.nodes.get(node_id)) is not None
            and ns.phase == "Running"
            and node_id not in self.graph.scatters
        ]

    def running_items(self, status: FlowStatus) -> list[tuple[str, int, int, int]]:
        """(scatter, iteration, item, attempt) of every running batch item, in spec order
        then item order: what drivers observe and ensure, like `running`."""
        found: list[tuple[str, int, int, int]] = []
        for scatter in self.graph.scatters:
            ns = status.nodes.get(scatter)
            if ns is None or ns.phase != "Running" or ns.batch is None:
                continue
            batch = ns.batch
            iteration = ns.iteration or 0
            found.extend(
                (scatter, iteration, item, batch.attempt(item)) for item in running_items(batch)
            )
        return found

    def result_keys(self, status: FlowStatus) -> list[str]:
        """Every key under which a driver stored a result the snapshot's context needs: each
        success (result_key, earlier loop iterations included) and each succeeded batch item
        (item_key); what a resumed driver reloads. Built-ins the engine ran are included
        (they have no stored result: skip missing files)."""
        keys = [result_key(c.node, c.iteration) for c in status.history]
        for node_id, ns in status.nodes.items():
            if ns.phase == "Succeeded":
                keys.append(result_key(node_id, ns.iteration or 0))
        for c in status.history:
            if c.items:
                keys.extend(item_key(c.node, c.iteration, i) for i in range(c.items))
        for scatter in self.graph.scatters:
            ns = status.nodes[scatter]
            if ns.batch is not None:
                items = ns.batch.items
                iteration = ns.iteration or 0
                keys.extend(
                    item_key(scatter, iteration, i)
                    for i in range(len(items))
                    if items[i] == ITEM_SUCCEEDED
                )
        return keys

    def start_action(
        self,
        status: FlowStatus,
        node: str,
        outputs: Mapping[str, Any],
        writes: Mapping[str, Sequence[Write]] | None = None,
        *,
        item: int | None = None,
    ) -> StartNode:
        """The StartNode for a node the snapshot says is Running (same input as first issued),
        or for batch item `item` of scatter `node` that is running."""
        ns = status.nodes.get(node)
        if ns is None or ns.phase != "Running":
            phase = ns.phase if ns is not None else "unknown"
            raise EngineError(f"node {node!r} is not running (phase {phase})")
        run = Run(self.graph, status, status.started_at or _EPOCH, outputs, writes, copy=False)
        if item is not None or node in self.graph.scatters:
            batch = ns.batch
            if item is None or batch is None or not 0 <= item < batch.total:
                raise EngineError(f"node {node!r} is a batch-scatter: name a running item")
            if batch.items[item] != ITEM_RUNNING:
                raise EngineError(f"item {item} of {node!r} is not running")
            return StartNode(
                node=node,
                attempt=batch.attempt(item),
                input=item_input(run.input_of(node), item),
                timeout_seconds=self.graph.timeout_seconds(node),
                iteration=ns.iteration or 0,
                item=item,
                uses=self.graph.worker[node],
            )
        return StartNode(
            node=node,
            attempt=ns.attempts,
            input=run.input_of(node),
            timeout_seconds=self.graph.timeout_seconds(node),
            iteration=ns.iteration or 0,
        )

    def context(
        self,
        status: FlowStatus,
        outputs: Mapping[str, Any],
        writes: Mapping[str, Sequence[Write]] | None = None,
    ) -> dict[str, Any]:
        """The flow's context as flowcraft's `result.context` shows it: the initial context,
        then per completed node (in completion order) its writes, `_outputs.<id>`/`<id>`
        and `_inputs.<target>` of the edges it took (a node recovered by its fallback: null)."""
        run = Run(self.graph, status, status.started_at or _EPOCH, outputs, writes, copy=False)
        run.full = True  # with flowcraft's per-item batch keys
        context = dict(run.context_at(status.seq))
        # flowcraft keeps what a paused run waits for in the context itself.
        waiting = [
            (n, ns) for n, ns in status.nodes.items() if ns.phase in ("Awaiting", "Sleeping")
        ]
        if waiting:
            waiting.sort(key=lambda item: (item[1].started_at or _EPOCH, self.graph.order[item[0]]))
            context["_awaitingNodeIds"] = [n for n, _ in waiting]
            context["_awaitingDetails"] = {
                n: {"reason": "external_event"}
                if ns.phase == "Awaiting"
                else {"reason": "timer", "wakeUpAt": format_timestamp(ns.wake_at or _EPOCH)}
                for n, ns in waiting
            }
        return context

    def node_context(
        self,
        status: FlowStatus,
        node: str,
        outputs: Mapping[str, Any],
        writes: Mapping[str, Sequence[Write]] | None = None,
    ) -> dict[str, Any]:
        """The context as `node` sees it: as it stood when the node first started (the
        initial context plus what completed before), without its own `_inputs` entry."""
        run = Run(self.graph, status, status.started_at or _EPOCH, outputs, writes, copy=False)
        ns = status.nodes.get(node)
        watermark = ns.input_seq if ns is not None and ns.input_seq is not None else status.seq
        return dict(run.context_at(watermark))

    def view(
        self,
        status: FlowStatus,
        node: str,
        outputs: Mapping[str, Any] | None = None,
        writes: Mapping[str, Sequence[Write]] | None = None,
    ) -> list[ViewItem]:
        """What a starting node's runtime folds into its context, in order: every success
        before it first started (earlier loop iterations included; a node recovered by its
        fallback, null, just before the fallback). Stored results are named by their result
        key; built-ins the engine ran carry their output inline. With the initial context,
        this is everything the node can see. A stored result none of whose keys is visible
        any more (a later entry sets or removes them all, e.g. a later loop iteration of the
        same node) is left out: drivers mount exactly the results named here. `writes` lets
        that see a result's written keys (without it a result that wrote is kept); `outputs`
        is needed only when the view holds a sleep node (its inline output is its input)."""
        run = Run(
            self.graph, status, status.started_at or _EPOCH, outputs or {}, writes, copy=False
        )
        ns = status.nodes.get(node)
        watermark = ns.input_seq if ns is not None and ns.input_seq is not None else status.seq
        order: list[ViewItem] = []
        context: dict[str, Any] | None = None
        for done in run.timeline():
            if done.seq > watermark:
                break
            order.extend(ViewItem(o, inline=True) for o in reversed(run.owners(done.node)))
            kind = self.graph.builtin.get(done.node)
            if kind in VIRTUAL:
                if kind == "sleep" and context is None:
                    context = run.context_at(watermark)
                value = (
                    run.input_of(done.node)
                    if kind == "sleep" and done.current
                    else run.builtin_output(done.node, done.action, done.iteration, context)
                )
                if value is UNDEFINED:
                    order.append(ViewItem(done.node, undefined=True))
                else:
                    applied = tuple(run.writes_of(done.node, done.iteration)) if done.writes else ()
                    order.append(ViewItem(done.node, inline=True, value=value, applied=applied))
                continue
            key = result_key(done.node, done.iteration)
            order.append(ViewItem(done.node, key=key, wrote=bool(done.writes)))
        return _visible(order, run.writes)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _visible(order: list[ViewItem], writes: Mapping[str, Sequence[Write]]) -> list[ViewItem]:
    """``order`` without the stored results nothing of which is visible any more: every key a
    result contributes (``_outputs.<id>``, ``<id>`` and its writes) is set or removed again by
    a later entry, e.g. an earlier loop iteration of the same node. What a node mounts is what
    it can read; a result whose writes are not known is kept."""
    covered: set[str] = set()
    kept: list[ViewItem] = []
    for item in reversed(order):
        keys = {f"_outputs.{item.node}", item.node}
        if item.inline:
            keys.update(w.get("key") for w in item.applied if isinstance(w.get("key"), str))
        elif item.wrote:
            stored = writes.get(item.key or item.node)
            if stored is None:
                kept.append(item)
                covered |= keys
                continue
            keys.update(w["key"] for w in stored)
        if item.key is not None and not item.inline and keys <= covered:
            continue
        kept.append(item)
        covered |= keys
    kept.reverse()
    return kept
