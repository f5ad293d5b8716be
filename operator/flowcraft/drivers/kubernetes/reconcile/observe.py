"""Observe: engine events from what the running attempts' Jobs and pods show.

Reads come from the watch cache (a LIST only for a Job that ended before its pods reached it);
the outcome of a Job and pod is decided by ``outcomes``. Successes are remembered and their
outputs stored here, before the status that points at them is written.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from flowcraft.drivers.kubernetes import metrics, outcomes, subflows
from flowcraft.drivers.kubernetes.cache import slot as cache_slot
from flowcraft.engine import NodeFailed
from flowcraft.engine.types import Event
from flowcraft.model import FlowStatus

from .cluster import Cluster
from .items import changed_items, running_items
from .lost import check_timeout, gone_message, item_job_gone, no_pod, stop_pod
from .outputs import remember_success, store_outputs
from .state import (
    Manifest,
    Pass,
    deadline_exceeded,
    job_complete,
    job_terminal,
    name_of,
    uid_of,
)

logger = logging.getLogger(__name__)


async def observe(
    cl: Cluster, ctx: Pass, status: FlowStatus, now: datetime
) -> tuple[list[Event], dict[str, float]]:
    """Engine events for every running attempt whose Job or pod shows an outcome, and for
    each node that succeeded, when the event showing it was received (the start of its
    dependents' dependency→create samples, ``metrics.join_satisfied_seen``)."""
    key, ref, state, engine = ctx.key, ctx.ref, ctx.state, ctx.engine
    events: list[Event] = list(state.pending)
    state.pending = []
    success_seen: dict[str, float] = {}
    suspended = bool(status.phase == "Running" and engine.spec.suspend)
    configmaps: list[tuple[int, Manifest]] = []  # (index in events, ConfigMap)
    stuck: list[Manifest] = []
    timed_out: list[Manifest] = []  # pods of attempts past their timeout, to stop
    listed: set[str] = set()  # Jobs whose pods this pass listed (by uid)
    for node, attempt in engine.running(status):
        iteration = status.nodes[node].iteration or 0
        if subflows.runs(engine, node):
            sub = await cl.subflows.observe(
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
        job = cl.cache.job(key, ref.uid, node, attempt, iteration)
        if job is None:
            continue  # not created, or not seen yet: ensure_running sees to it
        job_name = str((job.get("metadata") or {}).get("name"))
        if suspended and (job.get("spec") or {}).get("suspend"):
            continue  # its pod was stopped on purpose; the attempt resumes later
        pod = cl.cache.pod(key, job)
        if pod is None and job_complete(job):
            pod = await cl.find_pod(ref, job)
        outcome = outcomes.observe(job, pod, now)
        if isinstance(outcome, outcomes.InLog):
            outcome = await cl.read_result(ref, outcome)  # a result too large for the message
        if outcome is None and pod is None and job_complete(job):
            # Listed just now: the Job completed and no pod of it is left to read.
            outcome = outcomes.pod_gone(job, now)
            if outcome is not None:
                logger.warning("%s/%s: %s", ref.namespace, ref.name, outcome.message)
        if outcome is None and pod is None:
            decided = await no_pod(cl, ctx, job, listed, now)  # the Job never got a pod
            outcome = decided if isinstance(decided, outcomes.Failed) else None
        late = check_timeout(ctx, (node, attempt, iteration), outcome, now)
        if late is not None:
            if pod is not None and isinstance(outcome, outcomes.Started):
                timed_out.append(pod)
            outcome = late
        if outcome is None:
            continue
        count(ctx, node, job_name, outcome, now)
        started = outcome.at if isinstance(outcome, outcomes.Started) else outcome.started_at
        if started is not None and attempt == 1:
            state.real_start.setdefault(node, started)
        if isinstance(outcome, outcomes.Succeeded):
            remember_success(
                ctx,
                outcome,
                events,
                configmaps,
                node=node,
                attempt=attempt,
                iteration=iteration,
                item=None,
            )
            seen = cl.cache.finished_seen(key, job)
            if seen is not None:
                success_seen[node] = max(seen, success_seen.get(node, seen))
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
            if outcome.stuck and not job_terminal(job):
                stuck.append(job)  # e.g. an image that cannot be pulled, or no pod at all
                state.gone_jobs[job_name] = outcome.message
    stuck.extend(
        await observe_items(
            cl, ctx, status, now, events=events, configmaps=configmaps, listed=listed
        )
    )
    # Outputs are stored before the status points at them (and before downstream pods
    # mount them).
    await store_outputs(cl, ctx, events, configmaps, now)
    await asyncio.gather(*(cl.delete_job(ref, name_of(job), uid_of(job)) for job in stuck))
    await asyncio.gather(*(stop_pod(cl, ref, pod) for pod in timed_out))
    return events, success_seen


async def observe_items(
    cl: Cluster,
    ctx: Pass,
    status: FlowStatus,
    now: datetime,
    *,
    events: list[Event],
    configmaps: list[tuple[int, Manifest]],
    listed: set[str],
) -> list[Manifest]:
    """Engine events for running items whose pod (or Job) shows an outcome; the Jobs of
    stuck items to delete. Item outputs to store go to ``configmaps`` (index in events).

    The first pass after a (re)start looks at every running item; later passes only at
    the items whose Job or pod a watch event changed since (and at items just started),
    so a pass costs O(what changed), not O(running items). Only Jobs this Flow controls
    are looked at, and only pods their Job controls. Items whose Job had no pod yet are
    looked at again when the no-pod rule would fire (``state.pod_waits``)."""
    key, ref, state = ctx.key, ctx.ref, ctx.state
    suspended = bool(status.phase == "Running" and ctx.spec.suspend)
    stuck: dict[str, Manifest] = {}
    due = {where for where, at in state.pod_waits.items() if at <= now}
    for where in due:
        del state.pod_waits[where]
    changed = cl.cache.drain_changed(key) | state.recheck | due
    state.recheck = set(changed)  # until the pass completes (see Reconciler._pass)
    ctx.observed.update(changed)
    if state.items_scanned:
        rows = changed_items(cl, ctx, status, changed)
    else:
        rows = running_items(cl, ctx, status)
    for scatter, iteration, item, attempt, job_name, index in rows:
        where = cache_slot(job_name, index)
        state.pod_waits.pop(where, None)
        job = cl.cache.job_named(key, ref.uid, job_name)
        if job is None:
            if state.items_scanned and await item_job_gone(cl, ctx, job_name):
                # Deleted while it ran: the attempt fails, the Job is never created again.
                message = gone_message(ctx, job_name, attempt)
                count(ctx, scatter, where, outcomes.Failed(None, now, message), now)
                events.append(
                    NodeFailed(scatter, attempt, now, message, iteration=iteration, item=item)
                )
                continue
            # Not created, or not seen yet (ensure_items sees to it): its pods count only
            # through it, so look again next pass.
            ctx.started.add(where)
            continue
        if suspended and (job.get("spec") or {}).get("suspend"):
            continue
        indexed = index is not None
        pod = cl.cache.pod(key, job, index)
        ended = job_terminal(job) if indexed else job_complete(job)
        job_uid = uid_of(job)
        if pod is None and ended and job_uid is not None and job_uid not in listed:
            # The Job ended but its pods never reached the cache: one LIST per Job, by
            # its uid (never by a job-name label).
            listed.add(job_uid)
            for found in await cl.list_job_pods(ref, job_uid):
                cl.cache.remember_pod(key, found)
            pod = cl.cache.pod(key, job, index)
        outcome = outcomes.observe(None if indexed else job, pod, now)
        if isinstance(outcome, outcomes.InLog):
            outcome = await cl.read_result(ref, outcome)
        if outcome is None and indexed and job_terminal(job):
            outcome = outcomes.Failed(
                None, now, f"Indexed Job {job_name} ended without a pod for item {item}"
            )
        no_pod_at_all = False  # of any index: the Job is deleted, all its items fail
        if outcome is None and pod is None:
            decided = await no_pod(cl, ctx, job, listed, now)
            if isinstance(decided, datetime):
                state.pod_waits[where] = decided
            elif decided is not None:
                outcome, no_pod_at_all = decided, True
        if outcome is None:
            continue
        if indexed and isinstance(outcome, outcomes.Failed) and deadline_exceeded(pod):
            outcome = outcomes.Failed(
                outcome.started_at, outcome.at, "timed out (activeDeadlineSeconds)", True
            )
        count(ctx, scatter, cache_slot(job_name, index), outcome, now)
        if isinstance(outcome, outcomes.Succeeded):
            remember_success(
                ctx,
                outcome,
                events,
                configmaps,
                node=scatter,
                attempt=attempt,
                iteration=iteration,
                item=item,
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
            if outcome.stuck and (no_pod_at_all or not indexed) and not job_terminal(job):
                stuck[job_name] = job
                state.gone_jobs[job_name] = outcome.message
    if state.pod_waits:
        ctx.deadlines.append(min(state.pod_waits.values()))
    return list(stuck.values())


def count(ctx: Pass, node: str, job_name: str, outcome: outcomes.Outcome, now: datetime) -> None:
    """Feed the running gauge, create→running latency and the attempt's run time."""
    if isinstance(outcome, outcomes.Started):
        metrics.current().pod_running(ctx.flow_id, job_name, now)
        return
    metrics.current().pod_finished(ctx.flow_id, job_name, outcome.started_at)
    if outcome.started_at is not None:  # a pod that never started has no run time
        succeeded = isinstance(outcome, outcomes.Succeeded)
        ctx.finished.append(metrics.Attempt(node, outcome.started_at, outcome.at, succeeded))
