"""Batch items: which Job runs which item, and starting, cancelling, re-ensuring item Jobs.

An item attempt runs in a Job of its own (names.item_job_name) or, in indexed mode, as one
index of its round's Indexed Job (names.round_job_name; first attempts only, see ``rounds``).
Which of the two is read from the cache: a round's Job exists exactly when the round started in
indexed mode, so a restarted operator (whose first pass lists the Flow's Jobs, see ``seed``)
maps every item the same way. Once seen it is also remembered (``state.round_slots``), so a
round Job deleted while its items run stays theirs: they fail (``lost``) instead of starting
again under Jobs of their own. The per-pass work over running items is in memory
(names are cached, lookups are dict hits); API calls happen only for what changed: a Job to
create, an output to store, a Job to delete.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from flowcraft.drivers.kubernetes import builders, names
from flowcraft.drivers.kubernetes import status as flow_status
from flowcraft.drivers.kubernetes.cache import slot as cache_slot
from flowcraft.engine import CancelNode, StartNode, Step
from flowcraft.engine.types import EngineError
from flowcraft.model import FlowStatus
from flowcraft.model.flow import ITEM_RUNNING

from .cluster import Cluster
from .manifests import item_job_manifest
from .state import ItemRow, Pass, chunk_of, fail_later, job_terminal, name_of, uid_of

logger = logging.getLogger(__name__)


async def seed(cl: Cluster, ctx: Pass, status: FlowStatus) -> None:
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
        cl.client.list_jobs(ctx.ref.namespace, selector),
        cl.client.list_pods(ctx.ref.namespace, selector),
    )
    jobs = [job for job in jobs if builders.controlled_by(job, ctx.ref.uid)]
    for job in jobs:
        cl.cache.remember_job(ctx.key, job)
    ours = {uid_of(job) for job in jobs}
    pods = [pod for pod in pods if (builders.controller_of(pod, "Job") or {}).get("uid") in ours]
    for pod in pods:
        cl.cache.remember_pod(ctx.key, pod)
    logger.info(
        "%s/%s: listed %d Jobs and %d pods of running batch items",
        ctx.ref.namespace,
        ctx.ref.name,
        len(jobs),
        len(pods),
    )


def item_job(
    cl: Cluster, ctx: Pass, chunk: int, item: tuple[str, int, int, int]
) -> tuple[str, int | None]:
    """(Job name, completion index of its pod in a round's Indexed Job, else None) of an
    item attempt (scatter, iteration, item, attempt).

    A round's Indexed Job this process created or found stays the Job of its items' first
    attempts after it is gone (deleted while they ran: they fail, see ``lost``); only a
    round that never had one runs a Job per item."""
    scatter, iteration, index, attempt = item
    ref = ctx.ref
    if cl.indexed and attempt == 1:
        round_ = index // chunk
        job = names.round_job_name(ref.name, ref.uid, scatter, iteration, round_)
        if job in ctx.state.round_slots or cl.cache.job_named(ctx.key, ref.uid, job) is not None:
            return job, index - round_ * chunk
    return names.item_job_name(ref.name, ref.uid, scatter, iteration, index, attempt=attempt), None


def running_items(cl: Cluster, ctx: Pass, status: FlowStatus) -> list[ItemRow]:
    """(scatter, iteration, item, attempt, Job name, completion index or None) of every
    running item."""
    for seen, rows in ctx.running:
        if seen is status:
            return rows
    out = []
    for scatter, iteration, item, attempt in ctx.engine.running_items(status):
        chunk = chunk_of(status, scatter)
        job, index = item_job(cl, ctx, chunk, (scatter, iteration, item, attempt))
        out.append((scatter, iteration, item, attempt, job, index))
        ctx.state.item_slots[cache_slot(job, index)] = (scatter, iteration, item, attempt)
    ctx.running.append((status, out))
    return out


def changed_items(cl: Cluster, ctx: Pass, status: FlowStatus, changed: set[str]) -> list[ItemRow]:
    """The rows of ``running_items`` for the running items among ``changed`` (pod slots
    and Job names); an Indexed Job that ended stands for all of its items."""
    slots = set()
    for name in changed:
        if name in ctx.state.item_slots:
            slots.add(name)
        if name in ctx.state.round_slots:
            round_job = cl.cache.job_named(ctx.key, ctx.ref.uid, name)
            if round_job is None or job_terminal(round_job):
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
        job, index = item_job(cl, ctx, batch.chunk, (scatter, iteration, item, attempt))
        if cache_slot(job, index) == where:
            rows.append((scatter, iteration, item, attempt, job, index))
    return rows


def round_jobs(cl: Cluster, ctx: Pass, status: FlowStatus) -> dict[str, list[str]]:
    """Indexed Job -> pod slots of its running items (after a restart: what an ended
    Job stands for in changed_items)."""
    out: dict[str, list[str]] = {}
    for *_, job, index in running_items(cl, ctx, status):
        if index is not None:
            out.setdefault(job, []).append(cache_slot(job, index))
    return out


def item_jobs(cl: Cluster, ctx: Pass, status: FlowStatus) -> list[tuple[str, int | None]]:
    return [(job, index) for *_, job, index in running_items(cl, ctx, status)]


async def start_item(
    cl: Cluster,
    ctx: Pass,
    status: FlowStatus,
    action: StartNode,
    outputs: Mapping[str, str],
) -> str:
    """Start one item attempt: the name of the Job created for it, else "" (an index of its
    round's Indexed Job, created by ``rounds.start_rounds``, or an attempt that failed)."""
    item = action.item if action.item is not None else 0
    chunk = chunk_of(status, action.node)
    ident = (action.node, action.iteration, item, action.attempt)
    name, index = item_job(cl, ctx, chunk, ident)
    where = cache_slot(name, index)
    ctx.state.item_slots[where] = ident
    ctx.started.add(where)
    if index is not None:
        return ""  # an index of its round's Indexed Job (created in start_rounds)
    job = item_job_manifest(cl, ctx, status, action, outputs)
    if job is None:
        return ""
    async with cl.requests:
        await cl.create_job(ctx, action, job)
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


async def cancel_item(
    cl: Cluster, ctx: Pass, status: FlowStatus, action: CancelNode, cancelled: set[str]
) -> None:
    """Delete an item attempt's Job (a round's Indexed Job once, whatever its items)."""
    item = action.item if action.item is not None else 0
    chunk = chunk_of(status, action.node)
    name, _ = item_job(cl, ctx, chunk, (action.node, action.iteration, item, action.attempt))
    if name in cancelled:
        return  # a round's Indexed Job, deleted once for all of its items
    cancelled.add(name)
    job = cl.cache.job_named(ctx.key, ctx.ref.uid, name)
    await cl.delete_job(ctx.ref, name, uid_of(job) if job is not None else None)


async def ensure_items(cl: Cluster, ctx: Pass, step: Step, created: set[str]) -> None:
    """Re-create the Jobs of running items the cache has not seen (after a restart).

    Once per (re)start: afterwards every item Job is created by ``act`` (or fails the item
    through the next pass), so later passes do not walk the running items."""
    key, state = ctx.key, ctx.state
    if state.items_scanned:
        return
    state.items_scanned = True
    state.round_slots.update(round_jobs(cl, ctx, step.status))
    missing = [
        (scatter, item)
        for scatter, _it, item, _attempt, job, _index in running_items(cl, ctx, step.status)
        if job not in created and cl.cache.job_named(key, ctx.ref.uid, job) is None
    ]
    if not missing:
        return
    context_conflict = await cl.store_context(ctx)
    outputs = flow_status.output_refs(step.status)

    async def ensure(scatter: str, item: int) -> None:
        try:
            action = ctx.engine.start_action(
                step.status, scatter, state.outputs, state.writes, item=item
            )
        except EngineError as exc:
            logger.warning("cannot re-ensure item %d of %s of %s: %s", item, scatter, key.name, exc)
            return
        if context_conflict is not None:
            fail_later(state, action, context_conflict)
            return
        job = item_job_manifest(cl, ctx, step.status, action, outputs)
        if job is None:
            return
        async with cl.requests:
            made = await cl.create_job(ctx, action, job)
        if not made:
            return  # adopted (ours), or the attempt failed (refused, a name conflict)
        logger.info(
            "%s/%s: item %d of %s attempt %d -> Job %s (its Job was missing at the restart)",
            ctx.ref.namespace,
            ctx.ref.name,
            item,
            scatter,
            action.attempt,
            name_of(job),
        )

    await asyncio.gather(*(ensure(scatter, item) for scatter, item in missing))
