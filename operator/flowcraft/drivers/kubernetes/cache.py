"""An in-memory view of the Jobs and pods the operator owns, fed by kopf's watch events.

Why: the reconcile of a Flow must see all of its node attempts at once (the join trap: see
``reconcile``), but listing Jobs and pods from the API on every event would make a 1000-node
fan-out quadratic in API calls. The watch streams already deliver every change; this cache
groups them by Flow and Job so a reconcile reads them in O(nodes) without any request.

It also remembers *when* the operator first saw an attempt finish (loop time), the start of
the ``dependency_to_create`` latency the metrics report.

A cache miss is never fatal: the reconcile re-ensures the Jobs the status says are running
(create → AlreadyExists), so an operator that restarts before the watches caught up only does
a few redundant, idempotent requests.

Identity: objects are filed by who *controls* them, never by name or label alone. A Job
counts for the Flow object whose UID is its controller ownerReference, found by (flow UID,
node, attempt) or, for batch items and rounds, by (flow UID, Job name); a pod counts for the
Job whose UID is the pod's controller ownerReference (one slot per completion index for an
Indexed Job's pods). So a re-created Flow never sees the Jobs of the Flow it replaced, and a
pod that merely carries a ``job-name`` label (left over, or made by someone who may create
pods) is never read as a node's or an item's result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from flowcraft.drivers.kubernetes.builders import (
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
    KIND,
    controller_of,
)

Manifest = dict[str, Any]

_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"


def slot(job: str, index: int | None = None) -> str:
    """Where the pods of a Job (or of one index of an Indexed Job) are kept (``job``: the
    Job's uid), and, with the Job's name, an item's key in change hints, the reconcile's item
    bookkeeping and its metrics: a batch round's Indexed Job has one pod per item, and each
    item must be found without scanning the rest."""
    return job if index is None else f"{job}#{index}"


class FlowKey(NamedTuple):
    namespace: str
    name: str


class Attempt(NamedTuple):
    """One node attempt (in one loop iteration) of one Flow object (``flow_uid``: the Flow's
    metadata.uid)."""

    flow_uid: str
    node: str
    attempt: int
    iteration: int = 0


@dataclass
class _FlowObjects:
    # job uid -> Job, for Jobs controlled by a Flow of this name (any uid)
    jobs: dict[str, Manifest] = field(default_factory=dict)
    # (flow uid, node, attempt) -> job uid, for node attempts (not batch items or rounds)
    attempts: dict[Attempt, str] = field(default_factory=dict)
    # (flow uid, Job name) -> job uid, for every Job a Flow controls
    named: dict[tuple[str, str], str] = field(default_factory=dict)
    # slot (job uid, or "<job uid>#<index>" for an Indexed Job's pod) -> pod name -> pod,
    # for pods controlled by that Job
    pods: dict[str, dict[str, Manifest]] = field(default_factory=dict)
    # slot -> loop time the attempt was first seen finished
    finished_seen: dict[str, float] = field(default_factory=dict)
    # Indexed Job uid -> its slots that hold pods (to drop them with the Job)
    indexed: dict[str, set[str]] = field(default_factory=dict)
    # Job names and pod slots by Job name ("<job name>#<index>") changed by watch events since
    # the reconcile last drained them: a pass over a 10,000-item batch looks at these items
    # only (hints: the items are then found by uid as usual).
    changed: set[str] = field(default_factory=set)
    # ConfigMap name -> its last state, for the Flow's ConfigMaps deleted while it runs (from
    # the watch's DELETED event, which carries the whole object): the reconcile restores them.
    deleted_configmaps: dict[str, Manifest] = field(default_factory=dict)
    # Names of the Flow's Jobs a watch saw deleted: a running attempt whose Job is missing
    # was deleted (it fails) when its name is here, never created when nothing shows it was.
    deleted_jobs: set[str] = field(default_factory=set)


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


def uid_of(obj: Manifest) -> str | None:
    uid = (obj.get("metadata") or {}).get("uid")
    return uid if isinstance(uid, str) and uid else None


def flow_uid_of(job: Manifest) -> str | None:
    """The uid of the Flow that controls ``job`` (its controller ownerReference), if any."""
    owner = controller_of(job, KIND)
    uid = owner.get("uid") if owner is not None else None
    return uid if isinstance(uid, str) and uid else None


def job_attempt(job: Manifest) -> Attempt | None:
    """Which node attempt ``job`` runs: its controlling Flow's uid plus the node/attempt
    annotations; None for a batch item's or round's Job (found by name, see ``job_named``)."""
    flow_uid = flow_uid_of(job)
    annotations = (job.get("metadata") or {}).get("annotations") or {}
    if ANN_ITEM in annotations or ANN_ROUND_START in annotations:
        return None
    node, attempt = annotations.get(ANN_NODE), annotations.get(ANN_ATTEMPT)
    iteration = annotations.get(ANN_ITERATION, "0")
    if flow_uid is None or not isinstance(node, str) or not isinstance(attempt, str):
        return None
    if not attempt.isdigit() or not isinstance(iteration, str) or not iteration.isdigit():
        return None
    return Attempt(flow_uid, node, int(attempt), int(iteration))


def pod_job_uid(pod: Manifest) -> str | None:
    """The uid of the Job that controls ``pod`` (its controller ownerReference), if any."""
    owner = controller_of(pod, "Job")
    uid = owner.get("uid") if owner is not None else None
    return uid if isinstance(uid, str) and uid else None


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
        """File a Job under the Flow that controls it; Jobs no Flow controls are ignored."""
        key = _flow_key(job)
        uid = uid_of(job)
        flow_uid = flow_uid_of(job)
        name = (job.get("metadata") or {}).get("name")
        if key is None or uid is None or flow_uid is None or not isinstance(name, str):
            return None
        attempt = job_attempt(job)
        objs = self._objects(key)
        if deleted:
            objs.jobs.pop(uid, None)
            objs.pods.pop(uid, None)
            objs.finished_seen.pop(uid, None)
            for index_slot in objs.indexed.pop(uid, ()):
                objs.pods.pop(index_slot, None)
                objs.finished_seen.pop(index_slot, None)
            if attempt is not None and objs.attempts.get(attempt) == uid:
                del objs.attempts[attempt]
            if objs.named.get((flow_uid, name)) == uid:
                del objs.named[(flow_uid, name)]
            objs.changed.add(name)  # a batch item's Job gone: its items are looked at
            objs.deleted_jobs.add(name)
            return key
        objs.jobs[uid] = _slim(job)
        objs.named[(flow_uid, name)] = uid
        if attempt is not None:
            objs.attempts[attempt] = uid
        objs.changed.add(name)
        if _job_finished(job):
            objs.finished_seen.setdefault(uid, seen_at)
        return key

    def _file_pod(self, objs: _FlowObjects, job_uid: str, pod: Manifest) -> str:
        index = pod_index(pod)
        where = slot(job_uid, index)
        if index is not None:
            objs.indexed.setdefault(job_uid, set()).add(where)
        return where

    def put_pod(self, pod: Manifest, *, deleted: bool, seen_at: float) -> FlowKey | None:
        """File a pod under the Job that controls it; other pods are ignored."""
        key = _flow_key(pod)
        job_uid = pod_job_uid(pod)
        name = (pod.get("metadata") or {}).get("name")
        if key is None or job_uid is None or not isinstance(name, str):
            return None
        objs = self._objects(key)
        where = self._file_pod(objs, job_uid, pod)
        pods = objs.pods.setdefault(where, {})
        job_name = (controller_of(pod, "Job") or {}).get("name")
        if isinstance(job_name, str):
            objs.changed.add(slot(job_name, pod_index(pod)))
        if deleted:
            pods.pop(name, None)
            return key
        pods[name] = _slim(pod)
        if _pod_finished(pod) and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            objs.finished_seen.setdefault(where, seen_at)
        return key

    def put_configmap(self, cm: Manifest, *, deleted: bool) -> FlowKey | None:
        """Note a deleted ConfigMap that a Flow controls (an output, the initial context); the
        key of that Flow, so its reconcile can restore it. Other events change nothing."""
        key = _flow_key(cm)
        name = (cm.get("metadata") or {}).get("name")
        if not deleted or key is None or flow_uid_of(cm) is None or not isinstance(name, str):
            return None
        self._objects(key).deleted_configmaps[name] = cm
        return key

    def drain_deleted_configmaps(self, key: FlowKey) -> list[Manifest]:
        """The ConfigMaps deleted since the last call (their last state)."""
        objs = self._flows.get(key)
        if objs is None or not objs.deleted_configmaps:
            return []
        deleted, objs.deleted_configmaps = objs.deleted_configmaps, {}
        return list(deleted.values())

    def remember_pod(self, key: FlowKey, pod: Manifest) -> None:
        """Record a pod the reconcile listed itself (filed under the Job that controls it; a
        pod without one is ignored); a watch event already seen wins."""
        job_uid, name = pod_job_uid(pod), (pod.get("metadata") or {}).get("name")
        if job_uid is None or not isinstance(name, str):
            return
        objs = self._objects(key)
        where = self._file_pod(objs, job_uid, pod)
        objs.pods.setdefault(where, {}).setdefault(name, _slim(pod))

    def remember_job(self, key: FlowKey, job: Manifest) -> None:
        """Record a Job the reconcile created or fetched itself (ahead of its watch event).

        The caller has checked that the Flow controls it; a Job without that link is ignored.
        """
        uid = uid_of(job)
        flow_uid = flow_uid_of(job)
        name = (job.get("metadata") or {}).get("name")
        if uid is None or flow_uid is None or not isinstance(name, str):
            return
        objs = self._objects(key)
        objs.jobs.setdefault(uid, _slim(job))
        objs.named.setdefault((flow_uid, name), uid)
        attempt = job_attempt(job)
        if attempt is not None:
            objs.attempts.setdefault(attempt, uid)

    def job(
        self, key: FlowKey, flow_uid: str, node: str, attempt: int, iteration: int = 0
    ) -> Manifest | None:
        """The Job of this node attempt controlled by the Flow object ``flow_uid``, if seen."""
        objs = self._flows.get(key)
        if objs is None:
            return None
        uid = objs.attempts.get(Attempt(flow_uid, node, attempt, iteration))
        return objs.jobs.get(uid) if uid is not None else None

    def job_named(self, key: FlowKey, flow_uid: str, name: str) -> Manifest | None:
        """The Job ``name`` if the Flow object ``flow_uid`` controls it and it was seen (batch
        items and rounds: their names are computed per pass, memoised)."""
        objs = self._flows.get(key)
        if objs is None:
            return None
        uid = objs.named.get((flow_uid, name))
        return objs.jobs.get(uid) if uid is not None else None

    def pod(self, key: FlowKey, job: Manifest, index: int | None = None) -> Manifest | None:
        """The newest pod ``job`` controls (with ``index``: of that completion index of an
        Indexed Job) that is not being deleted (suspension deletes pods)."""
        objs = self._flows.get(key)
        uid = uid_of(job)
        if objs is None or uid is None:
            return None
        pods = objs.pods.get(slot(uid, index), {})
        live = [p for p in pods.values() if not (p.get("metadata") or {}).get("deletionTimestamp")]
        if not live:
            return None
        return max(live, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp")))

    def job_deleted(self, key: FlowKey, name: str) -> bool:
        """Whether a watch saw the Job ``name`` of this Flow deleted (since this process
        started watching it)."""
        objs = self._flows.get(key)
        return objs is not None and name in objs.deleted_jobs

    def has_pods(self, key: FlowKey, job: Manifest) -> bool:
        """Whether any pod ``job`` controls was seen (of any completion index, being deleted
        or not): a Job that never got one is failed after a while (``outcomes.no_pod``)."""
        objs = self._flows.get(key)
        uid = uid_of(job)
        if objs is None or uid is None:
            return False
        return bool(objs.pods.get(uid)) or any(
            objs.pods.get(where) for where in objs.indexed.get(uid, ())
        )

    def drain_changed(self, key: FlowKey) -> set[str]:
        """The Job names and pod slots (by Job name, see ``slot``) whose objects changed since
        the last call: hints of what to look at, each then found by uid as usual."""
        objs = self._flows.get(key)
        if objs is None:
            return set()
        changed, objs.changed = objs.changed, set()
        return changed

    def finished_seen(self, key: FlowKey, job: Manifest, index: int | None = None) -> float | None:
        objs = self._flows.get(key)
        uid = uid_of(job)
        if objs is None or uid is None:
            return None
        return objs.finished_seen.get(slot(uid, index))

    def jobs(self, key: FlowKey) -> list[Manifest]:
        objs = self._flows.get(key)
        return list(objs.jobs.values()) if objs is not None else []

    def forget(self, key: FlowKey) -> None:
        self._flows.pop(key, None)
