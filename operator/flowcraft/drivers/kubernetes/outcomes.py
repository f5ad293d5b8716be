"""What happened to one node attempt, read from its Job and its pod (pure).

Why a module of its own: turning Kubernetes object status into "started at / succeeded with
this output / failed because" is the subtle part of the driver (termination messages, the
4 KiB limit, deadline kills, pods that never started), and it must be unit-testable without a
cluster. The reconcile loop maps these outcomes onto engine events.

Sources of truth: the pod's container state gives the real start/end times, the exit code and
the termination message (the node's result envelope). The Job's conditions cover what the pod
cannot tell: a deadline kill (``DeadlineExceeded``) or a pod that was deleted or never ran.
A pod that Succeeded is trusted before the Job controller marks the Job Complete: that saves a
round of the Job controller on the path to the next node.

A Job can also show nothing at all, for good: no pod was ever made for it (:func:`no_pod`, failed
after the operator's pod-creation limit).

A result too large for the termination message is a framed block in the pod's log, named by
the termination message (``flowcraft.contract.frame_result``): :func:`observe` then gives
:class:`InLog`, and :func:`read_result` turns it into the attempt's outcome given a way to
read the log (the caller's ``pods/log`` read): still the one reading of an attempt's outcome.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flowcraft.contract import (
    NO_RESULT,
    TERMINATION_MESSAGE_LIMIT,
    FrameError,
    FrameRef,
    NodeResult,
    Write,
    parse_result,
    read_frame,
)

# Log lines read first for a framed result: the block's own lines plus this many (the block is
# the last thing the runtime prints; a thread of the function might print after it).
_LOG_SLACK_LINES = 64

# Waiting reasons after which the container will not start without a change to the pod:
# failing the attempt beats a flow that hangs on a typo in an image name. (A retry, if the
# node has any, gets a fresh Job and pull.)
STUCK_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
_TAIL = 400

# How long a Job may go without a pod before its attempt fails (``no_pod``); the operator's
# --pod-creation-timeout. Five minutes: a busy Job controller or a pull of a large image take
# seconds to a minute, and the image pull happens after the pod exists anyway.
POD_CREATION_TIMEOUT_SECONDS = 300.0

# Job status counters, any of which shows that the Job controller made (or counted) a pod.
# Counts of a Job's status that mean a pod of it may still exist (the cache may lag).
_LIVE_POD_COUNTS = ("active", "ready", "terminating")
# Counts of pods that ended: with no pod left and no condition, the Job controller lost track.
_ENDED_POD_COUNTS = ("succeeded", "failed")
# Conditions after which a Job makes no pod any more.
_ENDED = ("Complete", "Failed", "FailureTarget", "SuccessCriteriaMet")

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Started:
    at: datetime


@dataclass(frozen=True)
class Succeeded:
    started_at: datetime | None
    at: datetime
    output: Any
    action: str | None
    writes: tuple[Write, ...] = ()


@dataclass(frozen=True)
class Failed:
    started_at: datetime | None
    at: datetime
    message: str
    timed_out: bool = False
    # The container never started and never will: its Job must be deleted by the caller.
    stuck: bool = False


@dataclass(frozen=True)
class InLog:
    """The attempt exited 0 and its result is the block ``frame`` in pod ``pod``'s log."""

    started_at: datetime | None
    at: datetime
    pod: str
    frame: FrameRef


Outcome = Started | Succeeded | Failed | InLog


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _main_container_state(pod: Manifest) -> Manifest:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for status in statuses:
        if status.get("name") == "node":
            return dict(status.get("state") or {})
    return dict(statuses[0].get("state") or {}) if statuses else {}


def _job_condition(job: Manifest, kind: str) -> Manifest | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def _tail(text: str) -> str:
    return text if len(text) <= _TAIL else "..." + text[-_TAIL:]


def _signal_name(code: Any) -> str | None:
    """The signal that ended a process, from a container's exit code (128 + signal)."""
    if not isinstance(code, int) or not 128 < code < 128 + 65:
        return None
    try:
        return signal.Signals(code - 128).name
    except ValueError:
        return f"signal {code - 128}"


