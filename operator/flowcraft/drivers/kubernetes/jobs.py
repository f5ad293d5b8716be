"""A node attempt's Job: the cluster's rendering of ``flowcraft.drivers.launch`` (pure).

Why pure functions: what a node pod looks like (security context, mounts, the runtime
contract) is the driver's most reviewed surface; as plain ``dict`` builders it is unit-tested
without a cluster, and the reconcile loop only decides *which* manifests to send. *What* an
attempt gets (files, env, command, sandbox, limits) is decided once, for every driver, by
``launch.node_launch``; this module only says how a pod carries it.

Node I/O on the cluster, as built here:
- everything a node reads is one read-only projected volume at ``launch.IN_DIR``: the
  launch's files (``function.json``, ``params.json``, ``input.json``, ``view.json``) come from
  the pod template's annotations through a ``downwardAPI`` source (atomic with the Job: no
  extra object to create, to leak or to race with); each stored result in the view
  contributes its output ConfigMap's ``output.json`` (and ``writes.json``) under the path the
  launch names; the initial context comes from the Flow's context ConfigMap;
- the node writes its result envelope to ``launch.OUT_FILE``, the container's
  ``terminationMessagePath``; the operator copies output and writes into an immutable
  ConfigMap owned by the Flow (``builders.output_configmap``).
Pods never talk to the API: no service account token, non-root, no capabilities.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flowcraft.contract import (
    ENV_IN,
    ENV_NODE,
    FUNCTION_FILE,
    INITIAL_CONTEXT_FILE,
    INPUT_FILE,
    PARAMS_FILE,
    VIEW_FILE,
    ViewItem,
)
from flowcraft.drivers import launch as contract
from flowcraft.drivers.kubernetes import names, timeouts
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
    CONTEXT_KEY,
    LABEL_COMPONENT,
    LABEL_ROUND,
    OUTPUT_KEY,
    WRITES_KEY,
    FlowRef,
    Manifest,
    labels,
    owner_reference,
)
from flowcraft.drivers.launch import Launch, dumps
from flowcraft.model import FunctionSpec, NodeSpec

# The Job builders' errors are the launch contract's (reconcile catches these names).
ManifestError = contract.LaunchError
ManifestTooLarge = contract.PayloadTooLarge

IN_DIR = contract.IN_DIR
TERMINATION_LOG = contract.OUT_FILE
OUT_LIMIT = contract.CLUSTER_OUT_LIMIT
OUT_INLINE = contract.CLUSTER_OUT_INLINE
# The pod's pause process is PID 1, not the node's process: a PID 1 ignores signals it has no
# handler for, so a function that kills itself (os.kill(os.getpid(), SIGTERM)) would go on and
# succeed on the cluster while it fails locally.
SHARE_PROCESS_NAMESPACE = True
NODE_UID = contract.NODE_UID
MAX_PAYLOAD_BYTES = contract.MAX_PAYLOAD_BYTES
CONTAINER = "node"

# Which annotation of the pod template carries which input file.
FILE_ANNOTATIONS = {
    FUNCTION_FILE: ANN_FUNCTION,
    PARAMS_FILE: ANN_PARAMS,
    INPUT_FILE: ANN_INPUT,
    VIEW_FILE: ANN_VIEW,
}


@dataclass(frozen=True)
class View:
    """What a node attempt can see: the successes folded into its context, in order (see
    ``flowcraft.contract.ViewItem``), the output ConfigMap of each stored result (by result
    key), and the initial-context ConfigMap."""

    order: tuple[ViewItem, ...] = ()
    configmaps: Mapping[str, str] | None = None
    context_configmap: str | None = None
    # The result key whose stored output IS the node's input (``launch.input_source``):
    # input.json is then projected from that output ConfigMap, not carried in an annotation.
    input_key: str | None = None


def attempt_launch(
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
) -> Launch:
    """The launch of one attempt on the cluster: results up to a ConfigMap's 1 MiB, the
    termination message (4 KiB) as the fast path and the pod's log beyond it."""
    return contract.node_launch(
        node,
        fn,
        attempt=attempt,
        input_value=input_value,
        view=view.order,
        initial_context=view.context_configmap is not None,
        runner_image=runner_image,
        timeout_seconds=timeout_seconds,
        out_limit=OUT_LIMIT,
        iteration=iteration,
        item=item,
        uses=uses,
        inline_limit=OUT_INLINE,
        input_key=view.input_key,
    )


