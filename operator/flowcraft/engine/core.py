"""The Engine: (spec, status snapshot, events, now, outputs) -> (new snapshot, actions, wake).

See the package docstring for the semantics. Implementation notes:

* The snapshot is copy-on-write: `advance` copies the node map (cheap, shallow) and replaces
  each NodeStatus it changes with a copy, so the status passed in is never mutated.
* Routing is decided once, when a node succeeds: the taken edge indices are stored in
  `NodeStatus.taken_edges`; an edge is *taken* if in that list, *dead* once its source (or
  the fallback standing in for it) resolved without taking it, *failed* if the source's
  fallback chain ended in failure. Joins only read these facts.
* Inputs are recomputed on demand from the snapshot and `outputs`: a node's input depends on
  the outputs of nodes that succeeded before it first started (`seq <= input_seq`), so the
  same StartNode comes out after a restart.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

from flowcraft.contract import ViewItem, Write, item_key, result_key
from flowcraft.engine.batch import Batches, Live, item_input, running_items
from flowcraft.engine.graph import CompiledEdge, Graph
from flowcraft.engine.types import (
    Action,
    CancelFlow,
    CancelNode,
    EngineError,
    Event,
    NodeStarted,
    NodeSucceeded,
    StartNode,
    Step,
)
from flowcraft.engine.values import Done, Values, resume_data, truthy
from flowcraft.model import (
    TERMINAL_FLOW_PHASES,
    UNDEFINED,
    Completion,
    ExpressionError,
    FlowSpec,
    FlowStatus,
    NodeStatus,
    format_timestamp,
)
from flowcraft.model.flow import (
    ITEM_RUNNING,
    ITEM_SUCCEEDED,
    append_error,
    bound_message,
    error_count,
    node_message_limit,
)

# Machine-readable NodeStatus.reason values.
REASON_ERROR = "Error"
REASON_TIMEOUT = "Timeout"
REASON_ROUTING = "RoutingError"
REASON_INPUT = "InputError"
REASON_NOT_ROUTED = "NotRouted"
REASON_UPSTREAM_FAILED = "UpstreamFailed"
REASON_FALLBACK_NOT_NEEDED = "FallbackNotNeeded"
REASON_RECOVERED = "Recovered"
REASON_FLOW_FAILED = "FlowFailed"
REASON_FLOW_CANCELLED = "FlowCancelled"
REASON_DEADLINE = "DeadlineExceeded"

REASON_NOT_REACHED = "NotReached"
REASON_LOOP_LIMIT = "MaxIterations"

_ACTIVE: frozenset[str] = frozenset({"Pending", "Running", "Retrying", "Sleeping", "Awaiting"})

EdgeState = Literal["taken", "dead", "failed", "pending"]

# Built-ins the engine runs itself: their outputs are derived, never stored by a driver.
_VIRTUAL: frozenset[str | None] = frozenset(
    {"sleep", "wait", "loop-controller", "batch-scatter", "batch-gather"}
)


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
        self._index: _Index | None = None

    # -- public API -----------------------------------------------------------------------

    def start(self, now: datetime) -> Step:
        """A fresh Running status and the StartNode actions for the roots."""
        now = _require_aware(now)
        status = FlowStatus(
            phase="Running",
            started_at=now,
            nodes={node_id: NodeStatus() for node_id in self.graph.order},
        )
        run = _Run(self, status, now, {}, None)
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
        run = _Run(self, status, now, outputs, writes, index=index)
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

    def _remember(self, step: Step, run: _Run) -> Step:
        retrying = tuple(n for n in run.retrying if run.nodes[n].phase == "Retrying")
        self._index = _Index(step.status.nodes, run.running, retrying, run.batches.lives)
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
        run = _Run(self, status, status.started_at or _EPOCH, outputs, writes, copy=False)
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
        run = _Run(self, status, status.started_at or _EPOCH, outputs, writes, copy=False)
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
        run = _Run(self, status, status.started_at or _EPOCH, outputs, writes, copy=False)
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
        run = _Run(self, status, status.started_at or _EPOCH, outputs or {}, writes, copy=False)
        ns = status.nodes.get(node)
        watermark = ns.input_seq if ns is not None and ns.input_seq is not None else status.seq
        order: list[ViewItem] = []
        context: dict[str, Any] | None = None
        for done in run.timeline():
            if done.seq > watermark:
                break
            order.extend(ViewItem(o, inline=True) for o in reversed(run.owners(done.node)))
            kind = self.graph.builtin.get(done.node)
            if kind in _VIRTUAL:
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


class _Index(NamedTuple):
    nodes: dict[str, NodeStatus]
    running: int
    retrying: tuple[str, ...]
    lives: dict[str, Live]  # running scatters' working indexes (mutated by the next call)


class _Run(Values):
    """Working state of one engine call: a copy-on-write snapshot plus the actions so far."""

    def __init__(
        self,
        engine: Engine,
        status: FlowStatus,
        now: datetime,
        outputs: Mapping[str, Any],
        writes: Mapping[str, Sequence[Write]] | None,
        *,
        copy: bool = True,
        index: _Index | None = None,
    ) -> None:
        self.graph = engine.graph
        self.spec = engine.spec
        self.now = now
        self.outputs = outputs
        self.writes: Mapping[str, Sequence[Write]] = writes or {}
        self.fresh_outputs: dict[str, Any] = {}
        self.fresh_writes: dict[str, Sequence[Write]] = {}
        self.history: list[Completion] = list(status.history)
        self.timeline_memo: list[Done] | None = None
        self.edge_memo: dict[tuple[int, int], Any] = {}
        self.original = status
        self.nodes: dict[str, NodeStatus] = dict(status.nodes) if copy else status.nodes
        self.errors = list(status.errors)
        self.seq = status.seq
        self.phase = status.phase
        self.message = status.message
        self.finished_at = status.finished_at
        self.actions: list[Action] = []
        self.ready: set[str] = set(status.queue)
        self.checks: deque[str] = deque()
        self.input_memo: dict[str, Any] = {}
        self.context_memo: dict[int, dict[str, Any]] = {}
        self.fresh_items: dict[str, Any] = {}
        self.gather_memo: dict[tuple[str, int], list[Any]] = {}
        self.running = 0
        self.retrying: list[str] = []
        self.sleeping: list[str] = [
            n for n, k in self.graph.builtin.items() if k == "sleep" and n in self.nodes
        ]
        self.awaiting: list[str] = [
            n for n, k in self.graph.builtin.items() if k == "wait" and n in self.nodes
        ]
        lives: dict[str, Live] | None = None
        if index is not None and index.nodes is status.nodes:
            self.running = index.running
            self.retrying = list(index.retrying)
            lives = index.lives
        elif copy:
            if self.nodes.keys() != self.graph.order.keys():
                raise EngineError(_mismatch(self.nodes.keys(), self.graph.order.keys()))
            scatters = self.graph.scatters
            for node_id, ns in self.nodes.items():
                if ns.phase == "Running" and node_id not in scatters:
                    self.running += 1
                elif ns.phase == "Retrying":
                    self.retrying.append(node_id)
        self.batches = Batches(self, lives if copy else {})

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_FLOW_PHASES

    def set(self, node_id: str, **changes: Any) -> NodeStatus:
        old = self.nodes[node_id]
        message = changes.get("message")
        if message is not None:
            changes["message"] = bound_message(message, node_message_limit(len(self.nodes)))
        new = old.model_copy(update=changes)
        if node_id in self.graph.scatters:
            pass  # a scatter takes no slot itself: its items do (self.batches.running)
        elif old.phase == "Running" and new.phase != "Running":
            self.running -= 1
        elif old.phase != "Running" and new.phase == "Running":
            self.running += 1
        if new.phase == "Retrying" and old.phase != "Retrying":
            self.retrying.append(node_id)
        self.nodes[node_id] = new
        return new

    # -- events ---------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        if isinstance(event, CancelFlow):
            self.stop("Cancelled", REASON_FLOW_CANCELLED, f"cancelled: {event.reason}")
            return
        if isinstance(event, NodeStarted):
            return  # informational: startedAt is set when the engine issues StartNode
        if event.item is not None:
            self.batches.apply(event)
            return
        ns = self.nodes.get(event.node)
        if (
            ns is None
            or ns.phase != "Running"
            or ns.attempts != event.attempt
            or (ns.iteration or 0) != event.iteration
        ):
            return  # duplicate or stale: already applied, other attempt/iteration, not running
        if isinstance(event, NodeSucceeded):
            self.succeed(event)
        else:
            self.fail(event.node, event.attempt, event.at, event.message, event.timed_out)

    def succeed(self, event: NodeSucceeded) -> None:
        node_id = event.node
        if self.graph.builtin.get(node_id) not in _VIRTUAL:
            self.fresh_outputs[node_id] = event.output
        self.fresh_writes[node_id] = event.writes
        seq = self.seq + 1
        ns = self.set(
            node_id,
            phase="Succeeded",
            finished_at=event.at,
            output_ref=event.output_ref,
            action=event.action,
            retry_at=None,
            message=None,
            reason=None,
            seq=seq,
            writes=len(event.writes) or None,
        )
        self.seq = seq
        self.forget_views()
        try:
            self.route(node_id, ns)
        except ExpressionError as exc:
            # The node ran but its routing cannot be decided: a final failure of the node.
            # outputRef is dropped too: a Failed node's output is not part of the context.
            self.set(
                node_id,
                phase="Failed",
                seq=None,
                output_ref=None,
                action=None,
                reason=REASON_ROUTING,
                message=str(exc),
                taken_edges=None,
                writes=None,
            )
            # Take back the sequence number so no context view includes this output.
            self.seq = seq - 1
            self.forget_views()
            self.final_failure(node_id, f"routing failed: {exc}")
            return
        owner = self.graph.owner.get(node_id)
        while owner is not None:
            self.set(owner, reason=REASON_RECOVERED, message=f"recovered by fallback {node_id!r}")
            owner = self.graph.owner.get(owner)
        fallback = self.graph.fallback.get(node_id)
        if fallback is not None:
            self.skip(fallback, REASON_FALLBACK_NOT_NEEDED, f"{node_id!r} succeeded")
        self.checks.extend(self.graph.route_targets[node_id])

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

    def fail(self, node_id: str, attempt: int, at: datetime, message: str, timed_out: bool) -> None:
        config = self.graph.nodes[node_id].config
        reason = REASON_TIMEOUT if timed_out else REASON_ERROR
        if attempt < config.max_retries:
            delay = timedelta(milliseconds=config.retry_delay_ms(attempt))
            self.set(
                node_id,
                phase="Retrying",
                retry_at=self.now + delay,
                reason=reason,
                message=f"attempt {attempt} failed: {message}",
            )
            return
        self.set(node_id, phase="Failed", finished_at=at, reason=reason, message=message)
        noun = "attempt" if attempt == 1 else "attempts"
        self.final_failure(node_id, f"failed after {attempt} {noun}: {message}")

    def final_failure(self, node_id: str, detail: str) -> None:
        """The node will not succeed: run its fallback, or fail the chain."""
        fallback = self.graph.fallback.get(node_id)
        if fallback is not None and self.nodes[fallback].phase == "Pending":
            self.ready.add(fallback)
            return
        chain = [node_id]
        owner = self.graph.owner.get(node_id)
        while owner is not None:
            chain.append(owner)
            owner = self.graph.owner.get(owner)
        head = chain[-1]
        if head == node_id:
            append_error(self.errors, f"node {node_id!r} {detail}")
        else:
            append_error(self.errors, f"node {head!r} failed and its fallback {node_id!r} {detail}")
        if self.spec.fail_fast:
            self.stop("Failed", REASON_FLOW_FAILED, f"node {head!r} failed (failFast)")
            return
        self.checks.extend(self.graph.route_targets[node_id])

    def skip(self, node_id: str, reason: str, message: str) -> None:
        """Skip a node that will never run; its edges become dead (or failed) downstream."""
        if self.nodes[node_id].phase != "Pending":
            return
        self.set(node_id, phase="Skipped", reason=reason, message=message)
        self.ready.discard(node_id)
        fallback = self.graph.fallback.get(node_id)
        if fallback is not None:
            self.skip(fallback, REASON_FALLBACK_NOT_NEEDED, f"{node_id!r} was skipped")
        self.checks.extend(self.graph.route_targets[node_id])

    def stop(self, phase: Literal["Failed", "Cancelled"], reason: str, message: str) -> None:
        """End the flow now: cancel running attempts, close everything not yet finished."""
        for node_id in self.graph.order:
            ns = self.nodes[node_id]
            if node_id in self.graph.scatters:
                self.batches.cancel(node_id, message)
            elif ns.phase == "Running":
                self.actions.append(CancelNode(node_id, ns.attempts, message))
            if ns.phase in _ACTIVE:
                self.set(
                    node_id,
                    phase="Cancelled",
                    reason=reason,
                    message=message,
                    finished_at=self.now,
                    retry_at=None,
                )
        self.ready.clear()
        self.checks.clear()
        self.phase = phase
        self.message = bound_message(message)
        self.finished_at = self.now

    def check_deadline(self) -> None:
        deadline = self.deadline()
        if deadline is not None and self.now >= deadline:
            seconds = self.spec.active_deadline_seconds
            text = f"activeDeadlineSeconds ({seconds}s) exceeded"
            append_error(self.errors, f"flow {text}")
            self.stop("Failed", REASON_DEADLINE, text)

    def deadline(self) -> datetime | None:
        seconds = self.spec.active_deadline_seconds
        started = self.original.started_at
        if seconds is None or started is None:
            return None
        return started + timedelta(seconds=seconds)

    def collect_due_retries(self) -> None:
        for node_id in self.retrying:
            ns = self.nodes[node_id]
            if ns.phase == "Retrying" and ns.retry_at is not None and ns.retry_at <= self.now:
                self.ready.add(node_id)

    # -- joins and starts ------------------------------------------------------------------

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
            if phase in _ACTIVE:
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

    def finish(self) -> Step:
        """Start what is ready (eagerly, in spec order, within parallelism), then settle."""
        while not self.terminal:
            self.drain_checks()
            progressed = False
            batching = self.batches.startable()
            for node_id in sorted({*self.ready, *batching}, key=self.graph.order.__getitem__):
                if self.terminal or self.blocked():
                    break
                if node_id in self.ready:
                    self.ready.discard(node_id)
                    self.start_node(node_id)
                    progressed = True
                while not self.terminal and not self.blocked():
                    if not self.batches.start_next(node_id):
                        break
                    progressed = True
            if not progressed:
                break
        self.batches.materialize()
        queue = [] if self.terminal else sorted(self.ready, key=self.graph.order.__getitem__)
        if not self.terminal:
            self.phase = "Running"
            self.settle(queue)
        # Every field is already valid: construct without re-validating 1,000 node entries.
        status = FlowStatus.model_construct(
            phase=self.phase,
            started_at=self.original.started_at,
            finished_at=self.finished_at,
            message=self.message,
            nodes=self.nodes,
            errors=self.errors,
            seq=self.seq,
            queue=queue,
            history=self.history,
        )
        wake = None if self.terminal else self.wake_at()
        return Step(status=status, actions=tuple(self.actions), wake_at=wake)

    def blocked(self) -> bool:
        limit = self.spec.parallelism
        running = self.running + self.batches.running
        return self.spec.suspend or (limit is not None and running >= limit)

    def start_node(self, node_id: str) -> None:
        ns = self.nodes[node_id]
        if ns.phase not in ("Pending", "Retrying"):
            return
        first = ns.phase == "Pending"
        attempt = ns.attempts + 1
        changes: dict[str, Any] = {"phase": "Running", "attempts": attempt, "retry_at": None}
        if first:
            changes |= {"started_at": self.now, "input_seq": self.seq}
        self.set(node_id, **changes)
        try:
            value = self.input_of(node_id)
        except ExpressionError as exc:
            self.set(
                node_id, phase="Failed", finished_at=self.now, reason=REASON_INPUT, message=str(exc)
            )
            self.final_failure(node_id, f"input could not be computed: {exc}")
            return
        kind = self.graph.builtin.get(node_id)
        if kind == "batch-scatter":
            self.batches.begin(node_id, value)
            return
        if kind in _VIRTUAL:
            self.run_builtin(node_id, kind)
            return
        iteration = self.nodes[node_id].iteration or 0
        timeout = self.graph.timeout_seconds(node_id)
        self.actions.append(StartNode(node_id, attempt, value, timeout, iteration))

    # -- built-in nodes the engine runs itself --------------------------------------------

    def run_builtin(self, node_id: str, kind: str | None) -> None:
        """sleep: a durable timer (wake_at in the status); wait: Awaiting until spec.resume
        names the node; loop-controller: its condition decides continue or break."""
        ns = self.nodes[node_id]
        if kind == "sleep":
            delay = timedelta(milliseconds=self.graph.sleep_ms(node_id))
            self.set(node_id, phase="Sleeping", wake_at=self.now + delay)
            self.sleeping.append(node_id)
            return
        if kind == "wait":
            self.set(node_id, phase="Awaiting")
            self.awaiting.append(node_id)
            self.resume_waiters()
            return
        if kind == "batch-gather":
            self.finish_builtin(node_id, None, tuple(self.writes_of(node_id)))
            return
        condition = self.graph.loop_condition[node_id]
        context = self.context_at(ns.input_seq or 0)
        try:
            value = condition.evaluate({**context, "context": context})
        except ExpressionError as exc:
            self.fail_builtin(node_id, REASON_ROUTING, f"loop condition: {exc}")
            return
        action = "continue" if truthy(value) else "break"
        limit = self.graph.loop_limit[node_id]
        if action == "continue" and (ns.iteration or 0) >= limit:
            self.fail_builtin(
                node_id,
                REASON_LOOP_LIMIT,
                f"loop {node_id!r} exceeded maxIterations ({limit}); raise params.maxIterations "
                "or check its condition",
            )
            return
        self.finish_builtin(node_id, action)

    def finish_builtin(
        self, node_id: str, action: str | None, writes: tuple[Write, ...] = ()
    ) -> None:
        ns = self.nodes[node_id]
        event = NodeSucceeded(
            node_id,
            ns.attempts,
            self.now,
            action=action,
            writes=writes,
            iteration=ns.iteration or 0,
        )
        self.succeed(event)

    def fail_builtin(self, node_id: str, reason: str, message: str) -> None:
        self.set(node_id, phase="Failed", finished_at=self.now, reason=reason, message=message)
        self.final_failure(node_id, message)

    def wake_sleepers(self) -> None:
        for node_id in self.sleeping:
            ns = self.nodes[node_id]
            if ns.phase == "Sleeping" and ns.wake_at is not None and ns.wake_at <= self.now:
                self.set(node_id, wake_at=None)
                self.finish_builtin(node_id, None)

    def resume_waiters(self) -> None:
        """Awaiting wait nodes whose resume data is in the spec succeed with it."""
        for node_id in self.awaiting:
            if self.nodes[node_id].phase != "Awaiting":
                continue
            _, action, present = resume_data(self.spec.resume, node_id)
            if present:
                self.finish_builtin(node_id, action)

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

    def rearm(self, controller: str) -> None:
        """Start a loop's next iteration: its body's results so far move to the history
        (they stay in the context), the body nodes become Pending again, and the controller
        evaluates its condition anew. Nodes still running finish their own iteration.
        The controller's iteration count is bounded by maxIterations, whatever re-runs it."""
        limit = self.graph.loop_limit[controller]
        if (self.nodes[controller].iteration or 0) + 1 > limit:
            if self.nodes[controller].phase == "Succeeded":
                self.set(controller, phase="Pending")  # so it can be marked Failed below
            self.fail_builtin(
                controller,
                REASON_LOOP_LIMIT,
                f"loop {controller!r} exceeded maxIterations ({limit}); raise "
                "params.maxIterations or check its condition",
            )
            return
        members = self.graph.loop_body[controller] | {controller}
        for node_id in sorted(members, key=lambda m: self.nodes[m].seq or 0):
            ns = self.nodes[node_id]
            if ns.phase in ("Running", "Retrying", "Sleeping", "Awaiting"):
                continue
            if ns.phase == "Pending" and node_id != controller:
                continue  # never reached in this iteration: nothing to reset
            if ns.phase == "Succeeded" and ns.seq is not None:
                self.history.append(
                    Completion(
                        node=node_id,
                        iteration=ns.iteration or 0,
                        attempt=ns.attempts,
                        seq=ns.seq,
                        output_ref=ns.output_ref,
                        action=ns.action,
                        taken_edges=ns.taken_edges,
                        writes=ns.writes,
                        items=ns.batch.total if ns.batch is not None else None,
                    )
                )
            self.nodes[node_id] = NodeStatus(iteration=(ns.iteration or 0) + 1)
        self.forget_views()
        self.ready.add(controller)

    def settle(self, queue: list[str]) -> None:
        """Finish the flow when nothing runs, waits for a retry, or waits for a slot."""
        if self.running or queue or self.batches.lives:
            return
        if any(self.nodes[n].phase == "Retrying" for n in self.retrying):
            return
        if any(self.nodes[n].phase == "Sleeping" for n in self.sleeping):
            return
        if any(self.nodes[n].phase == "Awaiting" for n in self.awaiting):
            self.phase = "Awaiting"  # until someone resumes a wait node (spec.resume)
            return
        active = [n for n in self.graph.order if self.nodes[n].phase in _ACTIVE]
        if active and self.graph.loop_body:
            # With loops, a join can wait for a node that will never run again (a loop body
            # after its loop broke, or a node waiting on a loop that never started): as in
            # flowcraft, those nodes simply do not run.
            for node_id in active:
                self.set(
                    node_id,
                    phase="Skipped",
                    reason=REASON_NOT_REACHED,
                    message="never became ready: a predecessor in a loop did not run (again)",
                )
            active = []
        if active:
            # Defensive: every join resolves once its predecessors do, so this is a bug.
            append_error(self.errors, f"engine stalled with unresolved nodes: {', '.join(active)}")
            self.stop("Failed", REASON_FLOW_FAILED, "engine stalled")
            return
        self.finished_at = self.now
        if self.errors:
            self.phase = "Failed"
            summary = f"{error_count(self.errors)} failure(s): " + "; ".join(self.errors)
            self.message = bound_message(summary)
        else:
            self.phase = "Succeeded"
            self.message = f"all {len(self.nodes)} nodes done"

    def wake_at(self) -> datetime | None:
        times = [
            ns.retry_at
            for n in self.retrying
            if (ns := self.nodes[n]).phase == "Retrying"
            and ns.retry_at is not None
            and ns.retry_at > self.now
        ]
        times.extend(self.batches.wake_times())
        times.extend(
            ns.wake_at
            for n in self.sleeping
            if (ns := self.nodes[n]).phase == "Sleeping" and ns.wake_at is not None
        )
        deadline = self.deadline()
        if deadline is not None:
            times.append(deadline)
        return min(times) if times else None


def _mismatch(have: Iterable[str], want: Iterable[str]) -> str:
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    return (
        "status does not match the spec (was the spec changed during the run?): "
        f"missing nodes {missing}, unknown nodes {extra}"
    )
