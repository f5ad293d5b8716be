"""The working state of one engine call, and the transitions every part of the engine uses.

Why a module of its own: one engine call (`Engine.start`/`advance`, or a read-only query such
as `Engine.context`) works on a copy of the snapshot plus the actions it has issued so far.
Event handling (`run`), routing and joins (`routing`), the built-in nodes (`builtin_nodes`) and
batches (`batch`) all read and change that same state; this module owns it and its invariants
(the running count, the Retrying list, the index of running batches) and the transitions all
of them need: `set`, `skip`, `final_failure`, `stop`. Steps a part above defines and another
part calls (`succeed`, `finish_builtin`, `rearm`) are declared here, so no part imports another;
`run.Run` puts them together.

The snapshot is copy-on-write: a call copies the node map (cheap, shallow) and `set` replaces
each NodeStatus it changes with a copy, so the status passed in is never mutated.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple

from flowcraft.contract import Write
from flowcraft.engine.batch import Batches, Live
from flowcraft.engine.graph import Graph
from flowcraft.engine.types import (
    REASON_FALLBACK_NOT_NEEDED,
    REASON_FLOW_FAILED,
    Action,
    CancelNode,
    EngineError,
    NodeSucceeded,
)
from flowcraft.engine.values import Done, Values
from flowcraft.model import TERMINAL_FLOW_PHASES, Completion, FlowStatus, NodeStatus
from flowcraft.model.bounds import append_error, bound_message, node_message_limit

# Node phases that are not final (the flow still waits for the node).
ACTIVE: frozenset[str] = frozenset({"Pending", "Running", "Retrying", "Sleeping", "Awaiting"})

# Built-ins the engine runs itself: their outputs are derived, never stored by a driver.
VIRTUAL: frozenset[str | None] = frozenset(
    {"sleep", "wait", "loop-controller", "batch-scatter", "batch-gather"}
)


class Index(NamedTuple):
    """What an Engine keeps of the last snapshot it returned, so that the next call on that
    same snapshot skips a scan over every node."""

    nodes: dict[str, NodeStatus]
    running: int
    retrying: tuple[str, ...]
    lives: dict[str, Live]  # running scatters' working indexes (mutated by the next call)


class RunState(Values):
    """Working state of one engine call: a copy-on-write snapshot plus the actions so far."""

    def __init__(
        self,
        graph: Graph,
        status: FlowStatus,
        now: datetime,
        outputs: Mapping[str, Any],
        writes: Mapping[str, Sequence[Write]] | None,
        *,
        copy: bool = True,
        index: Index | None = None,
    ) -> None:
        self.graph = graph
        self.spec = graph.spec
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

    # -- transitions every part uses --------------------------------------------------------

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
            if ns.phase in ACTIVE:
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

    # -- steps defined above this module (run.Run has them all) ---------------------------

    def succeed(self, event: NodeSucceeded) -> None:
        """Record a success and route it (`run`)."""
        raise NotImplementedError

    def finish_builtin(
        self, node_id: str, action: str | None, writes: tuple[Write, ...] = ()
    ) -> None:
        """A built-in the engine runs itself succeeded (`builtin_nodes`)."""
        raise NotImplementedError

    def rearm(self, controller: str) -> None:
        """Start a loop's next iteration (`builtin_nodes`)."""
        raise NotImplementedError


def _mismatch(have: Iterable[str], want: Iterable[str]) -> str:
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    return (
        "status does not match the spec (was the spec changed during the run?): "
        f"missing nodes {missing}, unknown nodes {extra}"
    )