def container(launch: Launch) -> Manifest:
    """The node container of ``launch``'s pod."""
    sandbox = launch.sandbox
    mounts: list[Manifest] = [{"name": "flowcraft-in", "mountPath": IN_DIR, "readOnly": True}]
    mounts += [{"name": _tmp_volume(i), "mountPath": path} for i, path in _writable(launch)]
    spec: Manifest = {
        "name": CONTAINER,
        "image": launch.image,
        "imagePullPolicy": "IfNotPresent",
        "env": [{"name": k, "value": v} for k, v in launch.env],
        "resources": {k: dict(v) for k, v in launch.resources.items()},
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
        "volumeMounts": mounts,
        "securityContext": {
            "allowPrivilegeEscalation": sandbox.privilege_escalation,
            "capabilities": {"drop": list(sandbox.drop_capabilities)},
            "readOnlyRootFilesystem": sandbox.read_only_root,
            "runAsNonRoot": sandbox.user != 0,
            "runAsUser": sandbox.user,
            "runAsGroup": sandbox.group,
        },
    }
    if launch.command is not None:
        spec["command"] = list(launch.command)
    if launch.args is not None:
        spec["args"] = list(launch.args)
    return spec


def _writable(launch: Launch) -> list[tuple[int, str]]:
    return list(enumerate(launch.sandbox.writable))


def _tmp_volume(index: int) -> str:
    return "tmp" if index == 0 else f"tmp-{index}"


def pod_spec(launch: Launch, view: View) -> Manifest:
    """The pod of ``launch``: its container, the input volume, one emptyDir per writable path."""
    sandbox = launch.sandbox
    spec: Manifest = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "shareProcessNamespace": SHARE_PROCESS_NAMESPACE,
        "terminationGracePeriodSeconds": 5,
        "securityContext": {
            "runAsNonRoot": sandbox.user != 0,
            "runAsUser": sandbox.user,
            "runAsGroup": sandbox.group,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container(launch)],
        "volumes": [
            in_volume(launch, view),
            *({"name": _tmp_volume(i), "emptyDir": {}} for i, _ in _writable(launch)),
        ],
    }
    return spec


def payload(launch: Launch) -> dict[str, str]:
    """The pod template annotations carrying the launch's input files."""
    return {FILE_ANNOTATIONS[name]: text for name, text in launch.files}


def in_volume(launch: Launch, view: View) -> Manifest:
    """The read-only projected volume holding everything ``launch`` reads."""
    sources: list[Manifest] = [
        {
            "downwardAPI": {
                "items": [
                    {
                        "path": name,
                        "fieldRef": {
                            "fieldPath": f"metadata.annotations['{FILE_ANNOTATIONS[name]}']"
                        },
                    }
                    for name, _ in launch.files
                ]
            }
        }
    ]
    if launch.initial_context and view.context_configmap is not None:
        sources.append(
            {
                "configMap": {
                    "name": view.context_configmap,
                    "items": [{"key": CONTEXT_KEY, "path": INITIAL_CONTEXT_FILE}],
                }
            }
        )
    configmaps = view.configmaps or {}
    for stored in launch.stored:
        cm = configmaps.get(stored.key)
        if cm is None:
            node = next((v.node for v in view.order if v.key == stored.key), stored.key)
            raise ManifestError(  # a driver bug, reported through the node's failure
                f"no output ConfigMap is known for {stored.key!r}, which node "
                f"{node!r}'s result is stored under"
            )
        item = {"key": OUTPUT_KEY if stored.part == "output" else WRITES_KEY, "path": stored.path}
        last = sources[-1].get("configMap")
        if stored.part == "writes" and last is not None and last["name"] == cm:
            last["items"].append(item)  # the same result's writes: one source per result
        else:
            sources.append({"configMap": {"name": cm, "items": [item]}})
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
    launch = attempt_launch(
        node,
        fn,
        attempt,
        input_value,
        timeout_seconds=timeout_seconds,
        view=view,
        runner_image=runner_image,
        iteration=iteration,
        item=item,
        uses=uses,
    )
    return render_job(flow, launch, view)


