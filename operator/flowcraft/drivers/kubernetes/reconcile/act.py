"""Act: carry out the engine's step: create and delete Jobs, re-ensure, suspend and resume.

Jobs are created while the status is written (package docstring, "Order inside a pass");
every create is safe to repeat, since names are deterministic per attempt and an existing Job
of this Flow is adopted (``Cluster.adopt_job``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from flowcraft.drivers.kubernetes import builders, metrics, names, subflows
from flowcraft.drivers.kubernetes import status as flow_status
from flowcraft.drivers.kubernetes.client import NotFound
from flowcraft.engine import CancelNode, StartNode, Step
from flowcraft.engine.types import EngineError
from flowcraft.model import TERMINAL_FLOW_PHASES

from .cluster import Cluster
from .items import cancel_item, ensure_items, item_jobs, start_item
from .lost import gone_message, left_no_trace
from .manifests import node_job_manifest
from .rounds import start_rounds
from .state import Pass, fail_later, name_of, uid_of

logger = logging.getLogger(__name__)


async def act(cl: Cluster, ctx: Pass, step: Step, success_seen: Mapping[str, float]) -> set[str]:
    """Create the Jobs and delete the Jobs the engine asked for; the created names.

    ``success_seen``: node -> when the event showing its success this pass was received. A
    Job's dependency→create sample starts at the one that satisfied that node's join."""
    ref = ctx.ref
    starts = [a for a in step.actions if isinstance(a, StartNode)]
    cancels = [a for a in step.actions if isinstance(a, CancelNode)]
    if not starts and not cancels:
        return set()
    context_conflict = await cl.store_context(ctx) if starts else None
    outputs = flow_status.output_refs(step.status)
    loop = asyncio.get_running_loop()

    async def start(action: StartNode) -> str:
        if action.item is not None:
            if context_conflict is not None:
                fail_later(ctx.state, action, context_conflict)
                return ""
            return await start_item(cl, ctx, step.status, action, outputs)
        if subflows.runs(ctx.engine, action.node):
            why = await cl.subflows.start(
                ref,
                ctx.engine,
                step.status,
                action,
                outputs=ctx.state.outputs,
                writes=ctx.state.writes,
            )
            if why is not None:
                fail_later(ctx.state, action, why)
            return ""
        if context_conflict is not None:
            fail_later(ctx.state, action, context_conflict)
            return ""
        job = node_job_manifest(cl, ctx, step.status, action, outputs)
        if job is None:
            return ""
        graph = ctx.engine.graph
        since = metrics.join_satisfied_seen(
            graph.sources.get(action.node, ()),
            graph.nodes[action.node].config.join_strategy,
            success_seen,
            graph.fallback,
        )
        async with cl.requests:
            if since is not None and action.attempt == 1:
                latency = loop.time() - since
                metrics.observe_dependency_to_create(latency)
                logger.debug("dependency_to_create %.6f %s", latency, action.node)
            await cl.create_job(ctx, action, job)
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
            await cancel_item(cl, ctx, step.status, action, cancelled)
            return
        if subflows.runs(ctx.engine, action.node):
            await cl.subflows.cancel(ref, action.node, action.attempt, action.iteration)
            return
        job = cl.cache.job(ctx.key, ref.uid, action.node, action.attempt, action.iteration)
        if job is not None:
            await cl.delete_job(ref, name_of(job), uid_of(job))
        else:
            name = names.job_name(ref.name, ref.uid, action.node, action.attempt, action.iteration)
            await cl.delete_job(ref, name, None)

    # Indexed mode: the rounds whose first items start now get their Job first, so every
    # item of the round finds it (``rounds``: round Job names created or found).
    rounds = (
        await start_rounds(cl, ctx, step.status, starts, outputs)
        if context_conflict is None
        else set()
    )
    cancelled: set[str] = set()
    created = await asyncio.gather(*(start(a) for a in starts))
    await asyncio.gather(*(cancel(a) for a in cancels))
    return {name for name in created if name} | rounds


async def ensure_running(cl: Cluster, ctx: Pass, step: Step, created: set[str]) -> None:
    """Find the Jobs the status says are running but the cache has not seen (a restart, a
    lagging watch). One that does not exist was either never created (the status write and
    the create go out together: an operator stopped between them, a create that failed) and
    is created now for the same attempt, or it was deleted (``lost.left_no_trace`` tells
    which): then its attempt fails, and it is never created again under that attempt."""
    key, ref, state, engine = ctx.key, ctx.ref, ctx.state, ctx.engine
    if step.status.phase in TERMINAL_FLOW_PHASES:
        return
    await ensure_items(cl, ctx, step, created)
    missing = [
        (node, attempt)
        for node, attempt in engine.running(step.status)
        if not subflows.runs(engine, node)  # a child Flow, re-checked by observe
        and names.job_name(ref.name, ref.uid, node, attempt, step.status.nodes[node].iteration or 0)
        not in created
        and cl.cache.job(key, ref.uid, node, attempt, step.status.nodes[node].iteration or 0)
        is None
    ]
    if not missing:
        return
    context_conflict = await cl.store_context(ctx)
    outputs = flow_status.output_refs(step.status)
    for node, _attempt in missing:
        try:
            action = engine.start_action(step.status, node, state.outputs, state.writes)
        except EngineError as exc:
            logger.warning("cannot re-ensure %s of %s: %s", node, key.name, exc)
            continue
        if context_conflict is not None:
            fail_later(state, action, context_conflict)
            continue
        job = node_job_manifest(cl, ctx, step.status, action, outputs)
        if job is None:
            continue
        name = job["metadata"]["name"]
        try:
            existing = await cl.client.get_job(ref.namespace, name)
        except NotFound:
            if await left_no_trace(cl, ctx, name):
                logger.warning(
                    "%s/%s: Job %s of running attempt %d of node %s was never created (the "
                    "operator stopped, or the create failed, after the status recorded it): "
                    "creating it now",
                    ref.namespace,
                    ref.name,
                    name,
                    action.attempt,
                    node,
                )
                async with cl.requests:
                    await cl.create_job(ctx, action, job)
                continue
            message = gone_message(ctx, name, action.attempt)
            logger.warning("%s/%s: %s", ref.namespace, ref.name, message)
            fail_later(state, action, message)
            continue
        if builders.controlled_by(existing, ref.uid):
            cl.cache.remember_job(key, existing)
            continue
        await cl.adopt_job(ctx, action, name)  # anyone else's: a conflict failing the attempt


async def apply_suspend(cl: Cluster, ctx: Pass, step: Step) -> None:
    """``spec.suspend`` suspends the running Jobs (their pods stop); resuming resumes them."""
    key, ref = ctx.key, ctx.ref
    want = ctx.spec.suspend and step.status.phase not in TERMINAL_FLOW_PHASES
    jobs = [
        cl.cache.job(key, ref.uid, node, attempt, step.status.nodes[node].iteration or 0)
        for node, attempt in ctx.engine.running(step.status)
    ]
    if want or ctx.state.items_suspended:
        # Item Jobs only while suspending or resuming: otherwise a pass does not walk them.
        jobs.extend(
            cl.cache.job_named(key, ref.uid, name)
            for name in dict.fromkeys(job for job, _ in item_jobs(cl, ctx, step.status))
        )
        ctx.state.items_suspended = want
    for job in jobs:
        if job is None or bool((job.get("spec") or {}).get("suspend")) == want:
            continue
        name = name_of(job)
        try:
            patched = await cl.client.patch_job(ref.namespace, name, {"spec": {"suspend": want}})
        except NotFound:
            continue
        cl.cache.put_job(patched, deleted=False, seen_at=0.0)
