"""An in-memory view of the Jobs and pods the operator owns, fed by kopf's watch events.

Why: the reconcile of a Flow must see all of its node attempts at once (the join trap in
DESIGN.md), but listing Jobs and pods from the API on every event would make a 1000-node
fan-out quadratic in API calls. The watch streams already deliver every change; this cache
groups them by Flow and Job so a reconcile reads them in O(nodes) without any request.

It also remembers *when* the operator first saw an attempt finish (loop time), the start of
the ``dependency_to_create`` latency the metrics report.

A cache miss is never fatal: the reconcile re-ensures the Jobs the status says are running
(create → AlreadyExists), so an operator that restarts before the watches caught up only does
a few redundant, idempotent requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from flowcraft.drivers.kubernetes.builders import (
    ANN_FLOW,
    ANN_FUNCTION,
    ANN_INPUT,
    ANN_PARAMS,
    ANN_VIEW,
)

Manifest = dict[str, Any]

_JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
_JOB_NAME_LABEL_OLD = "job-name"
_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"


def slot(job: str, index: int | None = None) -> str:
    """Where the pods of a Job (or of one index of an Indexed Job) are kept: a batch round's
    Indexed Job has one pod per item, and each item must be found without scanning the rest."""
    return job if index is None else f"{job}#{index}"


class FlowKey(NamedTuple):
    namespace: str
    name: str


@dataclass
class _FlowObjects:
    jobs: dict[str, Manifest] = field(default_factory=dict)
    # slot (job name, or "<job>#<index>" for an Indexed Job's pod) -> pod name -> pod
    pods: dict[str, dict[str, Manifest]] = field(default_factory=dict)
    # slot -> loop time the attempt was first seen finished
    finished_seen: dict[str, float] = field(default_factory=dict)
    # Indexed Job name -> its slots that hold pods (to drop them with the Job)
    indexed: dict[str, set[str]] = field(default_factory=dict)
    # Job names and pod slots changed by watch events since the reconcile last drained them:
    # a pass over a 10,000-item batch looks at these items only.
    changed: set[str] = field(default_factory=set)


# The bulk of a node's Job and pod: its function, params and input travel as annotations
# (copied into the pod template and the pod), and the template/pod spec holds env and
# volumes. The reconcile reads none of it (metadata, status and a Job's ``spec.suspend``
# only); with 1000 active flows the cache holds thousands of these objects.
_BULKY_ANNOTATIONS = frozenset({ANN_FUNCTION, ANN_PARAMS, ANN_INPUT, ANN_VIEW})
_KEPT_SPEC_FIELDS = ("suspend", "nodeName")


def _slim(obj: Manifest) -> Manifest:
    """The object without managedFields, bulky annotations and the (template/pod) spec."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict) and not _BULKY_ANNOTATIONS.isdisjoint(annotations):
        meta["annotations"] = {k: v for k, v in annotations.items() if k not in _BULKY_ANNOTATIONS}
    out = {k: v for k, v in obj.items() if k not in ("metadata", "spec")}
    out["metadata"] = meta
    spec = obj.get("spec")
    if isinstance(spec, dict):
        out["spec"] = {k: spec[k] for k in _KEPT_SPEC_FIELDS if k in spec}
    return out


def _flow_key(obj: Manifest) -> FlowKey | None:
    meta = obj.get("metadata") or {}
    flow = (meta.get("annotations") or {}).get(ANN_FLOW)
    namespace = meta.get("namespace")
    if not isinstance(flow, str) or not isinstance(namespace, str):
        return None
    return FlowKey(namespace, flow)


def _job_finished(job: Manifest) -> bool:
    return any(
        cond.get("type") in ("Complete", "Failed", "SuccessCriteriaMet", "FailureTarget")
        and cond.get("status") == "True"
        for cond in (job.get("status") or {}).get("conditions") or []
    )


def _pod_finished(pod: Manifest) -> bool:
    # The container's terminated state can arrive before the pod phase changes: the outcome
    # reader trusts the container state, so the latency clock must start on it as well.
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    return any(
        "terminated" in (c.get("state") or {}) for c in status.get("containerStatuses") or []
    )


def pod_job_name(pod: Manifest) -> str | None:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    name = labels.get(_JOB_NAME_LABEL) or labels.get(_JOB_NAME_LABEL_OLD)
    return name if isinstance(name, str) else None


