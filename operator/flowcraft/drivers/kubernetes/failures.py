"""What the operator does when reconciling one Flow keeps failing: back off, tell, give up.

Why this module: a pass that crashes (a bug, or data the code cannot handle) used to be retried
every 30 s forever, visible only in the operator's log. The rules here make it bounded and
visible: every failed pass is retried after an exponential backoff capped at
`MAX_BACKOFF_SECONDS`; the Flow's owner is told with a Warning Event and a `Reconciling`
status condition naming the cause; and after `MAX_CRASHES` crashed passes in a row the Flow
fails with the cause, instead of holding its pods and the operator's attention forever.

Two kinds of failure are told apart. A *crash* (an unexpected exception, or the API server
rejecting what we send: 422 Invalid, 413 too large, 400) will not fix itself: it counts toward
the bound. A *transient* API error (the server unreachable or overloaded, 5xx, 429, rights
being fixed) is not the Flow's fault: it is retried with the same capped backoff and never
fails the Flow. (A Job create refused with 403, by a ResourceQuota or an admission webhook,
never reaches this: it fails that node attempt with the server's words, see
``reconcile.cluster``.) Pure functions; the reconciler applies them.
"""

from __future__ import annotations

from typing import Final

from flowcraft.drivers.kubernetes.client import ApiError

FIRST_BACKOFF_SECONDS: Final = 0.5
MAX_BACKOFF_SECONDS: Final = 300.0
MAX_CRASHES: Final = 6  # 0.5 + 1 + 2 + 4 + 8 s of backoff between them: ~16 s
CONDITION_RECONCILING: Final = "Reconciling"
REASON_RECONCILE_ERROR: Final = "ReconcileError"
REASON_RECONCILE_FAILED: Final = "ReconcileFailed"
_MAX_CAUSE_CHARS: Final = 512


def backoff_seconds(failures: int) -> float:
    """Delay before the next pass after `failures` failed passes in a row (1-based)."""
    exponent = min(max(failures - 1, 0), 16)  # clamped before the power: no overflow
    delay: float = FIRST_BACKOFF_SECONDS * float(1 << exponent)
    return min(delay, MAX_BACKOFF_SECONDS)


# Client errors an administrator or time can fix (rights, a vanished or changed object, rate
# limiting): transient for the Flow. Any other 4xx (422 Invalid, 413 too large, 400) is not.
_TRANSIENT_4XX: Final = frozenset({401, 403, 404, 408, 409, 429})


def is_crash(exc: BaseException) -> bool:
    """True if retrying cannot help by itself: counts toward MAX_CRASHES."""
    if isinstance(exc, ApiError):
        return 400 <= exc.status < 500 and exc.status not in _TRANSIENT_4XX
    return True


def cause(exc: BaseException) -> str:
    """One line naming the failure, short enough for an Event and a condition."""
    text = " ".join(str(exc).split()) or "(no message)"
    line = f"{type(exc).__name__}: {text}"
    if len(line) > _MAX_CAUSE_CHARS:
        line = line[: _MAX_CAUSE_CHARS - 3] + "..."
    return line


def gives_up(crashes: int) -> bool:
    return crashes >= MAX_CRASHES


def retry_message(failures: int, crashes: int, exc: BaseException) -> str:
    delay = backoff_seconds(failures)
    if is_crash(exc):
        return (
            f"reconcile failed ({crashes} of {MAX_CRASHES} before the Flow fails): "
            f"{cause(exc)}; retrying in {delay:g}s"
        )
    return f"reconcile failed: {cause(exc)}; retrying in {delay:g}s"


def give_up_message(crashes: int, exc: BaseException) -> str:
    return f"the operator could not reconcile this Flow ({crashes} failed passes): {cause(exc)}"
