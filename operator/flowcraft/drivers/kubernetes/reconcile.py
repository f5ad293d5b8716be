"""One serialized reconcile per Flow: observe → engine → act → record.

Why this shape (DESIGN.md "one trap to design out"): if every Job event decided on its own,
two branches of a join finishing together could each see "one predecessor still running".
Here events only *trigger*; decisions come from a single worker per Flow that takes a fresh
view of everything (the Flow from the API, Jobs and pods from the watch cache, outputs from
ConfigMaps) and runs the engine once over all of it. Triggers that arrive while it works are
coalesced into exactly one more pass, so a burst of 1000 Job completions costs a few passes,
not 1000.

Idempotency and restarts: the Flow's status plus its Jobs are the whole state. Every write is
safe to repeat: Job and ConfigMap names are deterministic per (Flow UID, node, attempt), and the
status is replaced with optimistic concurrency (a Conflict reruns the pass on a fresh read).
After a restart, the first pass re-ensures every Job the status says is running.

Ownership: an existing object is adopted only when this Flow object controls it (its
controller ownerReference has the Flow's UID). AlreadyExists on an object controlled by anyone
else (a deleted Flow of the same name, a squatter) is a conflict: the attempt fails with a
message naming the object and a Warning Event, so a retry (a new name) or the user can act;
the other object is never read, patched or deleted.

Order inside a pass: Jobs are created before the status is written, so the hot path (a
dependency finished → the next Job's create request) costs one GET of the Flow plus the
engine's arithmetic. Timers (retry backoff, flow deadline) are ``loop.call_at`` handles that
trigger a pass at the engine's ``wake_at``; none of this polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from flowcraft.contract import Write, item_key, result_key
from flowcraft.drivers.kubernetes import builders, metrics, names, outcomes, subflows
from flowcraft.drivers.kubernetes import status as flow_status
from flowcraft.drivers.kubernetes.cache import FlowKey, ObjectCache
from flowcraft.drivers.kubernetes.cache import slot as cache_slot
from flowcraft.drivers.kubernetes.client import (
    AlreadyExists,
    ApiError,
    Client,
    Conflict,
    Invalid,
    NotFound,
)
from flowcraft.engine import (
    CancelNode,
    Engine,
    NodeFailed,
    NodeSucceeded,
    StartNode,
    Step,
)
from flowcraft.engine.types import EngineError, Event
from flowcraft.model import (
    TERMINAL_FLOW_PHASES,
    BatchStatus,
    FlowSpec,
    FlowStatus,
)
from flowcraft.model.errors import problems_from_pydantic
from flowcraft.model.flow import ITEM_PENDING, ITEM_RUNNING, ITEM_SUCCEEDED

logger = logging.getLogger(__name__)

Manifest = dict[str, Any]

# Retry delays after API errors that are not conflicts (server down, throttled, forbidden).
_ERROR_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_MAX_PARALLEL_REQUESTS = 32

# How batch items run (the operator's --batch-jobs flag): one Job per item attempt, or one
# Indexed Job per round for first attempts (retries and container functions: a Job each).
BATCH_JOB_PER_ITEM = "per-item"
BATCH_INDEXED = "indexed"
BATCH_MODES = (BATCH_JOB_PER_ITEM, BATCH_INDEXED)


@dataclass
class _FlowState:
    """In-memory bookkeeping of one Flow; all of it can be lost (rebuilt from the cluster)."""

    dirty: bool = False
    worker: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = None
    errors: int = 0
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
    # Item bookkeeping that keeps a pass proportional to what changed (see _observe_items):
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


@dataclass(frozen=True)
class _Pass:
    """What one pass over one Flow works with."""

    key: FlowKey
    ref: builders.FlowRef
    state: _FlowState
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
    running: list[tuple[FlowStatus, list[tuple[str, int, int, int, str, int | None]]]] = field(
        default_factory=list
    )

    @property
    def flow_id(self) -> metrics.FlowId:
        return metrics.FlowId(self.key.namespace, self.key.name)


class Reconciler:
    """Owns the per-Flow workers; ``trigger`` is the only entry point handlers use."""

    def __init__(
        self,
        client: Client,
        cache: ObjectCache,
        *,
        instance: str,
        runner_image: str | None = None,
        batch_mode: str = BATCH_INDEXED,
    ) -> None:
        if batch_mode not in BATCH_MODES:
            raise ValueError(f"batch mode must be one of {BATCH_MODES}, got {batch_mode!r}")
        self._client = client
        self._cache = cache
        self._instance = instance
        self._runner_image = runner_image
        self._indexed = batch_mode == BATCH_INDEXED
        self._flows: dict[FlowKey, _FlowState] = {}
        self._requests = asyncio.Semaphore(_MAX_PARALLEL_REQUESTS)
        self.subflows = subflows.Subflows(client)  # subflow nodes run as child Flows

    # -- triggering -----------------------------------------------------------------------

    def trigger(self, key: FlowKey) -> None:
        """Ask for a pass over ``key``: starts a worker, or marks the running one dirty."""
        state = self._flows.get(key)
        if state is None:
            state = self._flows[key] = _FlowState()
        state.dirty = True
        if state.worker is None or state.worker.done():
            state.worker = asyncio.get_running_loop().create_task(
                self._work(key, state), name=f"reconcile {key.namespace}/{key.name}"
            )
            state.worker.add_done_callback(lambda task: self._worker_done(key, state, task))

    def flow_changed(self, key: FlowKey, resource_version: str | None) -> None:
        """A watch event for the Flow: unless it is the echo of our own write, forget our copy
        (the next pass reads it fresh) and ask for a pass."""
        if self.is_own_write(key, resource_version):
            return
        state = self._flows.get(key)
        if state is not None:
            state.latest = None
            state.foreign_events += 1
        self.trigger(key)

    def is_own_write(self, key: FlowKey, resource_version: str | None) -> bool:
        """True for the watch echo of the status this operator just wrote (no new facts)."""
        state = self._flows.get(key)
        return (
            state is not None
            and resource_version is not None
            and (state.written_rv == resource_version)
        )

    def forget(self, key: FlowKey) -> None:
        state = self._flows.pop(key, None)
        if state is not None and state.timer is not None:
            state.timer.cancel()
        self._cache.forget(key)
        metrics.current().forget(metrics.FlowId(key.namespace, key.name))

    async def close(self) -> None:
        tasks = [s.worker for s in self._flows.values() if s.worker is not None]
        for state in self._flows.values():
            if state.timer is not None:
                state.timer.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _worker_done(self, key: FlowKey, state: _FlowState, task: asyncio.Task[None]) -> None:
        """A pass that died of an unexpected error (a bug) is logged loudly and retried later,
        so one bad Flow neither hangs silently nor takes the operator down."""
        if task.cancelled() or task.exception() is None:
            return
        delay = _ERROR_BACKOFF[min(state.errors, len(_ERROR_BACKOFF) - 1)]
        state.errors += 1
        logger.error(
            "reconcile of %s/%s crashed; retrying in %.1fs",
            key.namespace,
            key.name,
            delay,
            exc_info=task.exception(),
        )
        if self._flows.get(key) is state:
            self._schedule(key, state, delay)

    def _schedule(self, key: FlowKey, state: _FlowState, delay: float) -> None:
        if state.timer is not None:
            state.timer.cancel()
        loop = asyncio.get_running_loop()
        state.timer = loop.call_at(loop.time() + max(0.0, delay), self.trigger, key)

    async def _work(self, key: FlowKey, state: _FlowState) -> None:
        while state.dirty:
            state.dirty = False
            try:
                await self._pass(key, state)
                state.errors = 0
            except Conflict:
                # Someone (often the user editing the spec) changed the Flow: read it again.
                logger.debug("conflict on %s/%s, re-reading", key.namespace, key.name)
                state.dirty = True
            except ApiError as exc:
                delay = _ERROR_BACKOFF[min(state.errors, len(_ERROR_BACKOFF) - 1)]
                state.errors += 1
                logger.warning(
                    "reconcile of %s/%s failed (%s); retrying in %.1fs",
                    key.namespace,
                    key.name,
                    exc,
                    delay,
                )
                self._schedule(key, state, delay)

    # -- one pass -------------------------------------------------------------------------

    async def _pass(self, key: FlowKey, state: _FlowState) -> None:
        # Taken, not peeked: if this pass fails half-way, the next one reads the Flow afresh.
        body, state.latest = state.latest, None
        foreign_events = state.foreign_events
        if body is None:
            try:
                body = await self._client.get_flow(key.namespace, key.name)
            except NotFound:
                self.forget(key)
                return
        meta = body.get("metadata") or {}
        ref = builders.FlowRef(name=key.name, namespace=key.namespace, uid=str(meta.get("uid")))
        if state.uid != ref.uid:
            # A new object under an old name: nothing we remember applies.
            state.uid, state.engine, state.outputs = ref.uid, None, {}
            state.pending, state.real_start, state.parsed = [], {}, None
            state.writes, state.context_stored = {}, False
            state.seeded, state.item_outputs = False, {}
            state.item_slots, state.round_slots, state.recheck = {}, {}, set()
            state.items_scanned = state.items_suspended = False
        raw_status: Manifest = dict(body.get("status") or {})
        generation = _generation(body)
        if raw_status.get("phase") in TERMINAL_FLOW_PHASES:
            self._retire(key, state)
            finished = flow_status.observe_finished(raw_status, generation, datetime.now(UTC))
            if finished is not None:  # a spec edit after the end, or no conditions yet
                body["status"] = finished
                written = await self._client.replace_flow_status(key.namespace, key.name, body)
                state.written_rv = (written.get("metadata") or {}).get("resourceVersion")
            return

        now = datetime.now(UTC)
        prepared = await self._prepare(ref, state, body, raw_status, now)
        if prepared is None:
            return  # the Flow is invalid and was marked Failed
        engine, status = prepared
        spec = engine.spec

        ctx = _Pass(key, ref, state, spec, engine)
        await self._seed(ctx, status)
        await self._load_outputs(ref, state, status)
        await self._load_item_outputs(ref, state, status)
        events, success_seen = await self._observe(ctx, status, now)
        try:
            step = engine.advance(status, events, now, state.outputs, state.writes)
        except EngineError as exc:
            await self._fail_engine(ref, body, status, now, str(exc))
            return

        created = await self._act(ctx, step, success_seen)
        await self._ensure_running(ctx, step, created)
        await self._apply_suspend(ctx, step)

        new_status = flow_status.render_status(
            step.status,
            state.real_start,
            len(spec.nodes),
            previous=raw_status,
            generation=generation,
            now=now,
        )
        if flow_status.material_change(raw_status, new_status):
            body["status"] = new_status
            written = await self._client.replace_flow_status(key.namespace, key.name, body)
            state.written_rv = (written.get("metadata") or {}).get("resourceVersion")
            metrics.current().status_written(ctx.flow_id, status, step.status, ctx.finished)
            await self._post_events(ref, status, step.status, now)
            body = written
        if state.foreign_events == foreign_events:
            state.latest = body  # else someone changed the Flow meanwhile: read it next time
        # Recorded: later watch events bring what changes next; items just started get a look.
        state.recheck = (state.recheck - ctx.observed) | ctx.started

        if step.wake_at is not None and step.status.phase not in TERMINAL_FLOW_PHASES:
            self._schedule(key, state, (step.wake_at - datetime.now(UTC)).total_seconds())
        elif state.timer is not None:
            state.timer.cancel()
            state.timer = None
        if state.pending:
            state.dirty = True

    def _retire(self, key: FlowKey, state: _FlowState) -> None:
        """A finished Flow needs nothing in memory: drop its Jobs, pods, outputs and engine."""
        self._cache.forget(key)
        metrics.current().forget(metrics.FlowId(key.namespace, key.name))
        state.engine, state.engine_generation = None, None
        state.outputs, state.real_start, state.pending, state.parsed = {}, {}, [], None
        state.writes, state.context_stored = {}, False
        state.seeded, state.item_outputs = False, {}
        state.item_slots, state.round_slots, state.recheck = {}, {}, set()
        state.items_scanned = state.items_suspended = False
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None

    async def _prepare(
        self,
        ref: builders.FlowRef,
        state: _FlowState,
        body: Manifest,
        raw_status: Manifest,
        now: datetime,
    ) -> tuple[Engine, FlowStatus] | None:
        """The engine and status for this pass; None when the Flow was found invalid.

        The spec is validated and compiled once per generation, and the status parsed once per
        resourceVersion: for a 1000-node Flow, doing either on every pass would dominate the
        operator's CPU.
        """
        meta = body.get("metadata") or {}
        generation = meta.get("generation")
        gen = generation if isinstance(generation, int) else None
        rv = str(meta.get("resourceVersion"))
        if state.engine is None or state.engine_generation != gen:
            flow, problem = flow_status.parse_flow(body)
            if flow is None:
                await self._fail_invalid(ref, body, raw_status, problem)
                return None
            status = flow.status or FlowStatus()
            try:
                state.engine, state.engine_generation = Engine(flow.spec), gen
            except EngineError as exc:
                await self._fail_engine(ref, body, status, now, str(exc))
                return None
        elif state.parsed is not None and state.parsed[0] == rv:
            status = state.parsed[1]
        else:
            try:
                status = FlowStatus.model_validate(raw_status) if raw_status else FlowStatus()
            except ValidationError as exc:
                problems = "; ".join(str(p) for p in problems_from_pydantic(exc, ("status",)))
                await self._fail_invalid(ref, body, raw_status, f"invalid status: {problems}")
                return None
        state.parsed = (rv, status)
        return state.engine, status

    # -- observe --------------------------------------------------------------------------

    async def _load_outputs(
        self, ref: builders.FlowRef, state: _FlowState, status: FlowStatus
    ) -> None:
        """Fill the outputs the engine may need (after a restart: from the ConfigMaps)."""
        missing = {
            key: ref
            for key, ref in flow_status.output_refs(status).items()
            if key not in state.outputs
        }
        if not missing:
            return
        by_name: dict[str, Manifest] = {}
        for cm in await self._client.list_configmaps(
            ref.namespace, builders.flow_uid_selector(ref)
        ):
            by_name[str((cm.get("metadata") or {}).get("name"))] = cm
        for node, cm_name in missing.items():
            found = by_name.get(cm_name)
            if found is None:
                try:
                    found = await self._client.get_configmap(ref.namespace, cm_name)
                except NotFound:
                    logger.warning("output ConfigMap %s of node %s is gone", cm_name, node)
                    continue
            if not builders.controlled_by(found, ref.uid):
                logger.warning(
                    "output ConfigMap %s of node %s is not this Flow's (%s): not read",
                    cm_name,
                    node,
                    builders.describe_controller(found),
                )
                continue
            output, writes = builders.read_output(found)
            state.outputs[node] = output
            if writes:
                state.writes[node] = writes

    async def _observe(
        self, ctx: _Pass, status: FlowStatus, now: datetime
    ) -> tuple[list[Event], float | None]:
        """Engine events for every running attempt whose Job or pod shows an outcome."""
        key, ref, state, engine = ctx.key, ctx.ref, ctx.state, ctx.engine
        events: list[Event] = list(state.pending)
        state.pending = []
        success_seen: float | None = None
        suspended = bool(status.phase == "Running" and engine.spec.suspend)
        configmaps: list[tuple[int, Manifest]] = []  # (index in events, ConfigMap)
        stuck: list[Manifest] = []
        for node, attempt in engine.running(status):
            iteration = status.nodes[node].iteration or 0
            if subflows.runs(engine, node):
                sub = await self.subflows.observe(
                    ref,
                    ctx.spec,
                    node,
                    attempt,
                    iteration,
                    outputs=state.outputs,
                    writes=state.writes,
                )
                events.extend([sub] if sub is not None else [])
                continue
            job = self._cache.job(key, ref.uid, node, attempt, iteration)
            if job is None:
                continue  # not created, or not seen yet: _ensure_running sees to it
            job_name = str((job.get("metadata") or {}).get("name"))
            if suspended and (job.get("spec") or {}).get("suspend"):
                continue  # its pod was stopped on purpose; the attempt resumes later
            pod = self._cache.pod(key, job)
            if pod is None and _job_complete(job):
                pod = await self._find_pod(ref, job)
            outcome = outcomes.observe(job, pod, now)
            if outcome is None:
                continue
            self._count(ctx, node, job_name, outcome, now)
            started = outcome.at if isinstance(outcome, outcomes.Started) else outcome.started_at
            if started is not None and attempt == 1:
                state.real_start.setdefault(node, started)
            if isinstance(outcome, outcomes.Succeeded):
                cm = builders.output_configmap(
                    ref, node, attempt, outcome.output, outcome.writes, iteration=iteration
                )
                configmaps.append((len(events), cm))
                stored = result_key(node, iteration)
                state.outputs[stored] = outcome.output
                if outcome.writes:
                    state.writes[stored] = outcome.writes
                events.append(
                    NodeSucceeded(
                        node,
                        attempt,
                        outcome.at,
                        output=outcome.output,
                        action=outcome.action,
                        output_ref=cm["metadata"]["name"],
                        writes=outcome.writes,
                        iteration=iteration,
                    )
                )
                seen = self._cache.finished_seen(key, job)
                if seen is not None:
                    success_seen = seen if success_seen is None else max(success_seen, seen)
            elif isinstance(outcome, outcomes.Failed):
                events.append(
                    NodeFailed(
                        node,
                        attempt,
                        outcome.at,
                        outcome.message,
                        outcome.timed_out,
                        iteration=iteration,
                    )
                )
                if outcome.stuck and not _job_terminal(job):
                    stuck.append(job)  # e.g. an image that cannot be pulled
        stuck.extend(await self._observe_items(ctx, status, now, events, configmaps))
        # Outputs are stored before the status points at them (and before downstream pods
        # mount them); concurrently, since a wide join can finish many nodes in one pass.
        conflicts = await asyncio.gather(*(self._store_output(ref, cm) for _, cm in configmaps))
        for (index, _cm), conflict in zip(configmaps, conflicts, strict=True):
            if conflict is None:
                continue
            done = events[index]
            assert isinstance(done, NodeSucceeded)
            self._forget_output(state, done)
            events[index] = NodeFailed(
                done.node,
                done.attempt,
                done.at,
                conflict,
                iteration=done.iteration,
                item=done.item,
            )
            await self._event(ref, "NameConflict", conflict, True, now)
        await asyncio.gather(*(self._delete_job(ref, _name(job), _uid(job)) for job in stuck))
        return events, success_seen

    @staticmethod
    def _forget_output(state: _FlowState, done: NodeSucceeded) -> None:
        """Undo what observing ``done`` remembered, when its output could not be stored."""
        if done.item is None:
            stored = result_key(done.node, done.iteration)
        else:
            stored = item_key(done.node, done.iteration, done.item)
            where = (done.node, done.iteration)
            if stored in state.outputs and state.item_outputs.get(where, 0) > 0:
                state.item_outputs[where] -= 1
        state.outputs.pop(stored, None)
        state.writes.pop(stored, None)

    def _count(
        self, ctx: _Pass, node: str, job_name: str, outcome: outcomes.Outcome, now: datetime
    ) -> None:
        """Feed the running gauge, create→running latency and the attempt's run time."""
        if isinstance(outcome, outcomes.Started):
            metrics.current().pod_running(ctx.flow_id, job_name, now)
            return
        metrics.current().pod_finished(ctx.flow_id, job_name, outcome.started_at)
        if outcome.started_at is not None:  # a pod that never started has no run time
            succeeded = isinstance(outcome, outcomes.Succeeded)
            ctx.finished.append(metrics.Attempt(node, outcome.started_at, outcome.at, succeeded))

    async def _delete_job(self, ref: builders.FlowRef, name: str, uid: str | None) -> None:
        """Delete our Job ``name``: only the object with ``uid`` (a precondition); without a
        uid, only after reading it and finding it controlled by this Flow."""
        async with self._requests:
            with contextlib.suppress(NotFound):
                if uid is None:
                    job = await self._client.get_job(ref.namespace, name)
                    if not builders.controlled_by(job, ref.uid):
                        return  # not ours: never touch it
                    uid = _uid(job)
                # Conflict: the name now holds another object (uid precondition): not ours.
                with contextlib.suppress(Conflict):
                    await self._client.delete_job(ref.namespace, name, uid=uid)

    async def _store_output(self, ref: builders.FlowRef, cm: Manifest) -> str | None:
        """Create the output ConfigMap; a message when its name holds someone else's object."""
        async with self._requests:
            try:
                await self._client.create_configmap(ref.namespace, cm)
                return None
            except AlreadyExists:
                name = cm["metadata"]["name"]
                try:
                    existing = await self._client.get_configmap(ref.namespace, name)
                except NotFound:
                    return None  # gone again; the next pass's create would recreate it
        if builders.controlled_by(existing, ref.uid):
            return None  # ours, from an earlier pass: immutable, written from this attempt
        return _conflict_message(ref, "ConfigMap", existing)

    async def _find_pod(self, ref: builders.FlowRef, job: Manifest) -> Manifest | None:
        # The Job finished but its pod never reached the cache (e.g. right after a restart).
        # Pods are matched by their controller (the Job's uid), never by a job-name label.
        uid = _uid(job)
        if uid is None:
            return None
        pods = await self._list_job_pods(ref, uid)
        if not pods:
            return None
        return max(pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp")))

    async def _list_job_pods(self, ref: builders.FlowRef, job_uid: str) -> list[Manifest]:
        """The pods the Job with ``job_uid`` controls (selected by the controller-uid label the
        Job controller sets, then checked against the pod's controller ownerReference)."""
        return [
            pod
            for pod in await self._client.list_pods(
                ref.namespace, f"batch.kubernetes.io/controller-uid={job_uid}"
            )
            if (builders.controller_of(pod, "Job") or {}).get("uid") == job_uid
        ]

    # -- act ------------------------------------------------------------------------------

    async def _act(self, ctx: _Pass, step: Step, success_seen: float | None) -> set[str]:
        """Create the Jobs and delete the Jobs the engine asked for; the created names."""
        ref = ctx.ref
        starts = [a for a in step.actions if isinstance(a, StartNode)]
        cancels = [a for a in step.actions if isinstance(a, CancelNode)]
        if not starts and not cancels:
            return set()
        context_conflict = await self._store_context(ctx) if starts else None
        outputs = flow_status.output_refs(step.status)
        loop = asyncio.get_running_loop()

        async def start(action: StartNode) -> str:
            if action.item is not None:
                if context_conflict is not None:
                    self._fail_later(ctx.state, action, context_conflict)
                    return ""
                return await self._start_item(ctx, step.status, action, outputs, rounds)
            if subflows.runs(ctx.engine, action.node):
                why = await self.subflows.start(
                    ref,
                    ctx.engine,
                    step.status,
                    action,
                    outputs=ctx.state.outputs,
                    writes=ctx.state.writes,
                )
                if why is not None:
                    self._fail_later(ctx.state, action, why)
                return ""
            if context_conflict is not None:
                self._fail_later(ctx.state, action, context_conflict)
                return ""
            job = self._job(ctx, step.status, action, outputs)
            if job is None:
                return ""
            async with self._requests:
                if success_seen is not None:
                    latency = loop.time() - success_seen
                    metrics.observe_dependency_to_create(latency)
                    logger.debug("dependency_to_create %.6f %s", latency, action.node)
                await self._create_job(ctx, action, job)
            logger.info(
                "%s/%s: node %s attempt %d -> Job %s",
                ref.namespace,
                ref.name,
                action.node,
                action.attempt,
                job["metadata"]["name"],
            )
            return str(job["metadata"]["name"])

        async def cancel(action: CancelNode) -> None:
            if action.item is not None:
                await self._cancel_item(ctx, step.status, action, cancelled)
                return
            if subflows.runs(ctx.engine, action.node):
                await self.subflows.cancel(ref, action.node, action.attempt, action.iteration)
                return
            job = self._cache.job(ctx.key, ref.uid, action.node, action.attempt, action.iteration)
            if job is not None:
                await self._delete_job(ref, _name(job), _uid(job))
            else:
                name = names.job_name(
                    ref.name, ref.uid, action.node, action.attempt, action.iteration
                )
                await self._delete_job(ref, name, None)

        # Indexed mode: the rounds whose first items start now get their Job first, so every
        # item of the round finds it (``rounds``: round Job names created or found).
        rounds = (
            await self._start_rounds(ctx, step.status, starts, outputs)
            if context_conflict is None
            else set()
        )
        cancelled: set[str] = set()
        created = await asyncio.gather(*(start(a) for a in starts))
        await asyncio.gather(*(cancel(a) for a in cancels))
        return {name for name in created if name} | rounds

    async def _store_context(self, ctx: _Pass) -> str | None:
        """Create the initial-context ConfigMap before the first Job that mounts it.

        A message when its name holds someone else's ConfigMap: no Job may mount that one.
        """
        if ctx.state.context_stored:
            return None
        if ctx.spec.context is not None:
            cm = builders.context_configmap(ctx.ref, ctx.spec.context)
            conflict = await self._store_output(ctx.ref, cm)
            if conflict is not None:
                await self._event(ctx.ref, "NameConflict", conflict, True, datetime.now(UTC))
                return conflict
        ctx.state.context_stored = True
        return None

    def _view(
        self, ctx: _Pass, status: FlowStatus, node: str, outputs: Mapping[str, str]
    ) -> builders.View:
        order = tuple(ctx.engine.view(status, node, ctx.state.outputs, ctx.state.writes))
        return builders.View(
            order=order,
            configmaps=outputs,
            context_configmap=(
                names.context_configmap_name(ctx.ref.name, ctx.ref.uid)
                if ctx.spec.context is not None
                else None
            ),
        )

    def _job(
        self, ctx: _Pass, status: FlowStatus, action: StartNode, outputs: Mapping[str, str]
    ) -> Manifest | None:
        spec = ctx.spec
        node = spec.node(action.node)
        try:
            return builders.job_manifest(
                ctx.ref,
                node,
                spec.functions[node.uses],
                action.attempt,
                action.input,
                timeout_seconds=action.timeout_seconds,
                view=self._view(ctx, status, action.node, outputs),
                runner_image=self._runner_image_for(ctx.spec),
                iteration=action.iteration,
            )
        except builders.ManifestError as exc:
            self._fail_later(ctx.state, action, str(exc))
            return None

    def _runner_image_for(self, spec: FlowSpec) -> str:
        if spec.image is None and self._runner_image is not None:
            return self._runner_image
        return spec.runner_image

    async def _create_job(self, ctx: _Pass, action: StartNode, job: Manifest) -> None:
        try:
            created = await self._client.create_job(ctx.ref.namespace, job)
        except AlreadyExists:
            await self._adopt_job(ctx, action, job["metadata"]["name"])
            return
        except Invalid as exc:
            # The API server refused this node's Job (bad resources, image name...): the
            # node fails with the server's reason instead of the flow hanging.
            self._fail_later(ctx.state, action, f"the API server rejected the Job: {exc.message}")
            return
        metrics.current().job_created(ctx.flow_id, job["metadata"]["name"], datetime.now(UTC))
        self._cache.remember_job(ctx.key, created)

    def _fail_later(self, state: _FlowState, action: StartNode, message: str) -> None:
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

    async def _adopt_job(self, ctx: _Pass, action: StartNode, name: str) -> None:
        """The Job's name is taken: ours (a restart, a lagging cache) is adopted; anyone
        else's is a conflict that fails the attempt, with a Warning Event naming it."""
        try:
            existing = await self._client.get_job(ctx.ref.namespace, name)
        except NotFound:
            return  # deleted meanwhile: the next pass re-ensures the attempt's Job
        if builders.controlled_by(existing, ctx.ref.uid):
            self._cache.remember_job(ctx.key, existing)
            return
        message = _conflict_message(ctx.ref, "Job", existing)
        logger.warning("%s/%s: %s", ctx.ref.namespace, ctx.ref.name, message)
        self._fail_later(ctx.state, action, message)
        await self._event(ctx.ref, "NameConflict", message, True, datetime.now(UTC))

    async def _ensure_running(self, ctx: _Pass, step: Step, created: set[str]) -> None:
        """Re-create Jobs the status says are running but the cache has not seen (restart)."""
        key, ref, state, engine = ctx.key, ctx.ref, ctx.state, ctx.engine
        if step.status.phase in TERMINAL_FLOW_PHASES:
            return
        await self._ensure_items(ctx, step, created)
        missing = [
            (node, attempt)
            for node, attempt in engine.running(step.status)
            if not subflows.runs(engine, node)  # a child Flow, re-checked by observe
            and names.job_name(
                ref.name, ref.uid, node, attempt, step.status.nodes[node].iteration or 0
            )
            not in created
            and self._cache.job(key, ref.uid, node, attempt, step.status.nodes[node].iteration or 0)
            is None
        ]
        if not missing:
            return
        context_conflict = await self._store_context(ctx)
        outputs = flow_status.output_refs(step.status)
        for node, _attempt in missing:
            try:
                action = engine.start_action(step.status, node, state.outputs, state.writes)
            except EngineError as exc:
                logger.warning("cannot re-ensure %s of %s: %s", node, key.name, exc)
                continue
            if context_conflict is not None:
                self._fail_later(state, action, context_conflict)
                continue
            job = self._job(ctx, step.status, action, outputs)
            if job is None:
                continue
            try:
                created_job = await self._client.create_job(ref.namespace, job)
            except AlreadyExists:
                await self._adopt_job(ctx, action, job["metadata"]["name"])
                continue
            except Invalid as exc:
                self._fail_later(state, action, f"the API server rejected the Job: {exc.message}")
                continue
            self._cache.remember_job(key, created_job)

    async def _apply_suspend(self, ctx: _Pass, step: Step) -> None:
        """``spec.suspend`` suspends the running Jobs (their pods stop); resuming resumes them."""
        key, ref = ctx.key, ctx.ref
        want = ctx.spec.suspend and step.status.phase not in TERMINAL_FLOW_PHASES
        jobs = [
            self._cache.job(key, ref.uid, node, attempt, step.status.nodes[node].iteration or 0)
            for node, attempt in ctx.engine.running(step.status)
        ]
        if want or ctx.state.items_suspended:
            # Item Jobs only while suspending or resuming: otherwise a pass does not walk them.
            jobs.extend(
                self._cache.job_named(key, ref.uid, name)
                for name in dict.fromkeys(job for job, _ in self._item_jobs(ctx, step.status))
            )
            ctx.state.items_suspended = want
        for job in jobs:
            if job is None or bool((job.get("spec") or {}).get("suspend")) == want:
                continue
            name = _name(job)
            try:
                patched = await self._client.patch_job(
                    ref.namespace, name, {"spec": {"suspend": want}}
                )
            except NotFound:
                continue
            self._cache.put_job(patched, deleted=False, seen_at=0.0)

    # -- batch items ----------------------------------------------------------------------
    #
    # An item attempt runs in a Job of its own (names.item_job_name) or, in indexed mode, as
    # one index of its round's Indexed Job (names.round_job_name; first attempts only). Which
    # of the two is read from the cache, not remembered: a round's Job exists exactly when the
    # round started in indexed mode, so a restarted operator (whose first pass lists the
    # Flow's Jobs, see _seed) maps every item the same way. The per-pass work over running
    # items is in memory (names are cached, lookups are dict hits); API calls happen only for
    # what changed: a Job to create, an output to store, a Job to delete.

    async def _seed(self, ctx: _Pass, status: FlowStatus) -> None:
        """After a (re)start, one paginated LIST of the Flow's Jobs and pods fills the cache
        before anything is re-ensured (instead of a create + AlreadyExists per running item)."""
        state = ctx.state
        if state.seeded:
            return
        state.seeded = True
        if not ctx.engine.running_items(status):
            return
        # By this Flow object's uid label; still, only Jobs it controls are filed (by their
        # controller ownerReference), and pods only under the Job that controls them.
        selector = builders.flow_uid_selector(ctx.ref)
        jobs, pods = await asyncio.gather(
            self._client.list_jobs(ctx.ref.namespace, selector),
            self._client.list_pods(ctx.ref.namespace, selector),
        )
        jobs = [job for job in jobs if builders.controlled_by(job, ctx.ref.uid)]
        for job in jobs:
            self._cache.remember_job(ctx.key, job)
        ours = {_uid(job) for job in jobs}
        pods = [
            pod for pod in pods if (builders.controller_of(pod, "Job") or {}).get("uid") in ours
        ]
        for pod in pods:
            self._cache.remember_pod(ctx.key, pod)
        logger.info(
            "%s/%s: listed %d Jobs and %d pods of running batch items",
            ctx.ref.namespace,
            ctx.ref.name,
            len(jobs),
            len(pods),
        )

    async def _load_item_outputs(
        self, ref: builders.FlowRef, state: _FlowState, status: FlowStatus
    ) -> None:
        """The outputs of succeeded items (the gather needs them all): after a restart, one
        LIST of the scatter's item ConfigMaps by label; otherwise nothing (a counter per
        scatter says every succeeded item's output is already in memory)."""
        wanted: list[tuple[str, int, list[int], int]] = []
        for scatter, ns in status.nodes.items():
            batch = ns.batch
            if batch is None:
                continue
            iteration = ns.iteration or 0
            succeeded = batch.items.count(ITEM_SUCCEEDED)
            if state.item_outputs.get((scatter, iteration), 0) < succeeded:
                items = [i for i, c in enumerate(batch.items) if c == ITEM_SUCCEEDED]
                wanted.append((scatter, iteration, items, succeeded))
        for done in status.history:
            if done.items and state.item_outputs.get((done.node, done.iteration), 0) < done.items:
                wanted.append((done.node, done.iteration, list(range(done.items)), done.items))
        listed: dict[str, dict[str, Manifest]] = {}
        for scatter, iteration, items, succeeded in wanted:
            missing = [i for i in items if item_key(scatter, iteration, i) not in state.outputs]
            if missing and scatter not in listed:
                found = await self._client.list_configmaps(
                    ref.namespace, builders.item_outputs_selector(ref, scatter)
                )
                listed[scatter] = {str((cm.get("metadata") or {}).get("name")): cm for cm in found}
            by_name = listed.get(scatter, {})
            for item in missing:
                name = names.item_output_name(ref.name, ref.uid, scatter, iteration, item)
                cm = by_name.get(name)
                if cm is None:
                    try:
                        cm = await self._client.get_configmap(ref.namespace, name)
                    except NotFound:
                        logger.warning(
                            "output ConfigMap %s of item %d of %s is gone", name, item, scatter
                        )
                        continue
                if not builders.controlled_by(cm, ref.uid):
                    logger.warning(
                        "output ConfigMap %s of item %d of %s is not this Flow's (%s): not read",
                        name,
                        item,
                        scatter,
                        builders.describe_controller(cm),
                    )
                    continue
                output, writes = builders.read_output(cm)
                stored = item_key(scatter, iteration, item)
                state.outputs[stored] = output
                if writes:
                    state.writes[stored] = writes
            state.item_outputs[(scatter, iteration)] = max(
                succeeded, state.item_outputs.get((scatter, iteration), 0)
            )

    def _item_job(
        self, ctx: _Pass, chunk: int, item: tuple[str, int, int, int]
    ) -> tuple[str, int | None]:
        """(Job name, completion index of its pod in a round's Indexed Job, else None) of an
        item attempt (scatter, iteration, item, attempt)."""
        scatter, iteration, index, attempt = item
        ref = ctx.ref
        if self._indexed and attempt == 1:
            round_ = index // chunk
            job = names.round_job_name(ref.name, ref.uid, scatter, iteration, round_)
            if self._cache.job_named(ctx.key, ref.uid, job) is not None:
                return job, index - round_ * chunk
        return names.item_job_name(
            ref.name, ref.uid, scatter, iteration, index, attempt=attempt
        ), None

    def _running_items(
        self, ctx: _Pass, status: FlowStatus
    ) -> list[tuple[str, int, int, int, str, int | None]]:
        """(scatter, iteration, item, attempt, Job name, completion index or None) of every
        running item."""
        for seen, rows in ctx.running:
            if seen is status:
                return rows
        out = []
        for scatter, iteration, item, attempt in ctx.engine.running_items(status):
            chunk = _chunk(status, scatter)
            job, index = self._item_job(ctx, chunk, (scatter, iteration, item, attempt))
            out.append((scatter, iteration, item, attempt, job, index))
            ctx.state.item_slots[cache_slot(job, index)] = (scatter, iteration, item, attempt)
        ctx.running.append((status, out))
        return out

    def _changed_items(
        self, ctx: _Pass, status: FlowStatus, changed: set[str]
    ) -> list[tuple[str, int, int, int, str, int | None]]:
        """The rows of ``_running_items`` for the running items among ``changed`` (pod slots
        and Job names); an Indexed Job that ended stands for all of its items."""
        slots = set()
        for name in changed:
            if name in ctx.state.item_slots:
                slots.add(name)
            if name in ctx.state.round_slots:
                round_job = self._cache.job_named(ctx.key, ctx.ref.uid, name)
                if round_job is None or _job_terminal(round_job):
                    slots.update(ctx.state.round_slots[name])
        rows = []
        for where in slots:
            scatter, iteration, item, attempt = ctx.state.item_slots[where]
            ns = status.nodes.get(scatter)
            batch = ns.batch if ns is not None else None
            if (
                ns is None
                or batch is None
                or (ns.iteration or 0) != iteration
                or item >= batch.total
                or batch.items[item] != ITEM_RUNNING
                or batch.attempt(item) != attempt
            ):
                continue  # not running (any more, or not yet: an index ahead of the engine)
            job, index = self._item_job(ctx, batch.chunk, (scatter, iteration, item, attempt))
            if cache_slot(job, index) == where:
                rows.append((scatter, iteration, item, attempt, job, index))
        return rows

    def _round_jobs(self, ctx: _Pass, status: FlowStatus) -> dict[str, list[str]]:
        """Indexed Job -> pod slots of its running items (after a restart: what an ended
        Job stands for in _changed_items)."""
        out: dict[str, list[str]] = {}
        for *_, job, index in self._running_items(ctx, status):
            if index is not None:
                out.setdefault(job, []).append(cache_slot(job, index))
        return out

    def _item_jobs(self, ctx: _Pass, status: FlowStatus) -> list[tuple[str, int | None]]:
        return [(job, index) for *_, job, index in self._running_items(ctx, status)]

    async def _observe_items(
        self,
        ctx: _Pass,
        status: FlowStatus,
        now: datetime,
        events: list[Event],
        configmaps: list[tuple[int, Manifest]],
    ) -> list[Manifest]:
        """Engine events for running items whose pod (or Job) shows an outcome; the Jobs of
        stuck items to delete. Item outputs to store go to ``configmaps`` (index in events).

        The first pass after a (re)start looks at every running item; later passes only at
        the items whose Job or pod a watch event changed since (and at items just started),
        so a pass costs O(what changed), not O(running items). Only Jobs this Flow controls
        are looked at, and only pods their Job controls."""
        key, ref, state = ctx.key, ctx.ref, ctx.state
        suspended = bool(status.phase == "Running" and ctx.spec.suspend)
        listed: set[str] = set()
        stuck: dict[str, Manifest] = {}
        changed = self._cache.drain_changed(key) | state.recheck
        state.recheck = set(changed)  # until the pass completes (see _pass)
        ctx.observed.update(changed)
        if state.items_scanned:
            rows = self._changed_items(ctx, status, changed)
        else:
            rows = self._running_items(ctx, status)
        for scatter, iteration, item, attempt, job_name, index in rows:
            job = self._cache.job_named(key, ref.uid, job_name)
            if job is None:
                # Not created, or not seen yet (_ensure_items sees to it): its pods count only
                # through it, so look again next pass.
                ctx.started.add(cache_slot(job_name, index))
                continue
            if suspended and (job.get("spec") or {}).get("suspend"):
                continue
            indexed = index is not None
            pod = self._cache.pod(key, job, index)
            ended = _job_terminal(job) if indexed else _job_complete(job)
            job_uid = _uid(job)
            if pod is None and ended and job_uid is not None and job_uid not in listed:
                # The Job ended but its pods never reached the cache: one LIST per Job, by
                # its uid (never by a job-name label).
                listed.add(job_uid)
                for found in await self._list_job_pods(ref, job_uid):
                    self._cache.remember_pod(key, found)
                pod = self._cache.pod(key, job, index)
            outcome = outcomes.observe(None if indexed else job, pod, now)
            if outcome is None and indexed and _job_terminal(job):
                outcome = outcomes.Failed(
                    None, now, f"Indexed Job {job_name} ended without a pod for item {item}"
                )
            if outcome is None:
                continue
            if indexed and isinstance(outcome, outcomes.Failed) and _deadline_exceeded(pod):
                outcome = outcomes.Failed(
                    outcome.started_at, outcome.at, "timed out (activeDeadlineSeconds)", True
                )
            self._count(ctx, scatter, cache_slot(job_name, index), outcome, now)
            if isinstance(outcome, outcomes.Succeeded):
                cm = builders.item_output_configmap(
                    ref,
                    scatter,
                    outcome.output,
                    outcome.writes,
                    item=item,
                    attempt=attempt,
                    iteration=iteration,
                )
                configmaps.append((len(events), cm))
                stored = item_key(scatter, iteration, item)
                if stored not in state.outputs:
                    counted = state.item_outputs.get((scatter, iteration), 0)
                    state.item_outputs[(scatter, iteration)] = counted + 1
                state.outputs[stored] = outcome.output
                if outcome.writes:
                    state.writes[stored] = outcome.writes
                events.append(
                    NodeSucceeded(
                        scatter,
                        attempt,
                        outcome.at,
                        output=outcome.output,
                        action=outcome.action,
                        output_ref=cm["metadata"]["name"],
                        writes=outcome.writes,
                        iteration=iteration,
                        item=item,
                    )
                )
            elif isinstance(outcome, outcomes.Failed):
                events.append(
                    NodeFailed(
                        scatter,
                        attempt,
                        outcome.at,
                        outcome.message,
                        outcome.timed_out,
                        iteration=iteration,
                        item=item,
                    )
                )
                if outcome.stuck and not indexed and not _job_terminal(job):
                    stuck[job_name] = job
        return list(stuck.values())

    def _item_view(
        self,
        ctx: _Pass,
        status: FlowStatus,
        scatter: str,
        iteration: int,
        outputs: Mapping[str, str],
    ) -> builders.View:
        """What every item of ``scatter`` sees: the scatter's own view (built once a pass)."""
        view = ctx.views.get((scatter, iteration))
        if view is None:
            view = ctx.views[(scatter, iteration)] = self._view(ctx, status, scatter, outputs)
        return view

    def _item_manifest(
        self, ctx: _Pass, status: FlowStatus, action: StartNode, outputs: Mapping[str, str]
    ) -> Manifest | None:
        spec = ctx.spec
        uses = action.uses or ""
        fn = spec.functions.get(uses)
        if fn is None:
            self._fail_later(
                ctx.state, action, f"worker function {uses!r} is not in spec.functions"
            )
            return None
        try:
            return builders.job_manifest(
                ctx.ref,
                spec.node(action.node),
                fn,
                action.attempt,
                action.input,
                timeout_seconds=action.timeout_seconds,
                view=self._item_view(ctx, status, action.node, action.iteration, outputs),
                runner_image=self._runner_image_for(spec),
                iteration=action.iteration,
                item=action.item,
                uses=uses,
            )
        except builders.ManifestError as exc:
            self._fail_later(ctx.state, action, str(exc))
            return None

    async def _start_item(
        self,
        ctx: _Pass,
        status: FlowStatus,
        action: StartNode,
        outputs: Mapping[str, str],
        rounds: set[str],
    ) -> str:
        item = action.item if action.item is not None else 0
        chunk = _chunk(status, action.node)
        ident = (action.node, action.iteration, item, action.attempt)
        name, index = self._item_job(ctx, chunk, ident)
        where = cache_slot(name, index)
        ctx.state.item_slots[where] = ident
        ctx.started.add(where)
        if index is not None:
            return ""  # an index of its round's Indexed Job (created in _start_rounds)
        job = self._item_manifest(ctx, status, action, outputs)
        if job is None:
            return ""
        async with self._requests:
            await self._create_job(ctx, action, job)
        logger.debug(
            "%s/%s: item %d of %s attempt %d -> Job %s",
            ctx.ref.namespace,
            ctx.ref.name,
            item,
            action.node,
            action.attempt,
            name,
        )
        return name

    async def _cancel_item(
        self, ctx: _Pass, status: FlowStatus, action: CancelNode, cancelled: set[str]
    ) -> None:
        item = action.item if action.item is not None else 0
        chunk = _chunk(status, action.node)
        name, _ = self._item_job(ctx, chunk, (action.node, action.iteration, item, action.attempt))
        if name in cancelled:
            return  # a round's Indexed Job, deleted once for all of its items
        cancelled.add(name)
        job = self._cache.job_named(ctx.key, ctx.ref.uid, name)
        await self._delete_job(ctx.ref, name, _uid(job) if job is not None else None)

    async def _start_rounds(
        self,
        ctx: _Pass,
        status: FlowStatus,
        starts: list[StartNode],
        outputs: Mapping[str, str],
    ) -> set[str]:
        """Indexed mode: one Indexed Job (and its items ConfigMap) per round whose first items
        start in this pass; the names of the round Jobs that exist afterwards.

        A round that cannot run as an Indexed Job (container worker, inputs over a
        ConfigMap's size, a round some of whose items already started as Jobs of their own)
        keeps a Job per item: no Job is created for it here."""
        if not self._indexed:
            return set()
        by_round: dict[tuple[str, int, int], list[StartNode]] = {}
        for action in starts:
            if action.item is None or action.attempt != 1:
                continue
            fn = ctx.spec.functions.get(action.uses or "")
            if fn is None or not builders.indexed_supported(fn):
                continue
            round_ = action.item // _chunk(status, action.node)
            by_round.setdefault((action.node, action.iteration, round_), []).append(action)
        made: set[str] = set()
        for (scatter, iteration, round_), actions in by_round.items():
            name = names.round_job_name(ctx.ref.name, ctx.ref.uid, scatter, iteration, round_)
            if self._cache.job_named(ctx.key, ctx.ref.uid, name) is not None:
                made.add(name)
                continue
            if await self._start_round(ctx, status, (scatter, iteration, round_), actions, outputs):
                made.add(name)
        return made

    async def _start_round(
        self,
        ctx: _Pass,
        status: FlowStatus,
        where: tuple[str, int, int],
        actions: list[StartNode],
        outputs: Mapping[str, str],
    ) -> bool:
        scatter, iteration, round_ = where
        ns = status.nodes[scatter]
        batch = ns.batch
        if batch is None:
            return False
        first = round_ * batch.chunk
        count = min(batch.chunk, batch.total - first)
        now_started = {a.item: a for a in actions}
        if any(
            batch.items[i] != ITEM_PENDING and i not in now_started
            for i in range(first, first + count)
        ):
            return False  # some of its items started earlier, as Jobs of their own
        if len(now_started) == count:
            inputs = [now_started[i].input for i in range(first, first + count)]
        else:
            whole = getattr(ctx.engine, "scatter_input", None)
            if whole is None:
                return False
            values = whole(status, scatter, ctx.state.outputs, ctx.state.writes)
            inputs = list(values[first : first + count])
        action = actions[0]
        fn = ctx.spec.functions[action.uses or ""]
        parallelism = min(batch.chunk, ctx.spec.parallelism or batch.chunk)
        try:
            items_cm = builders.round_items_configmap(ctx.ref, scatter, iteration, round_, inputs)
            job = builders.indexed_job_manifest(
                ctx.ref,
                ctx.spec.node(scatter),
                fn,
                action.uses or "",
                round_=round_,
                first_item=first,
                count=count,
                parallelism=parallelism,
                timeout_seconds=action.timeout_seconds,
                view=self._item_view(ctx, status, scatter, iteration, outputs),
                runner_image=self._runner_image_for(ctx.spec),
                iteration=iteration,
            )
        except builders.ManifestError as exc:
            logger.info(
                "%s/%s: round %d of %s runs a Job per item: %s",
                ctx.ref.namespace,
                ctx.ref.name,
                round_,
                scatter,
                exc,
            )
            return False
        conflict = await self._store_output(ctx.ref, items_cm)
        if conflict is not None:
            # Someone else's ConfigMap under the round's name: no pod may mount it.
            await self._round_conflict(ctx, round_, scatter, conflict)
            return False
        try:
            async with self._requests:
                created = await self._client.create_job(ctx.ref.namespace, job)
        except AlreadyExists:
            try:
                async with self._requests:
                    created = await self._client.get_job(ctx.ref.namespace, _name(job))
            except NotFound:
                return False  # deleted meanwhile: this round's items run a Job each
            if not builders.controlled_by(created, ctx.ref.uid):
                conflict = _conflict_message(ctx.ref, "Job", created)
                await self._round_conflict(ctx, round_, scatter, conflict)
                return False
            self._cache.remember_job(ctx.key, created)
            return True  # ours already (a restart, a lagging cache)
        except Invalid as exc:
            logger.warning(
                "%s/%s: the API server rejected the Indexed Job of round %d of %s (%s); "
                "its items run a Job each",
                ctx.ref.namespace,
                ctx.ref.name,
                round_,
                scatter,
                exc.message,
            )
            return False
        metrics.current().job_created(ctx.flow_id, job["metadata"]["name"], datetime.now(UTC))
        self._cache.remember_job(ctx.key, created)
        slots = [cache_slot(job["metadata"]["name"], index) for index in range(count)]
        ctx.state.round_slots[job["metadata"]["name"]] = slots
        for index, index_slot in enumerate(slots):
            ctx.state.item_slots[index_slot] = (scatter, iteration, first + index, 1)
        logger.info(
            "%s/%s: items %d..%d of %s (round %d) -> Indexed Job %s",
            ctx.ref.namespace,
            ctx.ref.name,
            first,
            first + count - 1,
            scatter,
            round_,
            job["metadata"]["name"],
        )
        return True

    async def _round_conflict(self, ctx: _Pass, round_: int, scatter: str, conflict: str) -> None:
        """A round's Indexed Job or items ConfigMap name holds someone else's object: its
        items run a Job each instead (names of their own), with a Warning Event."""
        message = f"round {round_} of {scatter} runs a Job per item: {conflict}"
        logger.warning("%s/%s: %s", ctx.ref.namespace, ctx.ref.name, message)
        await self._event(ctx.ref, "NameConflict", message, True, datetime.now(UTC))

    async def _ensure_items(self, ctx: _Pass, step: Step, created: set[str]) -> None:
        """Re-create the Jobs of running items the cache has not seen (after a restart).

        Once per (re)start: afterwards every item Job is created by _act (or fails the item
        through the next pass), so later passes do not walk the running items."""
        key, state = ctx.key, ctx.state
        if state.items_scanned:
            return
        state.items_scanned = True
        state.round_slots.update(self._round_jobs(ctx, step.status))
        missing = [
            (scatter, item)
            for scatter, _it, item, _attempt, job, _index in self._running_items(ctx, step.status)
            if job not in created and self._cache.job_named(key, ctx.ref.uid, job) is None
        ]
        if not missing:
            return
        context_conflict = await self._store_context(ctx)
        outputs = flow_status.output_refs(step.status)

        async def ensure(scatter: str, item: int) -> None:
            try:
                action = ctx.engine.start_action(
                    step.status, scatter, state.outputs, state.writes, item=item
                )
            except EngineError as exc:
                logger.warning(
                    "cannot re-ensure item %d of %s of %s: %s", item, scatter, key.name, exc
                )
                return
            if context_conflict is not None:
                self._fail_later(state, action, context_conflict)
                return
            job = self._item_manifest(ctx, step.status, action, outputs)
            if job is None:
                return
            async with self._requests:
                try:
                    made = await self._client.create_job(ctx.ref.namespace, job)
                except AlreadyExists:
                    made = None
                except Invalid as exc:
                    self._fail_later(
                        state, action, f"the API server rejected the Job: {exc.message}"
                    )
                    return
            if made is None:
                await self._adopt_job(ctx, action, _name(job))  # ours, or a NameConflict
                return
            self._cache.remember_job(key, made)

        await asyncio.gather(*(ensure(scatter, item) for scatter, item in missing))

    # -- record ---------------------------------------------------------------------------

    async def _post_events(
        self, ref: builders.FlowRef, old: FlowStatus, new: FlowStatus, now: datetime
    ) -> None:
        if new.phase in TERMINAL_FLOW_PHASES and old.phase != new.phase:
            logger.info("%s/%s: %s (%s)", ref.namespace, ref.name, new.phase, new.message)
        for note in flow_status.notes(old, new, ref.name, ref.namespace):
            await self._event(ref, note.reason, note.message, note.warning, now)

    async def _event(
        self, ref: builders.FlowRef, reason: str, message: str, warning: bool, now: datetime
    ) -> None:
        body = builders.event_manifest(
            ref, reason=reason, message=message, warning=warning, now=now, instance=self._instance
        )
        try:
            await self._client.create_event(ref.namespace, body)
        except ApiError as exc:
            # Events are informational: losing one must not fail the reconcile.
            logger.warning("could not post event %s on %s: %s", reason, ref.name, exc)

    async def _fail_invalid(
        self, ref: builders.FlowRef, body: Manifest, raw_status: Manifest, problem: str
    ) -> None:
        now = datetime.now(UTC)
        body["status"] = flow_status.invalid_status(
            raw_status, problem, now, generation=_generation(body)
        )
        await self._client.replace_flow_status(ref.namespace, ref.name, body)
        metrics.current().flow_ended(metrics.FlowId(ref.namespace, ref.name), "Failed", None)
        await self._event(ref, "InvalidFlow", problem, True, now)

    async def _fail_engine(
        self, ref: builders.FlowRef, body: Manifest, status: FlowStatus, now: datetime, why: str
    ) -> None:
        failed = status.model_copy(update={"phase": "Failed", "message": why, "finished_at": now})
        body["status"] = flow_status.with_conventions(
            failed.model_dump(mode="json", by_alias=True, exclude_none=True),
            body.get("status") or {},
            _generation(body),
            now,
        )
        await self._client.replace_flow_status(ref.namespace, ref.name, body)
        metrics.current().status_written(
            metrics.FlowId(ref.namespace, ref.name), status, failed, []
        )
        await self._event(ref, "FlowFailed", why, True, now)


def _generation(body: Manifest) -> int | None:
    generation = (body.get("metadata") or {}).get("generation")
    return generation if isinstance(generation, int) else None


def _name(obj: Manifest) -> str:
    return str((obj.get("metadata") or {}).get("name"))


def _uid(obj: Manifest) -> str | None:
    uid = (obj.get("metadata") or {}).get("uid")
    return uid if isinstance(uid, str) and uid else None


def _conflict_message(ref: builders.FlowRef, kind: str, existing: Manifest) -> str:
    return (
        f"{kind} {ref.namespace}/{_name(existing)} already exists and is not controlled by "
        f"this Flow (uid {ref.uid}) but by {builders.describe_controller(existing)}: "
        "not adopted; delete it or let its owner's garbage collection remove it"
    )


def _job_terminal(job: Manifest) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def _job_complete(job: Manifest) -> bool:
    return any(
        c.get("type") == "Complete" and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def _chunk(status: FlowStatus, scatter: str) -> int:
    ns = status.nodes.get(scatter)
    batch: BatchStatus | None = ns.batch if ns is not None else None
    return batch.chunk if batch is not None and batch.chunk > 0 else 1


def _deadline_exceeded(pod: Manifest | None) -> bool:
    return pod is not None and (pod.get("status") or {}).get("reason") == "DeadlineExceeded"
