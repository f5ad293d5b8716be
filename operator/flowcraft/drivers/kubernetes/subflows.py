"""The operator's `subflow` nodes: each attempt runs as a child Flow owned by its parent.

Why a child Flow (not Jobs of the parent): a subflow is a whole flow, and the operator already
runs flows, restart-safely and visibly. The child is an ordinary Flow (``kubectl get flows``
lists it, ``flowcraft get`` shows it) created from the namespace's ``Blueprint`` the node's
``params.blueprintId`` names; its ownerReference makes the parent its controller, so deleting
the parent deletes the child (and, through it, its Jobs and ConfigMaps). What crosses the
boundary is ``flowcraft.engine.subflow``'s (flowcraft's SubflowNode rules): the child's
``spec.context`` is its initial context, and when it ends, its final context (rebuilt by
``results``) becomes the node's output and context writes.

Idempotency: the child's name is deterministic per (parent Flow object, node, iteration,
attempt): a fragment of the parent's UID and a hash suffix (a user's Flow, or the child of an
earlier parent of the same name, cannot be mistaken for it); creating it again after a restart
gets AlreadyExists, which counts as success only when the existing Flow is controlled by this
very parent (uid). A child under that name that this parent does not control is never read
(observe fails the attempt) nor deleted (cancel leaves it). The child is created before the
parent's status says Running, so a child missing later was deleted: the attempt fails.
Lineage: labels carry the parent's uid and the nesting depth, an annotation the chain of
blueprint ids; a subflow deeper than ``MAX_DEPTH`` fails naming the chain. The node's
``timeout`` becomes the child's ``activeDeadlineSeconds``; cancelling the node deletes the
child (only if this parent controls it).

The reconcile calls in at three points (start, observe, cancel) and the controller feeds
``child_changed`` with every Flow watch event, so a child's end triggers its parent's pass.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Mapping, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from flowcraft.contract import Write, result_key
from flowcraft.drivers.kubernetes import builders, names, results
from flowcraft.drivers.kubernetes.cache import FlowKey
from flowcraft.drivers.kubernetes.client import AlreadyExists, ApiError, Client, Invalid, NotFound
from flowcraft.engine import Engine, NodeFailed, NodeSucceeded, StartNode, subflow
from flowcraft.engine.types import Event
from flowcraft.model import TERMINAL_FLOW_PHASES, FlowSpec, FlowStatus, check_spec
from flowcraft.model.blueprint import Blueprint, child_spec
from flowcraft.model.errors import problems_from_pydantic

logger = logging.getLogger(__name__)

Manifest = dict[str, Any]

LABEL_PARENT_UID = "flowcraft.io/parent-uid"
LABEL_PARENT = "flowcraft.io/parent-flow"
LABEL_DEPTH = "flowcraft.io/subflow-depth"
ANN_PARENT_FLOW = "flowcraft.io/parent-flow"
ANN_PARENT_NODE = "flowcraft.io/parent-node"
ANN_PARENT_ATTEMPT = "flowcraft.io/parent-attempt"
ANN_CHAIN = "flowcraft.io/subflow-chain"
ANN_BLUEPRINT = "flowcraft.io/blueprint-id"

_HASH_LEN = 10


def child_name(parent: str, uid: str, node: str, attempt: int, iteration: int = 0) -> str:
    """The child Flow of one subflow attempt of the parent Flow object with this ``uid``:
    readable prefix (ending in the uid fragment), always a hash suffix, <= 63."""
    identity = "\0".join(("subflow", parent, uid, node, str(iteration), str(attempt)))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:_HASH_LEN]
    tail = f"-{attempt}-{names.uid_fragment(uid)}"
    head = f"{parent}-{node}" + (f"-i{iteration}" if iteration else "")
    readable = head[: names.MAX_NAME - _HASH_LEN - 1 - len(tail)] + tail
    cleaned = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", readable.lower()))
    prefix = cleaned[: names.MAX_NAME - _HASH_LEN - 1].strip("-")
    return f"{prefix}-{digest}" if prefix else f"sf-{digest}"


def runs(engine: Engine, node_id: str) -> bool:
    """Whether ``node_id`` is a subflow node (run as a child Flow, not as a Job); O(1), as it
    is asked for every running attempt on every pass."""
    return engine.graph.builtin.get(node_id) == "subflow"


def parent_key(body: Manifest) -> FlowKey | None:
    """The parent of a child Flow (from its annotations), None for other Flows."""
    meta = body.get("metadata") or {}
    parent = (meta.get("annotations") or {}).get(ANN_PARENT_FLOW)
    namespace = meta.get("namespace")
    if not isinstance(parent, str) or not isinstance(namespace, str):
        return None
    return FlowKey(namespace, parent)


def lineage(body: Manifest) -> tuple[int, tuple[str, ...]]:
    """(depth, chain) of a Flow: 0 and (its name,) unless it is a child Flow."""
    meta = body.get("metadata") or {}
    try:
        depth = int((meta.get("labels") or {}).get(LABEL_DEPTH, "0"))
        chain = json.loads((meta.get("annotations") or {}).get(ANN_CHAIN, "null"))
    except ValueError:
        depth, chain = 0, None
    if not isinstance(chain, list) or not all(isinstance(c, str) for c in chain):
        chain = [str(meta.get("name"))]
    return depth, tuple(chain)


def find_blueprint(items: Sequence[Manifest], blueprint_id: str) -> Manifest | None:
    """The Blueprint whose id (``spec.id``, else its name) is ``blueprint_id``."""
    for item in items:
        spec = item.get("spec") or {}
        name = (item.get("metadata") or {}).get("name")
        if spec.get("id", name) == blueprint_id:
            return item
    return None


def child_manifest(
    ref: builders.FlowRef,
    action: StartNode,
    blueprint_id: str,
    spec: FlowSpec,
    *,
    depth: int,
    chain: Sequence[str],
) -> Manifest:
    """The child Flow of a subflow attempt (``spec`` is the child spec with its context)."""
    iteration = action.iteration
    body = spec.to_dict()
    if action.timeout_seconds is not None:
        body["activeDeadlineSeconds"] = max(1, math.ceil(action.timeout_seconds))
    return {
        "apiVersion": builders.API_VERSION,
        "kind": builders.KIND,
        "metadata": {
            "name": child_name(ref.name, ref.uid, action.node, action.attempt, iteration),
            "namespace": ref.namespace,
            "labels": {
                builders.LABEL_MANAGED_BY: builders.MANAGED_BY,
                LABEL_PARENT_UID: ref.uid,
                LABEL_PARENT: names.label_value(ref.name),
                builders.LABEL_NODE: names.label_value(action.node),
                LABEL_DEPTH: str(depth),
            },
            "annotations": {
                ANN_PARENT_FLOW: ref.name,
                ANN_PARENT_NODE: action.node,
                ANN_PARENT_ATTEMPT: str(action.attempt),
                ANN_BLUEPRINT: blueprint_id,
                ANN_CHAIN: json.dumps(list(chain)),
            },
            "ownerReferences": [builders.owner_reference(ref)],
        },
        "spec": body,
    }


class Subflows:
    """Child Flows of the operator's subflow nodes; one per Reconciler."""

    def __init__(self, client: Client) -> None:
        self._client = client
        # Child Flows as the watch last showed them, by (namespace, name).
        self._children: dict[tuple[str, str], Manifest] = {}
        # (depth, chain) of every Flow seen, by (namespace, name, uid).
        self._lineage: dict[tuple[str, str, str], tuple[int, tuple[str, ...]]] = {}

    def child_changed(self, body: Manifest, *, deleted: bool) -> FlowKey | None:
        """Record a Flow watch event; the parent to reconcile when a child ended or vanished."""
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        uid = str(meta.get("uid"))
        if deleted:
            self._lineage.pop((namespace, name, uid), None)
        else:
            self._lineage[(namespace, name, uid)] = lineage(body)
        parent = parent_key(body)
        if parent is None:
            return None
        if deleted:
            self._children.pop((namespace, name), None)
            return parent
        self._children[(namespace, name)] = body
        phase = (body.get("status") or {}).get("phase")
        return parent if phase in TERMINAL_FLOW_PHASES else None

    async def start(
        self,
        ref: builders.FlowRef,
        engine: Engine,
        status: FlowStatus,
        action: StartNode,
        *,
        outputs: Mapping[str, Any],
        writes: Mapping[str, Sequence[Write]],
    ) -> str | None:
        """Create the child Flow of ``action``; None, or why the node fails instead."""
        node = engine.spec.node(action.node)
        try:
            params = subflow.SubflowParams.of(node)
        except subflow.SubflowError as exc:
            return str(exc)
        bid = params.blueprint_id
        found = find_blueprint(await self._client.list_blueprints(ref.namespace), bid)
        if found is None:
            return (
                f"subflow node {node.id!r} runs blueprint {bid!r}, but no Blueprint in "
                f"namespace {ref.namespace!r} has that id (kubectl get blueprints -n "
                f"{ref.namespace})"
            )
        try:
            blueprint = Blueprint.model_validate(found)
        except ValidationError as exc:
            why = "; ".join(str(p) for p in problems_from_pydantic(exc))
            return f"Blueprint {found['metadata'].get('name')!r} is invalid: {why}"
        depth, chain = await self._parent_lineage(ref)
        chain = (*chain, bid)
        too_deep = subflow.depth_problem(chain)
        if too_deep is not None:
            return too_deep
        seen = engine.node_context(status, node.id, outputs, writes)
        parent = subflow.parent_context(seen, node.id, action.input)
        context = subflow.initial_context(params, parent, action.input, blueprint.spec)
        spec = child_spec(engine.spec, blueprint.spec, context)
        problems = check_spec(spec, prefix=f"blueprint {bid}")
        if problems:
            return f"blueprint {bid!r} cannot run: " + "; ".join(str(p) for p in problems)
        body = child_manifest(ref, action, bid, spec, depth=depth + 1, chain=chain)
        name = body["metadata"]["name"]
        try:
            created = await self._client.create_flow(ref.namespace, body)
        except AlreadyExists:
            created = await self._client.get_flow(ref.namespace, name)
            if not builders.controlled_by(created, ref.uid):
                return f"a Flow named {name!r} exists and is not a child of this flow"
        except Invalid as exc:
            return f"the API server rejected the child Flow {name!r}: {exc.message}"
        self._children[(ref.namespace, name)] = created
        logger.info(
            "%s/%s: node %s attempt %d -> child Flow %s (blueprint %s)",
            ref.namespace,
            ref.name,
            action.node,
            action.attempt,
            name,
            bid,
        )
        return None

    async def _parent_lineage(self, ref: builders.FlowRef) -> tuple[int, tuple[str, ...]]:
        known = self._lineage.get((ref.namespace, ref.name, ref.uid))
        if known is not None:
            return known
        body = await self._client.get_flow(ref.namespace, ref.name)
        found = lineage(body)
        self._lineage[(ref.namespace, ref.name, ref.uid)] = found
        return found

    async def observe(
        self,
        ref: builders.FlowRef,
        spec: FlowSpec,
        node: str,
        attempt: int,
        iteration: int,
        *,
        outputs: MutableMapping[str, Any],
        writes: MutableMapping[str, tuple[Write, ...]],
    ) -> Event | None:
        """The engine event for a running subflow attempt whose child Flow ended, else None.

        On success the node's output ConfigMap is created first (as for a Job's result) and
        ``outputs``/``writes`` are filled, like the reconcile does for a pod's result."""
        name = child_name(ref.name, ref.uid, node, attempt, iteration)
        body = self._children.get((ref.namespace, name))
        if body is None or (body.get("status") or {}).get("phase") not in TERMINAL_FLOW_PHASES:
            try:
                body = await self._client.get_flow(ref.namespace, name)
            except NotFound:
                return NodeFailed(
                    node,
                    attempt,
                    datetime.now(UTC),
                    f"child Flow {name!r} of this subflow node is gone (deleted?)",
                    iteration=iteration,
                )
            self._children[(ref.namespace, name)] = body
        if not builders.controlled_by(body, ref.uid):
            return NodeFailed(
                node,
                attempt,
                datetime.now(UTC),
                f"a Flow named {name!r} exists and is not a child of this flow (controlled by "
                f"{builders.describe_controller(body)}): not read",
                iteration=iteration,
            )
        raw = body.get("status") or {}
        if raw.get("phase") not in TERMINAL_FLOW_PHASES:
            return None
        child_status = FlowStatus.model_validate(raw)
        at = child_status.finished_at or datetime.now(UTC)
        params = subflow.SubflowParams.of(spec.node(node))
        if child_status.phase != "Succeeded":
            timed_out = any(
                ns.reason == "DeadlineExceeded" for ns in child_status.nodes.values()
            ) or any("activeDeadlineSeconds" in e for e in child_status.errors)
            message = subflow.failure_message(params.blueprint_id, child_status)
            return NodeFailed(node, attempt, at, message, timed_out, iteration=iteration)
        try:
            context = await results.read_final_context(self._client, body)
        except (results.MissingResult, ValidationError) as exc:
            return NodeFailed(node, attempt, at, f"child Flow {name!r}: {exc}", iteration=iteration)
        child = FlowSpec.model_validate(body.get("spec") or {})
        mapped = subflow.result(params, child, context)
        cm = builders.output_configmap(
            ref, node, attempt, mapped.output, mapped.writes, iteration=iteration
        )
        try:
            await self._client.create_configmap(ref.namespace, cm)
        except AlreadyExists:
            existing = await self._client.get_configmap(ref.namespace, cm["metadata"]["name"])
            if not builders.controlled_by(existing, ref.uid):
                message = (
                    f"ConfigMap {ref.namespace}/{cm['metadata']['name']} already exists and is "
                    f"not controlled by this Flow (uid {ref.uid}) but by "
                    f"{builders.describe_controller(existing)}: not adopted"
                )
                return NodeFailed(node, attempt, at, message, iteration=iteration)
        except Invalid as exc:  # e.g. the child's whole context is over the 1 MiB limit
            message = f"the output of child Flow {name!r} cannot be stored: {exc.message}"
            return NodeFailed(node, attempt, at, message, iteration=iteration)
        key = result_key(node, iteration)
        outputs[key] = mapped.output
        if mapped.writes:
            writes[key] = mapped.writes
        return NodeSucceeded(
            node,
            attempt,
            at,
            output=mapped.output,
            output_ref=cm["metadata"]["name"],
            writes=mapped.writes,
            iteration=iteration,
        )

    async def cancel(self, ref: builders.FlowRef, node: str, attempt: int, iteration: int) -> None:
        """Delete the child Flow of a cancelled attempt (its Jobs go with it)."""
        name = child_name(ref.name, ref.uid, node, attempt, iteration)
        try:
            child = self._children.get((ref.namespace, name))
            if child is None:
                child = await self._client.get_flow(ref.namespace, name)
            if not builders.controlled_by(child, ref.uid):
                return  # not our child: never delete it
            await self._client.delete_flow(ref.namespace, name, uid=_uid(child))
        except NotFound:
            pass
        except ApiError as exc:
            logger.warning("could not delete child Flow %s: %s", name, exc)


def _uid(body: Manifest) -> str | None:
    uid = (body.get("metadata") or {}).get("uid")
    return uid if isinstance(uid, str) and uid else None