def render_job(flow: FlowRef, launch: Launch, view: View) -> Manifest:
    """The Job running ``launch`` (``view`` names the ConfigMaps its stored results are in)."""
    ident = {ANN_FLOW: flow.name, ANN_NODE: launch.node, ANN_ATTEMPT: str(launch.attempt)}
    if launch.iteration:
        ident[ANN_ITERATION] = str(launch.iteration)
    if launch.item is not None:
        ident[ANN_ITEM] = str(launch.item)
        name = names.item_job_name(
            flow.name, flow.uid, launch.node, launch.iteration, launch.item, attempt=launch.attempt
        )
    else:
        name = names.job_name(flow.name, flow.uid, launch.node, launch.attempt, launch.iteration)
    job_labels = labels(flow, launch.node, launch.attempt, launch.item)
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
                "metadata": {
                    "labels": dict(job_labels),
                    "annotations": {**ident, **payload(launch)},
                },
                "spec": pod_spec(launch, view),
            },
        },
    }
    if launch.timeout_seconds is not None:
        # A node attempt: a backstop, the operator times it itself (module timeouts) and acts
        # first. A batch item: the Job controller enforces the item timeout.
        job["spec"]["activeDeadlineSeconds"] = (
            deadline_seconds(launch.timeout_seconds)
            if launch.item is not None
            else timeouts.backstop_seconds(launch.timeout_seconds)
        )
    return job


def deadline_seconds(timeout_seconds: float) -> int:
    """A timeout as ``activeDeadlineSeconds`` (whole seconds, at least 1)."""
    return max(1, math.ceil(timeout_seconds))


# The per-round inputs of an Indexed Job: one immutable ConfigMap (the API server caps an
# object at ~1.5 MiB and a ConfigMap's data at 1 MiB; leave room for metadata).
MAX_ROUND_ITEMS_BYTES = 900 * 1024
ITEMS_DIR = "/flowcraft/items"
WORK_IN_DIR = "/tmp/flowcraft-in"


def indexed_bootstrap(worker_prefix: str, first_item: int) -> str:
    """The command of an Indexed Job's pod. It finds its item through JOB_COMPLETION_INDEX (set
    by the Job controller): it links the shared inputs and its own item as input.json into a
    directory of its own, takes its worker's id (``worker_prefix`` + item), then runs the node
    runtime from there. Stdlib only, so no start-up cost to speak of."""
    return (
        "import os, runpy\n"
        f"src, dst = {IN_DIR!r}, {WORK_IN_DIR!r}\n"
        "os.makedirs(dst, exist_ok=True)\n"
        "for name in os.listdir(src):\n"
        f"    if not name.startswith('..') and name != {INPUT_FILE!r}:\n"
        "        os.symlink(os.path.join(src, name), os.path.join(dst, name))\n"
        "index = os.environ['JOB_COMPLETION_INDEX']\n"
        f"os.symlink({ITEMS_DIR!r} + '/' + index + '.json', os.path.join(dst, {INPUT_FILE!r}))\n"
        f"os.environ[{ENV_IN!r}] = dst\n"
        f"os.environ[{ENV_NODE!r}] = {worker_prefix!r} + str({first_item} + int(index))\n"
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
    data = {f"{i}.json": dumps(value) for i, value in enumerate(inputs)}
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
    stops the others); the item timeout is each pod's ``activeDeadlineSeconds``. Every index
    gets the launch of the round's first item but its own input and worker id.
    """
    if not indexed_supported(fn):
        raise ManifestError(f"node {node.id!r}: container functions cannot run in an Indexed Job")
    launch = attempt_launch(
        node,
        fn,
        1,
        None,
        timeout_seconds=timeout_seconds,
        view=view,
        runner_image=runner_image,
        iteration=iteration,
        item=first_item,
        uses=uses,
    )
    ident = {
        ANN_FLOW: flow.name,
        ANN_NODE: node.id,
        ANN_ATTEMPT: "1",
        ANN_ROUND_START: str(first_item),
    }
    if iteration:
        ident[ANN_ITERATION] = str(iteration)
    job_labels = {**labels(flow, node.id, 1), LABEL_ROUND: str(round_)}
    spec = pod_spec(launch, view)
    node_container = spec["containers"][0]
    # The worker id ends in the item index (engine.batch.worker_id): the prefix is the rest.
    prefix = launch.node_id[: len(launch.node_id) - len(str(first_item))]
    node_container["command"] = ["python3", "-c", indexed_bootstrap(prefix, first_item)]
    node_container["volumeMounts"].append(
        {"name": "flowcraft-items", "mountPath": ITEMS_DIR, "readOnly": True}
    )
    spec["volumes"].append(
        {
            "name": "flowcraft-items",
            "configMap": {
                "name": names.round_items_name(flow.name, flow.uid, node.id, iteration, round_),
                "defaultMode": 0o444,
            },
        }
    )
    if timeout_seconds is not None:
        spec["activeDeadlineSeconds"] = deadline_seconds(timeout_seconds)
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
                "metadata": {
                    "labels": dict(job_labels),
                    "annotations": {**ident, **payload(launch)},
                },
                "spec": spec,
            },
        },
    }
