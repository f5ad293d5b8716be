"""Objects that vanish under a running Flow, and attempts that run past their timeout.

Each case ends in a defined state, never in a node that waits forever:

- An output or initial-context ConfigMap deleted while its Flow runs is created again,
  identical (they are immutable): from the watch's DELETED event, which carries the whole
  object; after an operator restart, an output is re-read from the result of the attempt that
  produced it (its pod's termination message). Pods waiting to mount it then start. When
  neither copy exists any more, the output is lost: the Flow fails with a message naming the
  ConfigMap once the engine needs it (:func:`lost_output_message`).
- A Job that completed but whose pod is gone (deleted, or removed by the control plane's
  terminated-pod GC before the operator read it): the attempt fails naming the Job
  (``outcomes.pod_gone``), and the node's retries apply.
- A running attempt's Job that was deleted (by hand, by a script): the attempt fails naming
  the Job; it is never created again under the same attempt (:func:`job_gone`). The same for
  a batch item's Job; a round's Indexed Job stands for the first attempt of each item of the
  round, so deleting it fails each of them (:func:`item_job_gone`). A node attempt's Job that
  shows no sign of ever having existed was never created (the operator stopped between the
  status write and the create): it is created for the same attempt (:func:`left_no_trace`).
- A Job whose create the API server refused (403: a ResourceQuota, an admission webhook) never
  existed: the attempt fails with the server's message (``Cluster.refused``). One whose create
  failed leaving it unknown whether it was made (5xx, a lost connection) fails the pass, which
  is retried: a node attempt's Job that left no trace is then created (above); a batch item's
  that does not exist fails its attempt naming that create (:func:`never_created`).
- A Job that never gets a pod (the Job controller was down when it was created, or cannot
  create the pod: a ResourceQuota, an admission webhook): after the operator's pod-creation
  limit the attempt fails naming the Job and the Job is deleted (``outcomes.no_pod``,
  :func:`no_pod`); the pass wakes at that limit by itself, no watch event is needed.
- A node ``timeout``: the operator times the attempt from its container's start (module
  ``timeouts``); at the deadline the attempt fails with reason Timeout and its pod is deleted
  with a one-second grace period (:func:`check_timeout`).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta

from flowcraft.drivers.kubernetes import builders, names, outcomes, timeouts
from flowcraft.drivers.kubernetes.client import Conflict, NotFound

from .cluster import Cluster
from .state import FlowState, Manifest, Pass, name_of, uid_of

logger = logging.getLogger(__name__)

_SECOND = timedelta(seconds=1)

# Metadata fields that make a ConfigMap what it is (the rest the API server assigns).
_KEPT_METADATA = ("name", "namespace", "labels", "annotations", "ownerReferences")


async def restore_configmaps(cl: Cluster, ctx: Pass) -> None:
    """Create again the ConfigMaps of this Flow deleted while it runs (as they were)."""
    for cm in cl.cache.drain_deleted_configmaps(ctx.key):
        if not builders.controlled_by(cm, ctx.ref.uid):
            continue  # an earlier Flow's of the same name: not ours to restore
        meta = cm.get("metadata") or {}
        body: Manifest = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {k: meta[k] for k in _KEPT_METADATA if k in meta},
        }
        for field in ("immutable", "data", "binaryData"):
            if field in cm:
                body[field] = cm[field]
        conflict = await cl.store_output(ctx.ref, body)
        name = name_of(cm)
        if conflict is not None:
            logger.warning(
                "%s/%s: cannot restore %s: %s", ctx.key.namespace, ctx.key.name, name, conflict
            )
            continue
        message = f"ConfigMap {name} was deleted while the Flow ran; restored"
        logger.warning("%s/%s: %s", ctx.key.namespace, ctx.key.name, message)
        await cl.event(ctx.ref, "ConfigMapRestored", message, True, datetime.now(UTC))


async def reread_output(cl: Cluster, ctx: Pass, cm_name: str, now: datetime) -> Manifest | None:
    """After a restart, an output ConfigMap that is gone: rebuilt from the result of the
    attempt that produced it, if its Job and pod still exist. The ConfigMap stored, or None."""
    ref = ctx.ref
    jobs = cl.cache.jobs(ctx.key)
    producer = _producer(ref, jobs, cm_name)
    if producer is None:
        listed = await cl.client.list_jobs(ref.namespace, builders.flow_uid_selector(ref))
        producer = _producer(
            ref, [j for j in listed if builders.controlled_by(j, ref.uid)], cm_name
        )
    if producer is None:
        return None
    job, node, attempt, iteration = producer
    pod = cl.cache.pod(ctx.key, job) or await cl.find_pod(ref, job)
    outcome = outcomes.observe(job, pod, now)
    if isinstance(outcome, outcomes.InLog):
        outcome = await cl.read_result(ref, outcome)  # a result too large for the message
    if not isinstance(outcome, outcomes.Succeeded):
        return None
    cm = builders.output_configmap(
        ref, node, attempt, outcome.output, outcome.writes, iteration=iteration
    )
    if await cl.store_output(ref, cm) is not None:
        return None
    message = f"output ConfigMap {cm_name} of node {node} was deleted; restored from its pod"
    logger.warning("%s/%s: %s", ref.namespace, ref.name, message)
    await cl.event(ref, "ConfigMapRestored", message, True, now)
    return cm


def _producer(
    ref: builders.FlowRef, jobs: list[Manifest], cm_name: str
) -> tuple[Manifest, str, int, int] | None:
    """The node attempt Job among ``jobs`` whose output ConfigMap is ``cm_name``."""
    for job in jobs:
        ann = (job.get("metadata") or {}).get("annotations") or {}
        if builders.ANN_ITEM in ann or builders.ANN_ROUND_START in ann:
            continue
        node = ann.get(builders.ANN_NODE)
        attempt = str(ann.get(builders.ANN_ATTEMPT, ""))
        iteration = str(ann.get(builders.ANN_ITERATION, "0"))
        if not isinstance(node, str) or not attempt.isdigit() or not iteration.isdigit():
            continue
        name = names.output_configmap_name(ref.name, ref.uid, node, int(attempt), int(iteration))
        if name == cm_name:
            return job, node, int(attempt), int(iteration)
    return None


def lost_output_message(state: FlowState, key: str) -> str | None:
    """The Flow's failure when the engine needs the output ``key`` that is lost for good."""
    cm = state.lost_outputs.get(key)
    if cm is None:
        return None
    return (
        f"output ConfigMap {cm} of node {key!r} was deleted and the pod that produced it is "
        "gone too: the result cannot be restored and the flow cannot go on without it"
    )


