"""Manifests of the objects the operator creates besides Jobs: output ConfigMaps, the
initial-context ConfigMap, Events (pure); and the one import for all manifest builders.

Why pure functions: the reconcile loop only decides *which* manifests to send; as plain
``dict`` builders they are unit-tested without a cluster. The builders live in three modules
along the seams a reader looks for: ``meta`` (labels, annotations, ownership: whose an object
is), ``jobs`` (a node attempt's Job, rendered from ``flowcraft.drivers.launch``) and this one
(what the operator stores: results, the initial context, Events). Their names are re-exported
here, so callers keep writing ``builders.job_manifest``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from flowcraft.contract import Write
from flowcraft.drivers.kubernetes import names
from flowcraft.drivers.kubernetes.jobs import (
    CONTAINER,
    IN_DIR,
    ITEMS_DIR,
    MAX_PAYLOAD_BYTES,
    MAX_ROUND_ITEMS_BYTES,
    NODE_UID,
    OUT_INLINE,
    OUT_LIMIT,
    SHARE_PROCESS_NAMESPACE,
    TERMINATION_LOG,
    WORK_IN_DIR,
    ManifestError,
    ManifestTooLarge,
    View,
    attempt_launch,
    indexed_bootstrap,
    indexed_job_manifest,
    indexed_supported,
    job_manifest,
    render_job,
    round_items_configmap,
)
from flowcraft.drivers.kubernetes.meta import (
    ANN_ATTEMPT,
    ANN_FLOW,
    ANN_FUNCTION,
    ANN_INPUT,
    ANN_ITEM,
    ANN_ITERATION,
    ANN_NODE,
    ANN_PARAMS,
    ANN_ROUND_START,
    ANN_VIEW,
    API_VERSION,
    COMPONENT_ITEM_OUTPUT,
    CONTEXT_KEY,
    KIND,
    LABEL_ATTEMPT,
    LABEL_COMPONENT,
    LABEL_FLOW,
    LABEL_FLOW_UID,
    LABEL_ITEM,
    LABEL_MANAGED_BY,
    LABEL_NODE,
    LABEL_ROUND,
    MANAGED_BY,
    OUTPUT_KEY,
    WRITES_KEY,
    FlowRef,
    Manifest,
    controlled_by,
    controller_of,
    describe_controller,
    flow_selector,
    flow_uid_selector,
    item_outputs_selector,
    labels,
    owner_reference,
)
from flowcraft.drivers.launch import dumps, function_document, input_source
from flowcraft.model import format_timestamp

__all__ = [
    "ANN_ATTEMPT",
    "ANN_FLOW",
    "ANN_FUNCTION",
    "ANN_INPUT",
    "ANN_ITEM",
    "ANN_ITERATION",
    "ANN_NODE",
    "ANN_PARAMS",
    "ANN_ROUND_START",
    "ANN_VIEW",
    "API_VERSION",
    "COMPONENT_ITEM_OUTPUT",
    "CONTAINER",
    "CONTEXT_KEY",
    "IN_DIR",
    "ITEMS_DIR",
    "KIND",
    "LABEL_ATTEMPT",
    "LABEL_COMPONENT",
    "LABEL_FLOW",
    "LABEL_FLOW_UID",
    "LABEL_ITEM",
    "LABEL_MANAGED_BY",
    "LABEL_NODE",
    "LABEL_ROUND",
    "MANAGED_BY",
    "MAX_PAYLOAD_BYTES",
    "MAX_ROUND_ITEMS_BYTES",
    "NODE_UID",
    "OUTPUT_KEY",
    "OUT_INLINE",
    "OUT_LIMIT",
    "SHARE_PROCESS_NAMESPACE",
    "TERMINATION_LOG",
    "WORK_IN_DIR",
    "WRITES_KEY",
    "FlowRef",
    "Manifest",
    "ManifestError",
    "ManifestTooLarge",
    "View",
    "attempt_launch",
    "context_configmap",
    "controlled_by",
    "controller_of",
    "describe_controller",
    "event_manifest",
    "flow_selector",
    "flow_uid_selector",
    "function_document",
    "indexed_bootstrap",
    "indexed_job_manifest",
    "indexed_supported",
    "input_source",
    "item_output_configmap",
    "item_outputs_selector",
    "job_manifest",
    "labels",
    "output_configmap",
    "owner_reference",
    "read_output",
    "render_job",
    "round_items_configmap",
]


def output_configmap(
    flow: FlowRef,
    node: str,
    attempt: int,
    output: Any,
    writes: Sequence[Write] = (),
    *,
    iteration: int = 0,
) -> Manifest:
    """The immutable ConfigMap holding a succeeded attempt's output (JSON under output.json)
    and, when it wrote to the context, its writes (JSON list under writes.json)."""
    data = {OUTPUT_KEY: dumps(output)}
    if writes:
        data[WRITES_KEY] = dumps(list(writes))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": names.output_configmap_name(flow.name, flow.uid, node, attempt, iteration),
            "namespace": flow.namespace,
            "labels": {**labels(flow, node, attempt), LABEL_COMPONENT: "output"},
            "annotations": {ANN_FLOW: flow.name, ANN_NODE: node, ANN_ATTEMPT: str(attempt)},
            "ownerReferences": [owner_reference(flow)],
        },
        "immutable": True,
        "data": data,
    }


def item_output_configmap(
    flow: FlowRef,
    scatter: str,
    output: Any,
    writes: Sequence[Write] = (),
    *,
    item: int,
    attempt: int,
    iteration: int = 0,
) -> Manifest:
    """The immutable ConfigMap holding a batch item's output and writes (as
    :func:`output_configmap`), named per item; labelled so a restart lists them in one go."""
    data = {OUTPUT_KEY: dumps(output)}
    if writes:
        data[WRITES_KEY] = dumps(list(writes))
    annotations = {ANN_FLOW: flow.name, ANN_NODE: scatter, ANN_ITEM: str(item)}
    annotations[ANN_ATTEMPT] = str(attempt)
    if iteration:
        annotations[ANN_ITERATION] = str(iteration)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": names.item_output_name(flow.name, flow.uid, scatter, iteration, item),
            "namespace": flow.namespace,
            "labels": {
                **labels(flow, scatter, item=item),
                LABEL_COMPONENT: COMPONENT_ITEM_OUTPUT,
            },
            "annotations": annotations,
            "ownerReferences": [owner_reference(flow)],
        },
        "immutable": True,
        "data": data,
    }


def read_output(configmap: Manifest) -> tuple[Any, tuple[Write, ...]]:
    """The output value and context writes stored by :func:`output_configmap`."""
    data = configmap.get("data") or {}
    writes = json.loads(data.get(WRITES_KEY, "[]"))
    return json.loads(data.get(OUTPUT_KEY, "null")), tuple(writes)


def context_configmap(flow: FlowRef, context: Mapping[str, Any]) -> Manifest:
    """The immutable ConfigMap holding the Flow's initial context, mounted by every node."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": names.context_configmap_name(flow.name, flow.uid),
            "namespace": flow.namespace,
            "labels": {**labels(flow), LABEL_COMPONENT: "context"},
            "annotations": {ANN_FLOW: flow.name},
            "ownerReferences": [owner_reference(flow)],
        },
        "immutable": True,
        "data": {CONTEXT_KEY: dumps(dict(context))},
    }


def event_manifest(
    flow: FlowRef,
    *,
    reason: str,
    message: str,
    warning: bool,
    now: datetime,
    instance: str,
) -> Manifest:
    """A core/v1 Event about the Flow (what ``kubectl describe flow`` shows)."""
    stamp = format_timestamp(now.replace(microsecond=0))
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{flow.name[:200]}.", "namespace": flow.namespace},
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": flow.name,
            "namespace": flow.namespace,
            "uid": flow.uid,
        },
        "reason": reason,
        "message": message[:1024],
        "type": "Warning" if warning else "Normal",
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "source": {"component": MANAGED_BY},
        "reportingComponent": "flowcraft.io/operator",
        "reportingInstance": instance[:128],
    }
