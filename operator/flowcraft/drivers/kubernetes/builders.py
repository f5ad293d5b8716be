"""Manifests of the objects the operator creates: Jobs, output ConfigMaps, Events (pure).

Why pure functions: what a node pod looks like (security context, mounts, the runtime
contract) is the driver's most reviewed surface; as plain ``dict`` builders it is unit-tested
without a cluster, and the reconcile loop only decides *which* manifests to send.

Node I/O, as built here (DESIGN.md §2 "Node I/O on the cluster"):
- everything a node reads is one read-only projected volume at ``/flowcraft/in``:
  ``function.json``, ``params.json``, ``input.json`` and ``view.json`` (the nodes whose
  results make up its context, in order) come from the pod template's annotations through a
  ``downwardAPI`` source (so they are atomic with the Job: no extra object to create, to leak
  or to race with); each node in the view contributes its output ConfigMap's
  ``output.json`` as ``outputs/<stem>.json`` and, if it wrote to the context, its
  ``writes.json`` as ``writes/<stem>.json``; the initial context comes from the Flow's
  context ConfigMap as ``context.json`` (``stem``: ``flowcraft.contract.file_stem``);
- the node writes its result envelope (output, action, context writes) to
  ``/dev/termination-log`` (the container's ``terminationMessagePath``); the operator copies
  output and writes into an immutable ConfigMap owned by the Flow (immutable: the kubelet
  does not have to watch it).
Pods never talk to the API: no service account token, non-root, no capabilities.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flowcraft.contract import (
    ENV_ATTEMPT,
    ENV_IN,
    ENV_NODE,
    ENV_OUT,
    ENV_OUT_LIMIT,
    FUNCTION_FILE,
    INITIAL_CONTEXT_FILE,
    INPUT_FILE,
    OUTPUTS_DIR,
    PARAMS_FILE,
    VIEW_FILE,
    WRITES_DIR,
    ViewItem,
    Write,
    file_stem,
)
from flowcraft.drivers.kubernetes import names, timeouts
from flowcraft.model import FunctionSpec, NodeSpec, format_timestamp

Manifest = dict[str, Any]

API_VERSION = "flowcraft.io/v1alpha1"
KIND = "Flow"

LABEL_FLOW = "flowcraft.io/flow"
LABEL_FLOW_UID = "flowcraft.io/flow-uid"
LABEL_NODE = "flowcraft.io/node"
LABEL_ATTEMPT = "flowcraft.io/attempt"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "flowcraft-operator"
LABEL_COMPONENT = "flowcraft.io/component"
LABEL_ITEM = "flowcraft.io/item"  # a batch item's index (Jobs, pods, output ConfigMaps)
LABEL_ROUND = "flowcraft.io/round"  # an Indexed Job's round of a batch
COMPONENT_ITEM_OUTPUT = "item-output"

ANN_FLOW = "flowcraft.io/flow-name"
ANN_NODE = "flowcraft.io/node-id"
ANN_ATTEMPT = "flowcraft.io/attempt"
ANN_ITERATION = "flowcraft.io/iteration"  # loop iterations after the first (absent: 0)
ANN_FUNCTION = "flowcraft.io/function"
ANN_PARAMS = "flowcraft.io/params"
ANN_INPUT = "flowcraft.io/input"
ANN_VIEW = "flowcraft.io/view"
ANN_ITEM = "flowcraft.io/item"
ANN_ROUND_START = "flowcraft.io/round-start"  # an Indexed Job's first item (index 0)

OUTPUT_KEY = "output.json"
WRITES_KEY = "writes.json"
CONTEXT_KEY = "initial.json"
IN_DIR = "/flowcraft/in"
TERMINATION_LOG = "/dev/termination-log"
OUT_LIMIT = 4096
NODE_UID = 65532  # the runner image's non-root user ("nonroot" by convention)
CONTAINER = "node"
RUNTIME_COMMAND = ("python3", "-m", "flowcraft.runtime")

# The API server caps all annotations of an object at 256 KiB; leave room for the rest.
MAX_PAYLOAD_BYTES = 200 * 1024


class ManifestError(ValueError):
    """A node attempt's Job cannot be built; the attempt fails with this message."""


