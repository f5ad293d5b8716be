"""When a node attempt's ``timeout`` expires on the cluster, by the operator's own clock (pure).

Why: the Job controller enforces ``activeDeadlineSeconds`` from the Job's start (before the
pod is even scheduled) and reports the failure only after it has killed the pod and the pod
has terminated: a 1 s timeout failed the node about 7 s later. The operator instead times the
attempt itself, from the moment its container runs, as ``flowcraft run`` times the process: at
the deadline it records the attempt as failed (reason Timeout) and deletes the pod with a
short grace period. ``activeDeadlineSeconds`` stays on the Job as a backstop (the timeout plus
:data:`BACKSTOP_SECONDS`), for the time the operator is down and for pods that never start.

The start of an attempt is never guessed early (an attempt must not be killed before it has
had its whole timeout): it is the earliest of two upper bounds of the true start, the moment
this process first saw the container running, and the container's ``startedAt`` plus one
second (the kubelet reports whole seconds; after an operator restart it is the only one).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

# The Job's activeDeadlineSeconds is the timeout plus this: the operator's timer acts first.
BACKSTOP_SECONDS = 30

# startedAt has a resolution of one second: the true start is before startedAt + this.
_RESOLUTION = timedelta(seconds=1)


def deadline(
    timeout_ms: int | None, seen_running: datetime | None, started_at: datetime | None
) -> datetime | None:
    """When the attempt has run ``timeout_ms``; None without a timeout or a known start."""
    if timeout_ms is None:
        return None
    bounds = [t for t in (seen_running, started_at + _RESOLUTION if started_at else None) if t]
    if not bounds:
        return None
    return min(bounds) + timedelta(milliseconds=timeout_ms)


def limit(timeout_ms: int) -> timedelta:
    """The timeout as a duration."""
    return timedelta(milliseconds=timeout_ms)


def message(timeout_ms: int) -> str:
    """The attempt's failure message (reason Timeout)."""
    return f"timed out after {timeout_ms} ms (the operator stopped the attempt's pod)"


def backstop_seconds(timeout_seconds: float) -> int:
    """The Job's activeDeadlineSeconds for a node ``timeout`` of ``timeout_seconds``."""
    return max(1, math.ceil(timeout_seconds)) + BACKSTOP_SECONDS
