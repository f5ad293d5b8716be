"""A Flow's final context on the cluster, rebuilt from its status and output ConfigMaps.

Why: the operator never stores a flow's context as such (the status holds references, each
output ConfigMap a node's output and context writes), yet two things need it whole: a parent
flow's subflow node, whose result is computed from its child Flow's final context, and the
compat tests, which compare it with flowcraft's. Both go through here, so the cluster's final
context is defined once: ``Engine.context`` over the status and the stored outputs, exactly
what the local runner reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowcraft.drivers.kubernetes import builders
from flowcraft.drivers.kubernetes import status as flow_status
from flowcraft.drivers.kubernetes.client import Client, NotFound
from flowcraft.engine import Engine
from flowcraft.model import Flow, FlowStatus

Manifest = dict[str, Any]


class MissingResult(LookupError):
    """An output ConfigMap the status refers to is gone."""


def final_context(body: Manifest, configmaps: Mapping[str, Manifest]) -> dict[str, Any]:
    """The context of the Flow ``body`` (spec and status) given its output ConfigMaps by name.

    Raises MissingResult naming the ConfigMap when one the status refers to is absent."""
    flow = Flow.model_validate(body)
    status = flow.status or FlowStatus()
    uid = str((body.get("metadata") or {}).get("uid") or "")
    outputs: dict[str, Any] = {}
    writes: dict[str, Any] = {}
    name_of = flow.metadata.name
    items = flow_status.item_output_names(status, name_of, uid)
    refs = {**flow_status.output_refs(status), **items}
    for key, name in refs.items():
        cm = configmaps.get(name)
        if cm is None:
            raise MissingResult(f"output ConfigMap {name!r} of {key!r} is gone")
        if not builders.controlled_by(cm, uid):
            raise MissingResult(
                f"output ConfigMap {name!r} of {key!r} is not this Flow's "
                f"({builders.describe_controller(cm)})"
            )
        outputs[key], stored = builders.read_output(cm)
        if stored:
            writes[key] = stored
    return Engine(flow.spec).context(status, outputs, writes)


async def read_final_context(client: Client, body: Manifest) -> dict[str, Any]:
    """``final_context`` with the ConfigMaps read from the API (one list, then any stragglers
    one by one)."""
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    flow = builders.FlowRef(name=name, namespace=namespace, uid=str(meta.get("uid")))
    by_name: dict[str, Manifest] = {}
    for cm in await client.list_configmaps(namespace, builders.flow_uid_selector(flow)):
        by_name[str((cm.get("metadata") or {}).get("name"))] = cm
    status = FlowStatus.model_validate(body.get("status") or {})
    items = flow_status.item_output_names(status, name, flow.uid)
    refs = {**flow_status.output_refs(status), **items}
    for ref in refs.values():
        if ref not in by_name:
            try:
                by_name[ref] = await client.get_configmap(namespace, ref)
            except NotFound:
                continue  # final_context names it
    return final_context(body, by_name)