def pod_index(pod: Manifest) -> int | None:
    """An Indexed Job's pod's completion index (label, or the annotation older servers set)."""
    meta = pod.get("metadata") or {}
    value = (meta.get("labels") or {}).get(_INDEX_LABEL)
    if value is None:
        value = (meta.get("annotations") or {}).get(_INDEX_LABEL)
    return int(value) if isinstance(value, str) and value.isdigit() else None


class ObjectCache:
    """Jobs and pods by Flow; every method is synchronous and cheap (called from handlers)."""

    def __init__(self) -> None:
        self._flows: dict[FlowKey, _FlowObjects] = {}

    def _objects(self, key: FlowKey) -> _FlowObjects:
        objs = self._flows.get(key)
        if objs is None:
            objs = self._flows[key] = _FlowObjects()
        return objs

    def put_job(self, job: Manifest, *, deleted: bool, seen_at: float) -> FlowKey | None:
        key = _flow_key(job)
        name = (job.get("metadata") or {}).get("name")
        if key is None or not isinstance(name, str):
            return None
        objs = self._objects(key)
        if deleted:
            objs.jobs.pop(name, None)
            objs.pods.pop(name, None)
            objs.finished_seen.pop(name, None)
            for index_slot in objs.indexed.pop(name, ()):
                objs.pods.pop(index_slot, None)
                objs.finished_seen.pop(index_slot, None)
            return key
        objs.jobs[name] = _slim(job)
        objs.changed.add(name)
        if _job_finished(job):
            objs.finished_seen.setdefault(name, seen_at)
        return key

    def put_pod(self, pod: Manifest, *, deleted: bool, seen_at: float) -> FlowKey | None:
        key = _flow_key(pod)
        job = pod_job_name(pod)
        name = (pod.get("metadata") or {}).get("name")
        if key is None or job is None or not isinstance(name, str):
            return None
        objs = self._objects(key)
        index = pod_index(pod)
        where = slot(job, index)
        if index is not None:
            objs.indexed.setdefault(job, set()).add(where)
        pods = objs.pods.setdefault(where, {})
        objs.changed.add(where)
        if deleted:
            pods.pop(name, None)
            return key
        pods[name] = _slim(pod)
        if _pod_finished(pod) and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            objs.finished_seen.setdefault(where, seen_at)
        return key

    def remember_pod(self, key: FlowKey, pod: Manifest) -> None:
        """Record a pod the reconcile listed itself; a watch event already seen wins."""
        job, name = pod_job_name(pod), (pod.get("metadata") or {}).get("name")
        if job is None or not isinstance(name, str):
            return
        objs = self._objects(key)
        index = pod_index(pod)
        where = slot(job, index)
        if index is not None:
            objs.indexed.setdefault(job, set()).add(where)
        objs.pods.setdefault(where, {}).setdefault(name, _slim(pod))

    def remember_job(self, key: FlowKey, job: Manifest) -> None:
        """Record a Job the reconcile created or fetched itself (ahead of its watch event)."""
        name = (job.get("metadata") or {}).get("name")
        if isinstance(name, str):
            self._objects(key).jobs.setdefault(name, _slim(job))

    def job(self, key: FlowKey, name: str) -> Manifest | None:
        objs = self._flows.get(key)
        return objs.jobs.get(name) if objs is not None else None

    def pod(self, key: FlowKey, job: str) -> Manifest | None:
        """The newest pod of ``job`` (a :func:`slot`) that is not being deleted (suspension
        deletes pods)."""
        objs = self._flows.get(key)
        pods = objs.pods.get(job, {}) if objs is not None else {}
        live = [p for p in pods.values() if not (p.get("metadata") or {}).get("deletionTimestamp")]
        if not live:
            return None
        return max(live, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp")))

    def drain_changed(self, key: FlowKey) -> set[str]:
        """The Job names and pod slots whose objects changed since the last call."""
        objs = self._flows.get(key)
        if objs is None:
            return set()
        changed, objs.changed = objs.changed, set()
        return changed

    def finished_seen(self, key: FlowKey, job: str) -> float | None:
        objs = self._flows.get(key)
        return objs.finished_seen.get(job) if objs is not None else None

    def jobs(self, key: FlowKey) -> list[Manifest]:
        objs = self._flows.get(key)
        return list(objs.jobs.values()) if objs is not None else []

    def forget(self, key: FlowKey) -> None:
        self._flows.pop(key, None)
