"""Batches: a batch-scatter runs its worker function once per item of its input array.

Why a module of its own: items are not nodes. A scatter with 10,000 items must neither put
10,000 entries in the Flow's status nor make each event cost O(items): items live in a
compact per-scatter string (`BatchStatus.items`, one character per item), and the engine
keeps a working index of each running scatter (`Live`: running and retrying items, the
first item never started, the count of successes) beside its last snapshot, so an item
event costs O(1) plus one copy of that string when the snapshot is written. The rules are
flowcraft's (dist/nodes/batch-scatter.mjs, batch-gather.mjs, flow.mjs `batch()`), with its
`chunkSize` rounds as they are meant (flowcraft 2.10.1's gather re-scatters without the
worker key); see the package docstring for the semantics.

This module schedules items and applies their events; what a batch adds to the context (the
gather's output, flowcraft's per-item keys) is derived with the rest of the context in
`values`. It works on the engine's working state through the `Host` protocol, so it imports
nothing above it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from flowcraft.contract import Write, item_key
from flowcraft.engine.graph import Graph
from flowcraft.engine.types import (
    REASON_ERROR,
    REASON_INPUT,
    REASON_TIMEOUT,
    Action,
    CancelNode,
    NodeFailed,
    NodeSucceeded,
    StartNode,
)
from flowcraft.model import BatchStatus, NodeStatus
from flowcraft.model.flow import (
    ITEM_CANCELLED,
    ITEM_FAILED,
    ITEM_PENDING,
    ITEM_RETRYING,
    ITEM_RUNNING,
    ITEM_SUCCEEDED,
)


class Host(Protocol):
    """What batches need of the engine's working state (`state.RunState` has it). A protocol,
    so that this module does not import the modules built on it."""

    now: datetime
    graph: Graph
    nodes: dict[str, NodeStatus]
    actions: list[Action]
    fresh_items: dict[str, Any]  # item key -> output of items that succeeded in this call

    def set(self, node_id: str, **changes: Any) -> NodeStatus: ...

    def final_failure(self, node_id: str, detail: str) -> None: ...

    def finish_builtin(
        self, node_id: str, action: str | None, writes: tuple[Write, ...] = ()
    ) -> None: ...

    def input_of(self, node_id: str) -> Any: ...


_R = ord(ITEM_RUNNING)
_S = ord(ITEM_SUCCEEDED)


def batch_id(scatter: str, iteration: int) -> str:
    """The batch id flowcraft draws at random, made deterministic (same after a restart)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"flowcraft-batch:{scatter}:{iteration}"))


def worker_id(uses: str, scatter: str, iteration: int, item: int) -> str:
    """flowcraft's id of the dynamic node that runs item `item`: `<uses>_<batchId>_<i>`."""
    return f"{uses}_{batch_id(scatter, iteration)}_{item}"


def running_items(batch: BatchStatus) -> list[int]:
    """Indexes of the items that run (a scan: for snapshots the engine has no index of)."""
    found = []
    items = batch.items
    index = items.find(ITEM_RUNNING)
    while index >= 0:
        found.append(index)
        index = items.find(ITEM_RUNNING, index + 1)
    return found


def item_input(scatter_input: Any, item: int) -> Any:
    """Item `item` of a scatter's input (validated to be an array when the scatter started)."""
    values = scatter_input if isinstance(scatter_input, list) else []
    return values[item]


