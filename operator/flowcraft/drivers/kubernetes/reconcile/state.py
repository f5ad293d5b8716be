"""What a pass works with: a Flow's in-memory bookkeeping, the pass itself, small manifest reads.

The other modules of the reconcile take these explicitly (``state``, ``ctx``) rather than
reaching into the reconciler, so each step of a pass shows what it reads and writes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flowcraft.contract import Write
from flowcraft.drivers.kubernetes import builders, metrics
from flowcraft.drivers.kubernetes.cache import FlowKey
from flowcraft.engine import Engine, NodeFailed, StartNode
from flowcraft.engine.types import Event
from flowcraft.model import BatchStatus, FlowSpec, FlowStatus

Manifest = dict[str, Any]

# A running item with where it runs: (scatter, iteration, item, attempt, Job name, completion
# index of its pod in a round's Indexed Job, else None).
ItemRow = tuple[str, int, int, int, str, int | None]


@dataclass
class FlowState:
    """In-memory bookkeeping of one Flow; all of it can be lost (rebuilt from the cluster)."""

    dirty: bool = False
    worker: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = None
    errors: int = 0  # failed passes in a row (the backoff)
    crashes: int = 0  # of which crashes (failures.is_crash): MAX_CRASHES fail the Flow
    uid: str | None = None
    engine: Engine | None = None
    engine_generation: int | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    writes: dict[str, tuple[Write, ...]] = field(default_factory=dict)
    context_stored: bool = False  # the initial-context ConfigMap exists (or is not needed)
    written_rv: str | None = None
    # The Flow as our own last status write returned it: the freshest copy there is until a
    # watch event says someone else changed it. Saves a GET of a large object per pass.
    latest: Manifest | None = None
    foreign_events: int = 0  # Flow events not caused by our writes, to invalidate ``latest``
    # A status write is in flight: Flow events that arrive meanwhile wait in ``parked`` until
    # its resourceVersion is known (the watch echo often beats the PUT's own response).
    writing: bool = False
    parked: list[str | None] = field(default_factory=list)
    # The resourceVersions of our last few status writes: an echo can arrive after the next
    # write already went out (a version we wrote is ours whenever its echo comes).
    own_rvs: deque[str] = field(default_factory=lambda: deque(maxlen=8))
    # Failures found while acting (Job rejected by the API server): fed to the next pass.
    pending: list[Event] = field(default_factory=list)
    real_start: dict[str, datetime] = field(default_factory=dict)
    # The parsed status of the body at this resourceVersion: unchanged Flows are not re-parsed.
    parsed: tuple[str, FlowStatus] | None = None
    # Jobs and pods of this Flow listed once after (re)start when batch items run: the watch
    # caches may not have caught up, and re-ensuring 10,000 items one POST each would not do.
    seeded: bool = False
    # (scatter, iteration) -> item outputs held in ``outputs``: while it covers the status's
    # succeeded items, no pass scans the items for missing ones.
    item_outputs: dict[tuple[str, int], int] = field(default_factory=dict)
    # Item bookkeeping that keeps a pass proportional to what changed (see observe_items):
    # pod slot / Job name -> (scatter, iteration, item, attempt); a round's Indexed Job ->
    # its slots; slots to look at next pass whatever the watches say (items just started,
    # changes drained by a pass that did not get to record them);
    # whether every running item was looked at once since the (re)start; and whether item
    # Jobs were last left suspended.
    item_slots: dict[str, tuple[str, int, int, int]] = field(default_factory=dict)
    round_slots: dict[str, list[str]] = field(default_factory=dict)
    recheck: set[str] = field(default_factory=set)
    items_scanned: bool = False
    items_suspended: bool = False
    # Node timeouts (module lost): (node, attempt, iteration) -> when this process first saw
    # the attempt's container running, and -> when it decided the attempt timed out.
    running_seen: dict[tuple[str, int, int], datetime] = field(default_factory=dict)
    timed_out: dict[tuple[str, int, int], datetime] = field(default_factory=dict)
    # Result key -> output ConfigMap that is gone with no copy left (module lost).
    lost_outputs: dict[str, str] = field(default_factory=dict)
    # Jobs of running attempts that are gone for good (module lost): Job name -> the failure
    # for which the operator deleted it (or the API server refused to create it), or None when
    # someone else did. Never created again.
    gone_jobs: dict[str, str | None] = field(default_factory=dict)
    # Jobs whose create failed with an error that says nothing of whether the Job was made
    # (5xx, the connection lost): Job name -> the error. The pass failed and is retried; a
    # running attempt whose Job then does not exist fails naming it (lost.gone_message).
    unsure_creates: dict[str, str] = field(default_factory=dict)
    # Item slots whose Job had no pod yet -> when the no-pod rule fires (``outcomes.no_pod``):
    # looked at then whatever the watches say.
    pod_waits: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Pass:
    """What one pass over one Flow works with."""

    key: FlowKey
    ref: builders.FlowRef
    state: FlowState
    spec: FlowSpec
    engine: Engine
    # Attempts this pass saw end (for the duration histogram once the status is written).
    finished: list[metrics.Attempt] = field(default_factory=list)
    # A scatter's view, built once per pass for all of its items (same for every item).
    views: dict[tuple[str, int], builders.View] = field(default_factory=dict)
    # Item slots drained from the cache's change set by this pass: forgotten only once the
    # pass has recorded what it saw (a Conflict on the status write must not lose them).
    observed: set[str] = field(default_factory=set)
    # Slots of items this pass started, or whose Job it did not find in the cache yet: looked
    # at next pass whatever the watches say (a pod of an Indexed Job may have ended before the
    # engine started its item).
    started: set[str] = field(default_factory=set)
    # The running items of a status snapshot with their Job names (ensure and suspend share
    # the one of the new snapshot): (snapshot, rows).
    running: list[tuple[FlowStatus, list[ItemRow]]] = field(default_factory=list)
    # Deadlines of running attempts' timeouts: the pass wakes at the earliest.
    deadlines: list[datetime] = field(default_factory=list)

    @property
    def flow_id(self) -> metrics.FlowId:
        return metrics.FlowId(self.key.namespace, self.key.name)


def fail_later(state: FlowState, action: StartNode, message: str) -> None:
    """The attempt ``action`` started cannot run: its failure is fed to the next pass."""
    state.pending.append(
        NodeFailed(
            action.node,
            action.attempt,
            datetime.now(UTC),
            message,
            iteration=action.iteration,
            item=action.item,
        )
    )


def refused_message(name: str, why: str) -> str:
    """An attempt's failure when the API server refused to create its Job (403 Forbidden:
    a ResourceQuota exceeded, an admission webhook, missing rights): the server's words."""
    return f"the API server refused Job {name}: {why}"