def _from_terminated(term: Manifest, now: datetime, pod_name: str) -> Succeeded | Failed | InLog:
    started = parse_time(term.get("startedAt"))
    finished = parse_time(term.get("finishedAt")) or now
    code = term.get("exitCode")
    reason = str(term.get("reason") or "")
    message = str(term.get("message") or "")
    size = len(message.encode())
    result = parse_result(message)
    if code == 0 and result.frame is not None:
        return InLog(started, finished, pod_name, result.frame)
    killed = _signal_name(code)
    if killed is not None and (result.error == NO_RESULT or not message.strip()):
        return Failed(
            started,
            finished,
            f"killed by {killed} (exit code {code}) without a result",
            timed_out=False,
        )
    if code == 0 and result.ok:
        # A non-JSON text this long was most likely cut by the kubelet, not meant as output.
        if size >= TERMINATION_MESSAGE_LIMIT and isinstance(result.output, str):
            return Failed(
                started,
                finished,
                f"output reached the {TERMINATION_MESSAGE_LIMIT}-byte termination-message "
                "limit and was truncated; return a smaller output",
            )
        return Succeeded(started, finished, result.output, result.action, result.writes)
    detail = result.error if result.error is not None else _tail(message)
    text = f"exit code {code}" + (f" ({reason})" if reason else "")
    if detail:
        text += f": {detail}"
    if result.traceback:
        text += "\n" + _tail(result.traceback)
    return Failed(started, finished, text)


def observe(job: Manifest | None, pod: Manifest | None, now: datetime) -> Outcome | None:
    """The most advanced outcome the objects show, or None when nothing started yet."""
    if pod is not None:
        state = _main_container_state(pod)
        term = state.get("terminated")
        if isinstance(term, dict):
            pod_name = str((pod.get("metadata") or {}).get("name") or "")
            return _from_terminated(term, now, pod_name)
    failed = _job_condition(job, "Failed") if job is not None else None
    if failed is not None:
        reason = str(failed.get("reason") or "Failed")
        at = parse_time(failed.get("lastTransitionTime")) or now
        started = parse_time((job or {}).get("status", {}).get("startTime"))
        msg = str(failed.get("message") or "")
        return Failed(
            started,
            at,
            f"job failed ({reason})" + (f": {msg}" if msg else ""),
            timed_out=reason == "DeadlineExceeded",
        )
    if pod is not None:
        waiting = _main_container_state(pod).get("waiting")
        if isinstance(waiting, dict) and waiting.get("reason") in STUCK_REASONS:
            detail = str(waiting.get("message") or "")
            return Failed(
                None,
                now,
                f"container cannot start ({waiting['reason']})" + (f": {detail}" if detail else ""),
                stuck=True,
            )
        running = _main_container_state(pod).get("running")
        if isinstance(running, dict):
            began = parse_time(running.get("startedAt"))
            if began is not None:
                return Started(began)
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Failed":
            # Evicted or rejected before the container ran.
            status = pod.get("status") or {}
            return Failed(
                None,
                now,
                f"pod failed ({status.get('reason') or 'Failed'}): {status.get('message') or ''}",
            )
    return None


def from_log(outcome: InLog, log: str) -> Succeeded | Failed:
    """The outcome of an attempt whose result is in its pod's log text ``log``."""
    try:
        envelope = read_frame(outcome.frame, log)
    except FrameError as err:
        return Failed(outcome.started_at, outcome.at, f"result unreadable: {err}")
    result: NodeResult = parse_result(envelope)
    if not result.ok:
        detail = result.error or "a result block that holds another frame"
        return Failed(outcome.started_at, outcome.at, f"result unreadable: {detail}")
    return Succeeded(outcome.started_at, outcome.at, result.output, result.action, result.writes)


async def read_result(
    outcome: InLog, read_log: Callable[[int | None], Awaitable[str]]
) -> Succeeded | Failed:
    """:func:`from_log` over the pod's log, read by ``read_log(tail_lines)``: the last lines
    first (the block is printed last), the whole log only if the block is not all there."""
    tail = outcome.frame.lines + _LOG_SLACK_LINES
    first = from_log(outcome, await read_log(tail))
    if isinstance(first, Succeeded):
        return first
    return from_log(outcome, await read_log(None))