@dataclass
class Live:
    """The working index of one running scatter (mutable; rebuilt from the status when the
    engine is handed a snapshot it did not just return)."""

    scatter: str
    iteration: int
    total: int
    chunk: int
    items: bytearray
    next: int  # first item never started (items start in index order)
    done: int  # items succeeded
    running: set[int] = field(default_factory=set)
    attempts: dict[str, int] = field(default_factory=dict)
    retry_at: dict[int, datetime] = field(default_factory=dict)
    due: list[int] = field(default_factory=list)  # retries whose time has come
    values: list[Any] | None = None  # the scatter's input, once computed

    @classmethod
    def of(cls, scatter: str, ns: NodeStatus) -> Live:
        batch = ns.batch or BatchStatus()
        items = bytearray(batch.items.encode())
        first = batch.items.find(ITEM_PENDING)
        live = cls(
            scatter=scatter,
            iteration=ns.iteration or 0,
            total=batch.total,
            chunk=batch.chunk,
            items=items,
            next=batch.total if first < 0 else first,
            done=batch.items.count(ITEM_SUCCEEDED),
            running=set(running_items(batch)),
            attempts=dict(batch.attempts),
            retry_at={int(k): v for k, v in batch.retry_at.items()},
        )
        return live

    def attempt(self, item: int) -> int:
        return self.attempts.get(str(item), 1)

    def round_end(self) -> int:
        """Items below this index may start: the round holding the first unfinished item."""
        return min(self.total, (self.done // self.chunk + 1) * self.chunk)

    def startable(self) -> bool:
        return bool(self.due) or self.next < self.round_end()

    def status(self) -> BatchStatus:
        return BatchStatus.model_construct(
            total=self.total,
            chunk=self.chunk,
            items=self.items.decode(),
            attempts=dict(self.attempts),
            retry_at={str(k): v for k, v in sorted(self.retry_at.items())},
        )


class Batches:
    """The batch half of one engine call: starts items, applies item events, fails or
    completes scatters. `lives` are the running scatters' working indexes."""

    def __init__(self, run: Host, lives: dict[str, Live] | None) -> None:
        self.run = run
        self.touched: set[str] = set()
        if lives is not None:
            self.lives = lives
        else:
            self.lives = {
                s: Live.of(s, ns)
                for s in run.graph.scatters
                if (ns := run.nodes[s]).phase == "Running" and ns.batch is not None
            }
        self.running = sum(len(live.running) for live in self.lives.values())

    # -- the scatter ----------------------------------------------------------------------

    def begin(self, scatter: str, value: Any) -> None:
        """The scatter started with input `value`: an array (null: empty) of items."""
        run = self.run
        if value is None:
            value = []
        if not isinstance(value, list):
            message = f"Input for batch-scatter node '{scatter}' must be an array."
            run.set(
                scatter, phase="Failed", finished_at=run.now, reason=REASON_INPUT, message=message
            )
            run.final_failure(scatter, message)
            return
        total = len(value)
        chunk = run.graph.chunk[scatter] or max(total, 1)
        ns = run.nodes[scatter]
        live = Live(
            scatter=scatter,
            iteration=ns.iteration or 0,
            total=total,
            chunk=chunk,
            items=bytearray(ITEM_PENDING.encode() * total),
            next=0,
            done=0,
            values=value,
        )
        run.set(scatter, batch=live.status())
        if total == 0:
            run.finish_builtin(scatter, None)
            return
        self.lives[scatter] = live
        self.touched.add(scatter)

    def startable(self) -> list[str]:
        """Running scatters with an item that may start now."""
        return [s for s, live in self.lives.items() if live.startable()]

    def start_next(self, scatter: str) -> bool:
        """Start the next startable item of `scatter` (due retries first); False if none."""
        live = self.lives.get(scatter)
        if live is None:
            return False
        if live.due:
            item = live.due.pop(0)
            attempt = live.attempt(item) + 1
            live.attempts[str(item)] = attempt
            live.retry_at.pop(item, None)
        elif live.next < live.round_end():
            item = live.next
            live.next += 1
            attempt = 1
        else:
            return False
        run = self.run
        if live.values is None:
            value = run.input_of(scatter)
            live.values = value if isinstance(value, list) else []
        live.items[item] = _R
        live.running.add(item)
        self.running += 1
        self.touched.add(scatter)
        run.actions.append(
            StartNode(
                scatter,
                attempt,
                live.values[item],
                run.graph.timeout_seconds(scatter),
                live.iteration,
                item=item,
                uses=run.graph.worker[scatter],
            )
        )
        return True

    def collect_due(self) -> None:
        now = self.run.now
        for live in self.lives.values():
            if live.retry_at:
                due = sorted(i for i, t in live.retry_at.items() if t <= now and i not in live.due)
                live.due.extend(due)

    def wake_times(self) -> Iterator[datetime]:
        now = self.run.now
        for live in self.lives.values():
            for item, at in live.retry_at.items():
                if at > now and item not in live.due:
                    yield at

    # -- item events ----------------------------------------------------------------------

    def apply(self, event: NodeSucceeded | NodeFailed) -> None:
        item = event.item
        live = self.lives.get(event.node)
        if (
            item is None
            or live is None
            or live.iteration != event.iteration
            or not 0 <= item < live.total
            or live.items[item] != _R
            or live.attempt(item) != event.attempt
        ):
            return  # duplicate or stale
        live.running.discard(item)
        self.running -= 1
        self.touched.add(event.node)
        if isinstance(event, NodeSucceeded):
            live.items[item] = _S
            live.done += 1
            key = item_key(event.node, live.iteration, item)
            self.run.fresh_items[key] = event.output
            if live.done == live.total:
                self.close(event.node)
                self.run.finish_builtin(event.node, None)
            return
        self.fail(live, item, event)

    def fail(self, live: Live, item: int, event: NodeFailed) -> None:
        run = self.run
        config = run.graph.nodes[live.scatter].config
        attempt = event.attempt
        if attempt < config.max_retries:
            live.items[item] = ord(ITEM_RETRYING)
            live.retry_at[item] = run.now + timedelta(milliseconds=config.retry_delay_ms(attempt))
            return
        live.items[item] = ord(ITEM_FAILED)
        noun = "attempt" if attempt == 1 else "attempts"
        detail = f"item {item} failed after {attempt} {noun}: {event.message}"
        self.cancel(live.scatter, f"item {item} of {live.scatter!r} failed")
        reason = REASON_TIMEOUT if event.timed_out else REASON_ERROR
        run.set(live.scatter, phase="Failed", finished_at=event.at, reason=reason, message=detail)
        run.final_failure(live.scatter, detail)

    def cancel(self, scatter: str, reason: str) -> None:
        """Stop the scatter's running items (CancelNode each) and its retries; close it."""
        live = self.lives.get(scatter)
        if live is None:
            return
        for item in sorted(live.running):
            self.run.actions.append(
                CancelNode(scatter, live.attempt(item), reason, live.iteration, item=item)
            )
            live.items[item] = ord(ITEM_CANCELLED)
        for item in live.retry_at:
            live.items[item] = ord(ITEM_CANCELLED)
        self.running -= len(live.running)
        live.running.clear()
        live.retry_at.clear()
        live.due.clear()
        self.touched.add(scatter)
        self.close(scatter)

    def close(self, scatter: str) -> None:
        """The scatter no longer runs: write its batch status now, forget its index."""
        live = self.lives.pop(scatter, None)
        if live is not None:
            self.run.set(scatter, batch=live.status())
            self.touched.discard(scatter)

    def materialize(self) -> None:
        """Write the batch status of every scatter this call changed into the snapshot."""
        for scatter in self.touched:
            live = self.lives.get(scatter)
            if live is not None:
                self.run.nodes[scatter] = self.run.nodes[scatter].model_copy(
                    update={"batch": live.status()}
                )
        self.touched.clear()