def generation_of(body: Manifest) -> int | None:
    generation = (body.get("metadata") or {}).get("generation")
    return generation if isinstance(generation, int) else None


def name_of(obj: Manifest) -> str:
    return str((obj.get("metadata") or {}).get("name"))


def uid_of(obj: Manifest) -> str | None:
    uid = (obj.get("metadata") or {}).get("uid")
    return uid if isinstance(uid, str) and uid else None


def conflict_message(ref: builders.FlowRef, kind: str, existing: Manifest) -> str:
    return (
        f"{kind} {ref.namespace}/{name_of(existing)} already exists and is not controlled by "
        f"this Flow (uid {ref.uid}) but by {builders.describe_controller(existing)}: "
        "not adopted; delete it or let its owner's garbage collection remove it"
    )


def job_terminal(job: Manifest) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def job_complete(job: Manifest) -> bool:
    return any(
        c.get("type") == "Complete" and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def deadline_exceeded(pod: Manifest | None) -> bool:
    return pod is not None and (pod.get("status") or {}).get("reason") == "DeadlineExceeded"


def chunk_of(status: FlowStatus, scatter: str) -> int:
    """Items per round of ``scatter`` (1 when the status has no batch for it)."""
    ns = status.nodes.get(scatter)
    batch: BatchStatus | None = ns.batch if ns is not None else None
    return batch.chunk if batch is not None and batch.chunk > 0 else 1