def pod_gone(job: Manifest, now: datetime) -> Failed | None:
    """The Job ended but none of its pods exists any more (the caller listed them): what the
    container returned is lost with the pod (deleted by hand, or garbage-collected by the
    control plane's terminated-pod GC). The attempt fails, so a retry can run, instead of the
    node staying Running with nothing left to read. None while the Job has not ended (its
    controller records a deleted running pod as a failure itself) or when it failed (the
    Job's condition is the outcome :func:`observe` reads)."""
    complete = _job_condition(job, "Complete")
    if complete is None:
        return None
    name = str((job.get("metadata") or {}).get("name") or "")
    started = parse_time((job.get("status") or {}).get("startTime"))
    at = parse_time(complete.get("lastTransitionTime")) or now
    return Failed(
        started,
        at,
        f"Job {name} completed but its pod is gone (deleted or garbage-collected), so the "
        "node's result cannot be read",
    )


def no_pod(
    job: Manifest, has_pod: bool, now: datetime, limit: timedelta
) -> Failed | datetime | None:
    """A Job that never got a pod: the Job controller was down when it was created (a chaos
    run: an API-server crash left one Job unsynced for good) or cannot create the pod (a
    ResourceQuota, an admission webhook refusing pods). Nothing would ever change its
    attempt, so once ``limit`` has passed since the Job was created (or last resumed from
    suspension: the Job controller resets ``startTime`` then) the attempt fails, naming the
    Job and where to look; ``stuck``: the caller deletes the Job, a retry gets one of its own.

    The same holds for a Job whose status counts a pod that ended (``failed: 1``) while no
    pod exists and no condition ends the Job: a chaos run saw the Job controller's status
    writes meet Conflicts during an API-server crash, and the Job was never synced again.

    Returns the failure; before the limit, the moment it will have passed (the caller wakes
    then); None when the rule does not apply: a pod was seen (``has_pod``: any pod the Job
    controls, in the caller's cache), the Job's status counts a live one (active, ready,
    terminating), it is (being) suspended, it ended, or it is being deleted."""
    if has_pod:
        return None
    meta = job.get("metadata") or {}
    status = job.get("status") or {}
    if (job.get("spec") or {}).get("suspend") or meta.get("deletionTimestamp"):
        return None
    if _job_condition(job, "Suspended") is not None:
        return None  # resumed, but the Job controller has not synced it yet
    if any(_job_condition(job, kind) is not None for kind in _ENDED):
        return None
    if any(status.get(count) for count in _LIVE_POD_COUNTS):
        return None
    uncounted = status.get("uncountedTerminatedPods") or {}
    lost_track = any(status.get(c) or uncounted.get(c) for c in _ENDED_POD_COUNTS)
    resumed = next(
        (
            parse_time(c.get("lastTransitionTime"))
            for c in status.get("conditions") or []
            if c.get("type") == "Suspended"
        ),
        None,
    )
    since = [
        t
        for t in (parse_time(meta.get("creationTimestamp")), parse_time(status.get("startTime")))
        if t is not None
    ] + ([resumed] if resumed is not None else [])
    if not since:
        return None
    deadline = max(since) + limit
    if now < deadline:
        return deadline
    name = str(meta.get("name") or "")
    return Failed(None, now, no_pod_message(name, limit, lost_track=lost_track), stuck=True)


def no_pod_message(job_name: str, limit: timedelta, *, lost_track: bool = False) -> str:
    """The failure of an attempt whose Job got no pod within ``limit`` (``lost_track``: its
    status counts a pod that ended, but none exists and the Job never ended)."""
    seconds = f"{limit.total_seconds():g} s"
    if lost_track:
        return (
            f"Job {job_name} counts a pod that ended, but no pod of it exists and the Job "
            f"controller did not end the Job within {seconds} (the operator's "
            "--pod-creation-timeout): the attempt's result cannot be read. The Job was deleted"
        )
    return (
        f"Job {job_name} got no pod within {seconds} (the operator's "
        f"--pod-creation-timeout); `kubectl describe job {job_name}` shows why: a "
        "ResourceQuota, an admission webhook refusing pods, a Job controller that is not "
        "running. The Job was deleted"
    )
