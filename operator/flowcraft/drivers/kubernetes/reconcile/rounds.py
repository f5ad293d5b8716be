"""Indexed mode: the first attempts of a round of batch items run as one Indexed Job.

A round is ``chunk`` consecutive items of a scatter. Its Indexed Job (names.round_job_name)
runs one pod per item, reading its input from the round's items ConfigMap; retries run a Job
of their own (``items``). Fewer objects than a Job per item, which is why it is the default
(bench/README.md, batch items).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from flowcraft.drivers.kubernetes import builders, metrics, names
from flowcraft.drivers.kubernetes.cache import slot as cache_slot
from flowcraft.drivers.kubernetes.client import AlreadyExists, Forbidden, Invalid, NotFound
from flowcraft.engine import StartNode
from flowcraft.model import FlowStatus
from flowcraft.model.flow import ITEM_PENDING

from .cluster import Cluster
from .manifests import item_view
from .state import Pass, chunk_of, conflict_message, name_of

logger = logging.getLogger(__name__)


async def start_rounds(
    cl: Cluster,
    ctx: Pass,
    status: FlowStatus,
    starts: list[StartNode],
    outputs: Mapping[str, str],
) -> set[str]:
    """Indexed mode: one Indexed Job (and its items ConfigMap) per round whose first items
    start in this pass; the names of the round Jobs that exist afterwards.

    A round that cannot run as an Indexed Job (container worker, inputs over a
    ConfigMap's size, a round some of whose items already started as Jobs of their own)
    keeps a Job per item: no Job is created for it here."""
    if not cl.indexed:
        return set()
    by_round: dict[tuple[str, int, int], list[StartNode]] = {}
    for action in starts:
        if action.item is None or action.attempt != 1:
            continue
        fn = ctx.spec.functions.get(action.uses or "")
        if fn is None or not builders.indexed_supported(fn):
            continue
        round_ = action.item // chunk_of(status, action.node)
        by_round.setdefault((action.node, action.iteration, round_), []).append(action)
    made: set[str] = set()
    for (scatter, iteration, round_), actions in by_round.items():
        name = names.round_job_name(ctx.ref.name, ctx.ref.uid, scatter, iteration, round_)
        if cl.cache.job_named(ctx.key, ctx.ref.uid, name) is not None:
            made.add(name)
            continue
        if await _start_round(
            cl, ctx, status, (scatter, iteration, round_), actions, outputs=outputs
        ):
            made.add(name)
    return made


async def _start_round(
    cl: Cluster,
    ctx: Pass,
    status: FlowStatus,
    where: tuple[str, int, int],
    actions: list[StartNode],
    *,
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
        batch.items[i] != ITEM_PENDING and i not in now_started for i in range(first, first + count)
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
            view=item_view(ctx, status, scatter, iteration, outputs),
            runner_image=cl.runner_image_for(ctx.spec),
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
    conflict = await cl.store_output(ctx.ref, items_cm)
    if conflict is not None:
        # Someone else's ConfigMap under the round's name: no pod may mount it.
        await _round_conflict(cl, ctx, round_, scatter, conflict)
        return False
    try:
        async with cl.requests:
            created = await cl.client.create_job(ctx.ref.namespace, job)
    except AlreadyExists:
        try:
            async with cl.requests:
                created = await cl.client.get_job(ctx.ref.namespace, name_of(job))
        except NotFound:
            return False  # deleted meanwhile: this round's items run a Job each
        if not builders.controlled_by(created, ctx.ref.uid):
            conflict = conflict_message(ctx.ref, "Job", created)
            await _round_conflict(cl, ctx, round_, scatter, conflict)
            return False
        cl.cache.remember_job(ctx.key, created)
        _file_round(ctx, name_of(job), (scatter, iteration, first), count)
        return True  # ours already (a restart, a lagging cache)
    except (Invalid, Forbidden) as exc:
        # Forbidden: refused (e.g. a ResourceQuota); each item's Job of its own is then
        # created, or refused and fails its attempt with the server's message.
        logger.warning(
            "%s/%s: the API server refused the Indexed Job of round %d of %s (%s); "
            "its items run a Job each",
            ctx.ref.namespace,
            ctx.ref.name,
            round_,
            scatter,
            exc.message,
        )
        return False
    metrics.current().job_created(ctx.flow_id, job["metadata"]["name"], datetime.now(UTC))
    cl.cache.remember_job(ctx.key, created)
    _file_round(ctx, name_of(job), (scatter, iteration, first), count)
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


def _file_round(ctx: Pass, name: str, where: tuple[str, int, int], count: int) -> None:
    """Remember round Job ``name`` and which item each of its pod slots runs (``where``:
    scatter, iteration, first item)."""
    scatter, iteration, first = where
    slots = [cache_slot(name, index) for index in range(count)]
    ctx.state.round_slots[name] = slots
    for index, index_slot in enumerate(slots):
        ctx.state.item_slots[index_slot] = (scatter, iteration, first + index, 1)


async def _round_conflict(cl: Cluster, ctx: Pass, round_: int, scatter: str, conflict: str) -> None:
    """A round's Indexed Job or items ConfigMap name holds someone else's object: its
    items run a Job each instead (names of their own), with a Warning Event."""
    message = f"round {round_} of {scatter} runs a Job per item: {conflict}"
    logger.warning("%s/%s: %s", ctx.ref.namespace, ctx.ref.name, message)
    await cl.event(ctx.ref, "NameConflict", message, True, datetime.now(UTC))