def job_gone(name: str, attempt: int) -> str:
    """A running attempt's failure when its Job no longer exists."""
    return (
        f"Job {name} was deleted while attempt {attempt} was running; the attempt failed "
        "(a retry, if any, runs as a new attempt)"
    )


def gone_message(ctx: Pass, name: str, attempt: int) -> str:
    """Why the attempt of Job ``name``, gone for good, failed: the failure for which the
    operator deleted it (a pass whose status write did not land repeats it), else
    :func:`job_gone`."""
    why = ctx.state.gone_jobs.get(name)
    return why if why is not None else job_gone(name, attempt)


def never_created(name: str, error: str) -> str:
    """A batch item attempt's failure when the create of its Job failed with an error that
    left it unknown whether the Job was made, and the Job does not exist."""
    return (
        f"Job {name} does not exist: its create failed ({error}); the attempt failed "
        "(a retry, if any, runs as a new attempt)"
    )


async def item_job_gone(cl: Cluster, ctx: Pass, name: str) -> bool:
    """Whether batch item Job ``name``, which the cache does not hold, is gone for good.

    Asked for a running item once every item Job was created or re-ensured since the
    (re)start (``items.ensure_items``): a Job is in the cache from its create on, so one
    missing was deleted (by hand, or by this operator in a pass whose status write did not
    land). One GET per Job, then remembered: it is never created again for that attempt.
    A Job found (ours) is filed in the cache; anyone else's is left alone (a conflict the
    create already reported)."""
    state = ctx.state
    if name in state.gone_jobs:
        return True
    try:
        async with cl.requests:
            job = await cl.client.get_job(ctx.ref.namespace, name)
    except NotFound:
        failed = state.unsure_creates.get(name)
        state.gone_jobs[name] = None if failed is None else never_created(name, failed)
        logger.warning(
            "%s/%s: batch item Job %s %s",
            ctx.ref.namespace,
            ctx.ref.name,
            name,
            "was deleted while it ran" if failed is None else "was never created",
        )
        return True
    if builders.controlled_by(job, ctx.ref.uid):
        cl.cache.remember_job(ctx.key, job)
    return False