class ManifestTooLarge(ManifestError):
    """A node's function, params and input do not fit in its pod template."""


@dataclass(frozen=True)
class FlowRef:
    """The identity of a Flow object, for names, labels and ownerReferences."""

    name: str
    namespace: str
    uid: str


def flow_selector(flow: str) -> str:
    return f"{LABEL_FLOW}={names.label_value(flow)}"


def flow_uid_selector(flow: FlowRef) -> str:
    """Selects the objects of this Flow *object* only, not of an earlier one of the same name."""
    return f"{LABEL_FLOW_UID}={names.label_value(flow.uid)}"


def labels(
    flow: FlowRef, node: str | None = None, attempt: int | None = None, item: int | None = None
) -> dict[str, str]:
    out = {
        LABEL_FLOW: names.label_value(flow.name),
        LABEL_FLOW_UID: names.label_value(flow.uid),
        LABEL_MANAGED_BY: MANAGED_BY,
    }
    if node is not None:
        out[LABEL_NODE] = names.label_value(node)
    if attempt is not None:
        out[LABEL_ATTEMPT] = str(attempt)
    if item is not None:
        out[LABEL_ITEM] = str(item)
    return out


def item_outputs_selector(flow: FlowRef, scatter: str) -> str:
    """The output ConfigMaps of a scatter's items of this Flow object: what a restarted
    operator lists once (by the uid label; each is still checked for its controller)."""
    return (
        f"{flow_uid_selector(flow)},{LABEL_COMPONENT}={COMPONENT_ITEM_OUTPUT},"
        f"{LABEL_NODE}={names.label_value(scatter)}"
    )


def owner_reference(flow: FlowRef) -> Manifest:
    # No blockOwnerDeletion: it would need update rights on flows/finalizers, and background
    # garbage collection removes Jobs (and, through the Jobs, pods) and ConfigMaps anyway.
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": flow.name,
        "uid": flow.uid,
        "controller": True,
    }


def controller_of(obj: Manifest, kind: str | None = None) -> Manifest | None:
    """The ownerReference with ``controller: true`` (at most one exists), if any.

    With ``kind``, only a controller of that kind counts.
    """
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref if kind is None or ref.get("kind") == kind else None
    return None


def controlled_by(obj: Manifest, uid: str) -> bool:
    """controller-runtime's ``IsControlledBy``: ``obj``'s controller reference has this uid.

    The one test for adopting an existing object: a name, a label or an annotation can be
    left behind by an earlier Flow of the same name, or written by anyone who may create the
    object; only the controller reference says whose it is.
    """
    ref = controller_of(obj)
    return ref is not None and bool(uid) and ref.get("uid") == uid


def describe_controller(obj: Manifest) -> str:
    """Who controls ``obj``, for messages: ``Flow x (uid ...)`` or ``no controller``."""
    ref = controller_of(obj)
    if ref is None:
        return "no controller"
    return f"{ref.get('kind')} {ref.get('name')} (uid {ref.get('uid')})"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def function_document(fn: FunctionSpec, uses: str) -> Manifest:
    """The runtime's ``function.json`` for script/python functions."""
    if fn.script is not None:
        return {"script": fn.script, "name": uses}
    if fn.python is not None:
        return {"python": fn.python, "name": uses}
    return {"image": fn.image, "name": uses}


def _resources(fn: FunctionSpec) -> Manifest:
    if fn.resources is None:
        return {}
    return fn.resources.model_dump(mode="json", by_alias=True, exclude_none=True)


