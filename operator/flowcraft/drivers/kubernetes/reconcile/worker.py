"""The per-Flow workers and the skeleton of one pass: read, observe, advance, act, record.

:class:`Reconciler` starts one worker task per Flow, coalesces triggers into passes, retries
after API errors and schedules the engine's timers. A pass reads the Flow, prepares the
engine and status, hands over to ``observe`` and ``act``, then writes the status and Events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from flowcraft.drivers.kubernetes import builders, failures, metrics, outcomes, subflows
from flowcraft.drivers.kubernetes import status as flow_status
from flowcraft.drivers.kubernetes.cache import FlowKey, ObjectCache
from flowcraft.drivers.kubernetes.client import Client, Conflict, NotFound
from flowcraft.drivers.kubernetes.policy import Policy
from flowcraft.engine import Engine
from flowcraft.engine.types import EngineError, MissingOutputError
from flowcraft.model import TERMINAL_FLOW_PHASES, FlowStatus
from flowcraft.model.errors import problems_from_pydantic

from .act import act, apply_suspend, ensure_running
from .cluster import Cluster
from .items import seed
from .lost import lost_output_message, restore_configmaps
from .observe import observe
from .outputs import load_item_outputs, load_outputs
from .state import FlowState, Manifest, Pass, generation_of

logger = logging.getLogger(__name__)

_MAX_PARALLEL_REQUESTS = 32

# How batch items run (the operator's --batch-jobs flag): one Job per item attempt, or one
# Indexed Job per round for first attempts (retries and container functions: a Job each).
BATCH_JOB_PER_ITEM = "per-item"
BATCH_INDEXED = "indexed"
BATCH_MODES = (BATCH_JOB_PER_ITEM, BATCH_INDEXED)


@contextlib.contextmanager
def keeping_started(ctx: Pass) -> Iterator[None]:
    """A pass that fails (an API error, a Conflict on the status write) still keeps the items
    it started to look at next pass: its status write may have recorded them running while
    their Jobs were not created, and no watch event would ever bring them back."""
    try:
        yield
    except BaseException:
        ctx.state.recheck |= ctx.started
        raise


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
        policy: Policy | None = None,
        pod_creation_timeout: float = outcomes.POD_CREATION_TIMEOUT_SECONDS,
    ) -> None:
        if batch_mode not in BATCH_MODES:
            raise ValueError(f"batch mode must be one of {BATCH_MODES}, got {batch_mode!r}")
        if not pod_creation_timeout > 0:
            raise ValueError(f"pod creation timeout must be positive, got {pod_creation_timeout}")
        self._client = client
        self._cache = cache
        self._policy = policy or Policy()  # what Flows may run (policy.py); off by default
        self._flows: dict[FlowKey, FlowState] = {}
        self.subflows = subflows.Subflows(client)  # subflow nodes run as child Flows
        self._cluster = Cluster(
            client=client,
            cache=cache,
            requests=asyncio.Semaphore(_MAX_PARALLEL_REQUESTS),
            subflows=self.subflows,
            instance=instance,
            runner_image=runner_image,
            indexed=batch_mode == BATCH_INDEXED,
            pod_creation_limit=timedelta(seconds=pod_creation_timeout),
        )

    # -- triggering -----------------------------------------------------------------------

    def trigger(self, key: FlowKey) -> None:
        """Ask for a pass over ``key``: starts a worker, or marks the running one dirty."""
        state = self._flows.get(key)
        if state is None:
            state = self._flows[key] = FlowState()
        state.dirty = True
        if state.worker is None or state.worker.done():
            state.worker = asyncio.get_running_loop().create_task(
                self._work(key, state), name=f"reconcile {key.namespace}/{key.name}"
            )
            state.worker.add_done_callback(lambda task: self._worker_done(key, state, task))

    def flow_changed(self, key: FlowKey, resource_version: str | None) -> None:
        """A watch event for the Flow: unless it is the echo of our own write, forget our copy
        (the next pass reads it fresh) and ask for a pass. While our status write is in
        flight, the event waits for its answer (``_write_status``) to be judged."""
        state = self._flows.get(key)
        if state is not None and state.writing:
            state.parked.append(resource_version)
            return
        if self.is_own_write(key, resource_version):
            return
        self._foreign_change(key, state)

    def _foreign_change(self, key: FlowKey, state: FlowState | None) -> None:
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
            and (state.written_rv == resource_version or resource_version in state.own_rvs)
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

    def _worker_done(self, key: FlowKey, state: FlowState, task: asyncio.Task[None]) -> None:
        """Last resort: _work handles every failure of a pass; anything escaping it (a bug in
        the handling itself) is logged and retried with the same capped backoff."""
        if task.cancelled() or task.exception() is None:
            return
        state.errors += 1
        delay = failures.backoff_seconds(state.errors)
        logger.error(
            "reconcile worker of %s/%s died; retrying in %.1fs",
            key.namespace,
            key.name,
            delay,
            exc_info=task.exception(),
        )
        if self._flows.get(key) is state:
            self._schedule(key, state, delay)

    def _schedule(self, key: FlowKey, state: FlowState, delay: float) -> None:
        if state.timer is not None:
            state.timer.cancel()
        loop = asyncio.get_running_loop()
        state.timer = loop.call_at(loop.time() + max(0.0, delay), self.trigger, key)

    async def _work(self, key: FlowKey, state: FlowState) -> None:
        while state.dirty:
            state.dirty = False
            try:
                await self._pass(key, state)
                state.errors = state.crashes = 0
            except Conflict:
                # Someone (often the user editing the spec) changed the Flow: read it again.
                logger.debug("conflict on %s/%s, re-reading", key.namespace, key.name)
                state.dirty = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure is bounded (failures.py)
                await self._failed_pass(key, state, exc)

    async def _failed_pass(self, key: FlowKey, state: FlowState, exc: Exception) -> None:
        """Back off, tell the Flow's owner (Event, Reconciling condition), and after
        failures.MAX_CRASHES crashed passes in a row fail the Flow with the cause."""
        state.errors += 1
        crash = failures.is_crash(exc)
        if crash:
            state.crashes += 1
        delay = failures.backoff_seconds(state.errors)
        logger.log(
            logging.ERROR if crash else logging.WARNING,
            "reconcile of %s/%s %s (%s); retrying in %.1fs",
            key.namespace,
            key.name,
            "crashed" if crash else "failed",
            failures.cause(exc),
            delay,
            exc_info=exc if crash else None,
        )
        if crash and failures.gives_up(state.crashes):
            try:
                await self._give_up(key, state, exc)
                return
            except Exception as again:  # keep retrying, bounded by the backoff
                logger.error("could not mark %s/%s Failed: %s", key.namespace, key.name, again)
        else:
            await self._report_failure(
                key, failures.retry_message(state.errors, state.crashes, exc)
            )
        if self._flows.get(key) is state:
            self._schedule(key, state, delay)

    async def _report_failure(self, key: FlowKey, message: str) -> None:
        """Best effort (the API may be what fails): an Event and the Reconciling condition."""
        try:
            body = await self._client.get_flow(key.namespace, key.name)
            meta = body.get("metadata") or {}
            ref = builders.FlowRef(key.name, key.namespace, str(meta.get("uid")))
            now = datetime.now(UTC)
            await self._cluster.event(ref, failures.REASON_RECONCILE_ERROR, message, True, now)
            body["status"] = flow_status.with_reconcile_error(
                body.get("status") or {}, failures.REASON_RECONCILE_ERROR, message, now
            )
            await self._client.replace_flow_status(key.namespace, key.name, body)
        except Exception as exc:  # reporting must not add a failure
            logger.debug("could not report the failure on %s/%s: %s", key.namespace, key.name, exc)

    async def _give_up(self, key: FlowKey, state: FlowState, exc: Exception) -> None:
        """Fail the Flow with the cause: its status says it, an Event says it, and the
        operator stops working on it (its pods finish or stop on their own deadlines)."""
        why = failures.give_up_message(state.crashes, exc)
        body = await self._client.get_flow(key.namespace, key.name)
        meta = body.get("metadata") or {}
        ref = builders.FlowRef(key.name, key.namespace, str(meta.get("uid")))
        now = datetime.now(UTC)
        body["status"] = flow_status.invalid_status(
            body.get("status") or {}, why, now, generation=generation_of(body)
        )
        written = await self._client.replace_flow_status(key.namespace, key.name, body)
        state.written_rv = (written.get("metadata") or {}).get("resourceVersion")
        metrics.current().flow_ended(metrics.FlowId(key.namespace, key.name), "Failed", None)
        await self._cluster.event(ref, failures.REASON_RECONCILE_FAILED, why, True, now)
        logger.error("%s/%s: Failed (%s)", key.namespace, key.name, why)
        state.errors = state.crashes = 0

    async def _write_status(self, key: FlowKey, state: FlowState, body: Manifest) -> Manifest:
        """PUT the status; Flow events that arrived meanwhile are judged once the written
        resourceVersion is known: its echo is ours, anything else is someone's change.

        Without this, an echo that beat the PUT's response counted as a foreign change, and
        the next pass paid a GET of the Flow (under load, a third of the status writes)."""
        state.writing = True
        written_rv: str | None = None
        try:
            written = await self._client.replace_flow_status(key.namespace, key.name, body)
            written_rv = (written.get("metadata") or {}).get("resourceVersion")
            state.written_rv = written_rv
            if written_rv is not None:
                state.own_rvs.append(written_rv)
            return written
        finally:
            state.writing = False
            parked, state.parked = state.parked, []
            foreign = any(rv is None or rv not in state.own_rvs for rv in parked)
            if foreign and self._flows.get(key) is state:
                self._foreign_change(key, state)

    # -- one pass -------------------------------------------------------------------------

    async def _pass(self, key: FlowKey, state: FlowState) -> None:
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
            state.running_seen, state.timed_out, state.lost_outputs = {}, {}, {}
            state.gone_jobs, state.pod_waits, state.unsure_creates = {}, {}, {}
        raw_status: Manifest = dict(body.get("status") or {})
        generation = generation_of(body)
        if raw_status.get("phase") in TERMINAL_FLOW_PHASES:
            self._retire(key, state)
            finished = flow_status.observe_finished(raw_status, generation, datetime.now(UTC))
            if finished is not None:  # a spec edit after the end, or no conditions yet
                body["status"] = finished
                await self._write_status(key, state, body)
            return

        now = datetime.now(UTC)
        prepared = await self._prepare(ref, state, body, raw_status, now)
        if prepared is None:
            return  # the Flow is invalid and was marked Failed
        engine, status = prepared
        spec = engine.spec

        cl = self._cluster
        ctx = Pass(key, ref, state, spec, engine)
        with keeping_started(ctx):
            await seed(cl, ctx, status)
            await restore_configmaps(cl, ctx)
            await load_outputs(cl, ctx, status, now)
            await load_item_outputs(cl, ref, state, status)
            events, success_seen = await observe(cl, ctx, status, now)
            try:
                step = engine.advance(status, events, now, state.outputs, state.writes)
            except EngineError as exc:
                lost = (
                    lost_output_message(state, exc.node)
                    if isinstance(exc, MissingOutputError)
                    else None
                )
                await self._fail_engine(ref, body, status, now, lost or str(exc))
                return

            # The status write goes out together with the Job creates (package docstring, "Order
            # inside a pass"): the pass, which the Flow's next event waits for, takes the longer
            # of the two round trips instead of their sum.
            new_status = flow_status.render_status(
                step.status,
                state.real_start,
                len(spec.nodes),
                previous=raw_status,
                generation=generation,
                now=now,
            )
            write: asyncio.Task[Manifest] | None = None
            if flow_status.material_change(raw_status, new_status):
                body["status"] = new_status
                write = asyncio.create_task(self._write_status(key, state, body))
            try:
                created = await act(cl, ctx, step, success_seen)
                await ensure_running(cl, ctx, step, created)
                await apply_suspend(cl, ctx, step)
            finally:
                # Never leave the write running past the pass (one pass at a time per Flow); an
                # error of either reruns the pass.
                written = await write if write is not None else None
            if written is not None:
                metrics.current().status_written(ctx.flow_id, status, step.status, ctx.finished)
                await self._post_events(ref, status, step.status, now)
                body = written
            if state.foreign_events == foreign_events:
                state.latest = body  # else someone changed the Flow meanwhile: read it next time
            # Recorded: later watch events bring what changes next; items just started get a look.
            state.recheck = (state.recheck - ctx.observed) | ctx.started

            wake_at = min([*([step.wake_at] if step.wake_at else []), *ctx.deadlines], default=None)
            if wake_at is not None and step.status.phase not in TERMINAL_FLOW_PHASES:
                self._schedule(key, state, (wake_at - datetime.now(UTC)).total_seconds())
            elif state.timer is not None:
                state.timer.cancel()
                state.timer = None
            if state.pending:
                state.dirty = True

    def _retire(self, key: FlowKey, state: FlowState) -> None:
        """A finished Flow needs nothing in memory: drop its Jobs, pods, outputs and engine."""
        self._cache.forget(key)
        metrics.current().forget(metrics.FlowId(key.namespace, key.name))
        state.engine, state.engine_generation = None, None
        state.outputs, state.real_start, state.pending, state.parsed = {}, {}, [], None
        state.writes, state.context_stored = {}, False
        state.seeded, state.item_outputs = False, {}
        state.item_slots, state.round_slots, state.recheck = {}, {}, set()
        state.items_scanned = state.items_suspended = False
        state.running_seen, state.timed_out, state.lost_outputs = {}, {}, {}
        state.gone_jobs, state.pod_waits, state.unsure_creates = {}, {}, {}
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None

    async def _prepare(
        self,
        ref: builders.FlowRef,
        state: FlowState,
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
            flow, problem = flow_status.parse_flow(body, self._policy)
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

    # -- record ---------------------------------------------------------------------------

    async def _post_events(
        self, ref: builders.FlowRef, old: FlowStatus, new: FlowStatus, now: datetime
    ) -> None:
        if new.phase in TERMINAL_FLOW_PHASES and old.phase != new.phase:
            logger.info("%s/%s: %s (%s)", ref.namespace, ref.name, new.phase, new.message)
        for note in flow_status.notes(old, new, ref.name, ref.namespace):
            await self._cluster.event(ref, note.reason, note.message, note.warning, now)

    async def _fail_invalid(
        self, ref: builders.FlowRef, body: Manifest, raw_status: Manifest, problem: str
    ) -> None:
        now = datetime.now(UTC)
        body["status"] = flow_status.invalid_status(
            raw_status, problem, now, generation=generation_of(body)
        )
        await self._client.replace_flow_status(ref.namespace, ref.name, body)
        metrics.current().flow_ended(metrics.FlowId(ref.namespace, ref.name), "Failed", None)
        await self._cluster.event(ref, "InvalidFlow", problem, True, now)

    async def _fail_engine(
        self, ref: builders.FlowRef, body: Manifest, status: FlowStatus, now: datetime, why: str
    ) -> None:
        failed = status.model_copy(update={"phase": "Failed", "message": why, "finished_at": now})
        body["status"] = flow_status.with_conventions(
            failed.model_dump(mode="json", by_alias=True, exclude_none=True),
            body.get("status") or {},
            generation_of(body),
            now,
        )
        await self._client.replace_flow_status(ref.namespace, ref.name, body)
        metrics.current().status_written(
            metrics.FlowId(ref.namespace, ref.name), status, failed, []
        )
        await self._cluster.event(ref, "FlowFailed", why, True, now)