async def no_pod(
    cl: Cluster, ctx: Pass, job: Manifest, listed: set[str], now: datetime
) -> outcomes.Failed | datetime | None:
    """``outcomes.no_pod`` for a running attempt's Job, over the cache's pods; before the
    limit, the deadline also goes to ``ctx.deadlines`` (the pass wakes then). Before failing,
    one LIST of the Job's pods (once per Job and pass: ``listed``) makes sure the cache did
    not just miss them."""
    decided = outcomes.no_pod(job, cl.cache.has_pods(ctx.key, job), now, cl.pod_creation_limit)
    if isinstance(decided, datetime):
        ctx.deadlines.append(decided)
        return decided
    uid = uid_of(job)
    if decided is None or uid is None:
        return None
    if uid not in listed:
        listed.add(uid)
        pods = await cl.list_job_pods(ctx.ref, uid)
        for pod in pods:
            cl.cache.remember_pod(ctx.key, pod)
        if pods:
            return None
    logger.warning("%s/%s: %s", ctx.ref.namespace, ctx.ref.name, decided.message)
    ctx.state.gone_jobs[name_of(job)] = decided.message
    return decided


def check_timeout(
    ctx: Pass,
    attempt: tuple[str, int, int],
    outcome: outcomes.Outcome | None,
    now: datetime,
) -> outcomes.Failed | None:
    """The Timeout failure of ``attempt`` (node, attempt, iteration) once its deadline has
    passed; before, the deadline goes to ``ctx.deadlines`` (the pass wakes then). None
    without a timeout or a running container."""
    timeout_ms = ctx.spec.node(attempt[0]).config.timeout
    if timeout_ms is None:
        return None
    key = attempt  # (node, attempt, iteration)
    state = ctx.state
    fired = state.timed_out.get(key)
    if fired is not None:  # decided by an earlier pass whose status write did not land
        return outcomes.Failed(None, fired, timeouts.message(timeout_ms), timed_out=True)
    if isinstance(outcome, outcomes.Succeeded) and outcome.started_at is not None:
        # A busy kubelet may report a container only once it has ended: an attempt that
        # provably ran past its timeout (whole-second times) fails as if it had been stopped.
        if outcome.at - outcome.started_at >= timeouts.limit(timeout_ms) + _SECOND:
            return outcomes.Failed(
                outcome.started_at, outcome.at, timeouts.message(timeout_ms), timed_out=True
            )
        return None
    if not isinstance(outcome, outcomes.Started):
        return None
    # The moment this process saw it run (not the pass's start: the pod may have started
    # while this pass was waiting on the API), an upper bound of the container's start.
    seen = state.running_seen.setdefault(key, datetime.now(UTC))
    deadline = timeouts.deadline(timeout_ms, seen, outcome.at)
    if deadline is None:
        return None
    if now < deadline:
        ctx.deadlines.append(deadline)
        return None
    state.timed_out[key] = now
    return outcomes.Failed(outcome.at, now, timeouts.message(timeout_ms), timed_out=True)


async def stop_pod(cl: Cluster, ref: builders.FlowRef, pod: Manifest) -> None:
    """Delete a timed-out attempt's pod (only that object) with a short grace period; the
    Job controller then marks its Job failed (backoffLimit 0)."""
    # NotFound: gone already; Conflict: the name now holds another pod, not ours.
    async with cl.requests:
        with contextlib.suppress(NotFound, Conflict):
            await cl.client.delete_pod(ref.namespace, name_of(pod), uid=uid_of(pod))


async def left_no_trace(cl: Cluster, ctx: Pass, name: str) -> bool:
    """Whether node attempt Job ``name``, which does not exist, shows no sign of ever having
    existed: the operator records an attempt as running in the same breath as it creates the
    attempt's Job (the two requests go out together), so an operator stopped between the two,
    or a create that failed, leaves a running attempt without a Job. Nothing ran: the Job is
    created then, for the same attempt. Signs that it did exist: this operator deleted it
    (``gone_jobs``), a watch saw it deleted, or a pod of it is left (``job-name`` label, set
    by the Job controller and kept on pods a deletion orphaned)."""
    if name in ctx.state.gone_jobs or cl.cache.job_deleted(ctx.key, name):
        return False
    selector = f"{builders.flow_uid_selector(ctx.ref)},{_JOB_NAME_LABEL}={name}"
    async with cl.requests:
        pods = await cl.client.list_pods(ctx.ref.namespace, selector)
    return not pods


# The label the Job controller puts on its pods, naming their Job.
_JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