def _env(node: str, attempt: int, fn: FunctionSpec) -> list[Manifest]:
    env = [
        {"name": ENV_NODE, "value": node},
        {"name": ENV_ATTEMPT, "value": str(attempt)},
        {"name": ENV_IN, "value": IN_DIR},
        {"name": ENV_OUT, "value": TERMINATION_LOG},
        {"name": ENV_OUT_LIMIT, "value": str(OUT_LIMIT)},
        {"name": "HOME", "value": "/tmp"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    reserved = {item["name"] for item in env}
    env.extend(
        {"name": k, "value": v} for k, v in sorted((fn.env or {}).items()) if k not in reserved
    )
    return env


def _container(node: str, attempt: int, fn: FunctionSpec, runner_image: str) -> Manifest:
    container: Manifest = {
        "name": CONTAINER,
        "image": fn.effective_image(runner_image),
        "imagePullPolicy": "IfNotPresent",
        "env": _env(node, attempt, fn),
        "resources": _resources(fn),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
        "volumeMounts": [
            {"name": "flowcraft-in", "mountPath": IN_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": NODE_UID,
            "runAsGroup": NODE_UID,
        },
    }
    if fn.kind == "container":
        # The user's image as given; without a command its own entrypoint runs.
        if fn.command is not None:
            container["command"] = list(fn.command)
        if fn.args is not None:
            container["args"] = list(fn.args)
    else:
        container["command"] = list(RUNTIME_COMMAND)
    return container


@dataclass(frozen=True)
class View:
    """What a node attempt can see: the successes folded into its context, in order (see
    ``flowcraft.contract.ViewItem``), the output ConfigMap of each stored result (by result
    key), and the initial-context ConfigMap."""

    order: tuple[ViewItem, ...] = ()
    configmaps: Mapping[str, str] | None = None
    context_configmap: str | None = None


def _in_volume(view: View) -> Manifest:
    files = [
        (FUNCTION_FILE, ANN_FUNCTION),
        (PARAMS_FILE, ANN_PARAMS),
        (INPUT_FILE, ANN_INPUT),
        (VIEW_FILE, ANN_VIEW),
    ]
    sources: list[Manifest] = [
        {
            "downwardAPI": {
                "items": [
                    {"path": path, "fieldRef": {"fieldPath": f"metadata.annotations['{ann}']"}}
                    for path, ann in files
                ]
            }
        }
    ]
    if view.context_configmap is not None:
        sources.append(
            {
                "configMap": {
                    "name": view.context_configmap,
                    "items": [{"key": CONTEXT_KEY, "path": INITIAL_CONTEXT_FILE}],
                }
            }
        )
    configmaps = view.configmaps or {}
    for item in view.order:
        if item.key is None:
            continue  # inline in view.json
        cm = configmaps.get(item.key)
        if cm is None:
            raise ManifestError(  # a driver bug, reported through the node's failure
                f"no output ConfigMap is known for {item.key!r}, which node "
                f"{item.node!r}'s result is stored under"
            )
        stem = file_stem(item.key)
        items = [{"key": OUTPUT_KEY, "path": f"{OUTPUTS_DIR}/{stem}.json"}]
        if item.wrote:
            items.append({"key": WRITES_KEY, "path": f"{WRITES_DIR}/{stem}.json"})
        sources.append({"configMap": {"name": cm, "items": items}})
    return {"name": "flowcraft-in", "projected": {"defaultMode": 0o444, "sources": sources}}


def job_manifest(
    flow: FlowRef,
    node: NodeSpec,
    fn: FunctionSpec,
    attempt: int,
    input_value: Any,
    *,
    timeout_seconds: float | None,
    view: View,
    runner_image: str,
    iteration: int = 0,
    item: int | None = None,
    uses: str | None = None,
) -> Manifest:
    """The Job of one node attempt, or of one attempt of batch item ``item`` of the scatter
    ``node`` (then ``uses`` names the worker function ``fn``; the item has no params and sees
    the scatter's view).

    ``view`` is what the function may read (see :class:`View`). Raises
    :class:`ManifestTooLarge` when the node's payload cannot fit.
    """
    payload = _payload(node, fn, input_value, view, item=item, uses=uses)
    ident = {ANN_FLOW: flow.name, ANN_NODE: node.id, ANN_ATTEMPT: str(attempt)}
    if iteration:
        ident[ANN_ITERATION] = str(iteration)
    if item is not None:
        ident[ANN_ITEM] = str(item)
        name = names.item_job_name(flow.name, flow.uid, node.id, iteration, item, attempt=attempt)
    else:
        name = names.job_name(flow.name, flow.uid, node.id, attempt, iteration)
    job_labels = labels(flow, node.id, attempt, item)
    job: Manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": flow.namespace,
            "labels": job_labels,
            "annotations": ident,
            "ownerReferences": [owner_reference(flow)],
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": dict(job_labels), "annotations": {**ident, **payload}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 5,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": NODE_UID,
                        "runAsGroup": NODE_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [_container(node.id, attempt, fn, runner_image)],
                    "volumes": [_in_volume(view), {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }
    if timeout_seconds is not None:
        # A node attempt: a backstop, the operator times it itself (module timeouts) and acts
        # first. A batch item: the Job controller enforces the item timeout.
        job["spec"]["activeDeadlineSeconds"] = (
            max(1, math.ceil(timeout_seconds))
            if item is not None
            else timeouts.backstop_seconds(timeout_seconds)
        )
    return job


def _payload(
    node: NodeSpec,
    fn: FunctionSpec,
    input_value: Any,
    view: View,
    *,
    item: int | None = None,
    uses: str | None = None,
) -> dict[str, str]:
    what = f"node {node.id!r}" if item is None else f"item {item} of node {node.id!r}"
    payload = {
        ANN_FUNCTION: _dumps(function_document(fn, uses if uses is not None else node.uses)),
        ANN_PARAMS: _dumps({} if item is not None or uses is not None else node.params),
        ANN_INPUT: _dumps(input_value),
        ANN_VIEW: _dumps([entry.to_json() for entry in view.order]),
    }
    size = sum(len(v.encode()) for v in payload.values())
    if size > MAX_PAYLOAD_BYTES:
        raise ManifestTooLarge(
            f"{what}: function, params and input take {size} bytes, over the "
            f"{MAX_PAYLOAD_BYTES}-byte limit for pod annotations"
        )
    return payload


# The per-round inputs of an Indexed Job: one immutable ConfigMap (the API server caps an
# object at ~1.5 MiB and a ConfigMap's data at 1 MiB; leave room for metadata).
MAX_ROUND_ITEMS_BYTES = 900 * 1024
ITEMS_DIR = "/flowcraft/items"
WORK_IN_DIR = "/tmp/flowcraft-in"
# An Indexed Job's pod finds its item through JOB_COMPLETION_INDEX (set by the Job
# controller): it links the shared inputs and its own item as input.json into a directory of
# its own, then runs the node runtime from there. Stdlib only, so no start-up cost to speak of.
INDEXED_BOOTSTRAP = (
    "import os, runpy\n"
    f"src, dst = {IN_DIR!r}, {WORK_IN_DIR!r}\n"
    "os.makedirs(dst, exist_ok=True)\n"
    "for name in os.listdir(src):\n"
    "    if not name.startswith('..') and name != 'input.json':\n"
    "        os.symlink(os.path.join(src, name), os.path.join(dst, name))\n"
    "index = os.environ['JOB_COMPLETION_INDEX']\n"
    f"os.symlink({ITEMS_DIR!r} + '/' + index + '.json', os.path.join(dst, 'input.json'))\n"
    f"os.environ[{ENV_IN!r}] = dst\n"
    "runpy.run_module('flowcraft.runtime', run_name='__main__', alter_sys=True)\n"
)


def indexed_supported(fn: FunctionSpec) -> bool:
    """Whether a worker can run in an Indexed Job: the bootstrap needs the node runtime, which
    container functions (the user's own image) do not have; those keep a Job per item."""
    return fn.kind != "container"


def round_items_configmap(
    flow: FlowRef, scatter: str, iteration: int, round_: int, inputs: Sequence[Any]
) -> Manifest:
    """The inputs of one round's items, ``<index>.json`` (index 0 = the round's first item).

    Raises :class:`ManifestTooLarge` when they do not fit in one ConfigMap."""
    data = {f"{i}.json": _dumps(value) for i, value in enumerate(inputs)}
    size = sum(len(k) + len(v.encode()) for k, v in data.items())
    if size > MAX_ROUND_ITEMS_BYTES:
        raise ManifestTooLarge(
            f"node {scatter!r}: the {len(inputs)} item inputs of round {round_} take {size} "
            f"bytes, over the {MAX_ROUND_ITEMS_BYTES}-byte limit of one ConfigMap"
        )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": names.round_items_name(flow.name, flow.uid, scatter, iteration, round_),
            "namespace": flow.namespace,
            "labels": {
                **labels(flow, scatter),
                LABEL_COMPONENT: "round-items",
                LABEL_ROUND: str(round_),
            },
            "annotations": {ANN_FLOW: flow.name, ANN_NODE: scatter},
            "ownerReferences": [owner_reference(flow)],
        },
        "immutable": True,
        "data": data,
    }


def indexed_job_manifest(
    flow: FlowRef,
    node: NodeSpec,
    fn: FunctionSpec,
    uses: str,
    *,
    round_: int,
    first_item: int,
    count: int,
    parallelism: int,
    timeout_seconds: float | None,
    view: View,
    runner_image: str,
    iteration: int = 0,
) -> Manifest:
    """One Indexed Job running the first attempts of a round's ``count`` items.

    Index i runs item ``first_item + i`` with input ``<i>.json`` of the round's items
    ConfigMap; each index fails on its own (``backoffLimitPerIndex: 0``, no index's failure
    stops the others); the item timeout is each pod's ``activeDeadlineSeconds``.
    """
    if not indexed_supported(fn):
        raise ManifestError(f"node {node.id!r}: container functions cannot run in an Indexed Job")
    payload = _payload(node, fn, None, view, item=first_item, uses=uses)
    ident = {
        ANN_FLOW: flow.name,
        ANN_NODE: node.id,
        ANN_ATTEMPT: "1",
        ANN_ROUND_START: str(first_item),
    }
    if iteration:
        ident[ANN_ITERATION] = str(iteration)
    job_labels = {**labels(flow, node.id, 1), LABEL_ROUND: str(round_)}
    container = _container(node.id, 1, fn, runner_image)
    container["command"] = ["python3", "-c", INDEXED_BOOTSTRAP]
    container["volumeMounts"].append(
        {"name": "flowcraft-items", "mountPath": ITEMS_DIR, "readOnly": True}
    )
    pod_spec: Manifest = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 5,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NODE_UID,
            "runAsGroup": NODE_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            _in_volume(view),
            {"name": "tmp", "emptyDir": {}},
            {
                "name": "flowcraft-items",
                "configMap": {
                    "name": names.round_items_name(flow.name, flow.uid, node.id, iteration, round_),
                    "defaultMode": 0o444,
                },
            },
        ],
    }
    if timeout_seconds is not None:
        pod_spec["activeDeadlineSeconds"] = max(1, math.ceil(timeout_seconds))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": names.round_job_name(flow.name, flow.uid, node.id, iteration, round_),
            "namespace": flow.namespace,
            "labels": job_labels,
            "annotations": ident,
            "ownerReferences": [owner_reference(flow)],
        },
        "spec": {
            "completionMode": "Indexed",
            "completions": count,
            "parallelism": max(1, min(parallelism, count)),
            "backoffLimitPerIndex": 0,
            "maxFailedIndexes": count,
            "template": {
                "metadata": {"labels": dict(job_labels), "annotations": {**ident, **payload}},
                "spec": pod_spec,
            },
        },
    }


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
    data = {OUTPUT_KEY: _dumps(output)}
    if writes:
        data[WRITES_KEY] = _dumps(list(writes))
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
    data = {OUTPUT_KEY: _dumps(output)}
    if writes:
        data[WRITES_KEY] = _dumps(list(writes))
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
        "data": {CONTEXT_KEY: _dumps(dict(context))},
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
