"""Outputs of succeeded attempts: held in memory for the engine, stored in ConfigMaps.

A succeeded attempt's output is remembered (``state.outputs``/``state.writes``) when its pod
is observed, stored in an immutable ConfigMap before the status points at it, and read back
from those ConfigMaps after a restart (nodes one by one, batch items one LIST per scatter).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from flowcraft.contract import item_key, result_key
from flowcraft.drivers.kubernetes import builders, names, outcomes
from flowcraft.drivers.kubernetes import status as flow_status
from flowcraft.drivers.kubernetes.client import NotFound
from flowcraft.engine import NodeFailed, NodeSucceeded
from flowcraft.engine.types import Event
from flowcraft.model import FlowStatus
from flowcraft.model.flow import ITEM_SUCCEEDED

from .cluster import Cluster
from .lost import reread_output
from .state import FlowState, Manifest, Pass

logger = logging.getLogger(__name__)


def remember_success(
    ctx: Pass,
    outcome: outcomes.Succeeded,
    events: list[Event],
    configmaps: list[tuple[int, Manifest]],
    *,
    node: str,
    attempt: int,
    iteration: int,
    item: int | None,
) -> None:
    """Record a succeeded attempt of ``node`` (of its batch item ``item``, if not None): the
    output ConfigMap to store goes to ``configmaps`` (with the index of its event), the output
    is held for the engine, and its NodeSucceeded event goes to ``events``.

    Nodes and items differ on purpose in two ways only: an item's ConfigMap is named per item
    (not per attempt) and labelled so a restart lists a scatter's items at once; and item
    outputs are counted per scatter (``state.item_outputs``), so that no pass rescans them."""
    ref, state = ctx.ref, ctx.state
    if item is None:
        cm = builders.output_configmap(
            ref, node, attempt, outcome.output, outcome.writes, iteration=iteration
        )
        stored = result_key(node, iteration)
    else:
        cm = builders.item_output_configmap(
            ref,
            node,
            outcome.output,
            outcome.writes,
            item=item,
            attempt=attempt,
            iteration=iteration,
        )
        stored = item_key(node, iteration, item)
        if stored not in state.outputs:
            counted = state.item_outputs.get((node, iteration), 0)
            state.item_outputs[(node, iteration)] = counted + 1
    configmaps.append((len(events), cm))
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
            item=item,
        )
    )


def forget_output(state: FlowState, done: NodeSucceeded) -> None:
    """Undo what ``remember_success`` remembered, when its output could not be stored."""
    if done.item is None:
        stored = result_key(done.node, done.iteration)
    else:
        stored = item_key(done.node, done.iteration, done.item)
        where = (done.node, done.iteration)
        if stored in state.outputs and state.item_outputs.get(where, 0) > 0:
            state.item_outputs[where] -= 1
    state.outputs.pop(stored, None)
    state.writes.pop(stored, None)


async def store_outputs(
    cl: Cluster,
    ctx: Pass,
    events: list[Event],
    configmaps: list[tuple[int, Manifest]],
    now: datetime,
) -> None:
    """Store the output ConfigMaps of this pass's successes, concurrently (a wide join can
    finish many nodes in one pass). A success whose ConfigMap name holds someone else's
    object becomes a failure of its attempt (in ``events``), with a Warning Event."""
    ref = ctx.ref
    conflicts = await asyncio.gather(*(cl.store_output(ref, cm) for _, cm in configmaps))
    for (index, _cm), conflict in zip(configmaps, conflicts, strict=True):
        if conflict is None:
            continue
        done = events[index]
        assert isinstance(done, NodeSucceeded)
        forget_output(ctx.state, done)
        events[index] = NodeFailed(
            done.node,
            done.attempt,
            done.at,
            conflict,
            iteration=done.iteration,
            item=done.item,
        )
        await cl.event(ref, "NameConflict", conflict, True, now)


async def load_outputs(cl: Cluster, ctx: Pass, status: FlowStatus, now: datetime) -> None:
    """Fill the outputs the engine may need (after a restart: from the ConfigMaps; one that
    is gone is re-read from the attempt that produced it, else noted as lost)."""
    ref, state = ctx.ref, ctx.state
    missing = {
        key: cm_name
        for key, cm_name in flow_status.output_refs(status).items()
        if key not in state.outputs
    }
    if not missing:
        return
    by_name: dict[str, Manifest] = {}
    for cm in await cl.client.list_configmaps(ref.namespace, builders.flow_uid_selector(ref)):
        by_name[str((cm.get("metadata") or {}).get("name"))] = cm
    for node, cm_name in missing.items():
        found = by_name.get(cm_name)
        if found is None:
            try:
                found = await cl.client.get_configmap(ref.namespace, cm_name)
            except NotFound:
                found = await reread_output(cl, ctx, cm_name, now)
            if found is None:
                logger.warning("output ConfigMap %s of node %s is gone, and its pod", cm_name, node)
                state.lost_outputs[node] = cm_name
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


async def load_item_outputs(
    cl: Cluster, ref: builders.FlowRef, state: FlowState, status: FlowStatus
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
            found = await cl.client.list_configmaps(
                ref.namespace, builders.item_outputs_selector(ref, scatter)
            )
            listed[scatter] = {str((cm.get("metadata") or {}).get("name")): cm for cm in found}
        by_name = listed.get(scatter, {})
        for item in missing:
            name = names.item_output_name(ref.name, ref.uid, scatter, iteration, item)
            cm = by_name.get(name)
            if cm is None:
                try:
                    cm = await cl.client.get_configmap(ref.namespace, name)
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
