"""Failed reconcile passes: capped exponential backoff, crash vs transient, the give-up bound."""

from __future__ import annotations

import pytest

from flowcraft.drivers.kubernetes import failures
from flowcraft.drivers.kubernetes.client import Conflict, Forbidden, Invalid, ServerError

pytestmark = pytest.mark.unit


def test_backoff_doubles_and_is_capped_whatever_the_count() -> None:
    assert [failures.backoff_seconds(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert failures.backoff_seconds(12) == failures.MAX_BACKOFF_SECONDS
    assert failures.backoff_seconds(10**9) == failures.MAX_BACKOFF_SECONDS


def test_crashes_are_bugs_and_rejections_transient_errors_are_the_clusters() -> None:
    assert failures.is_crash(KeyError("x"))
    assert failures.is_crash(Invalid(422, "Invalid", "status too large"))
    assert not failures.is_crash(ServerError(503, "ServiceUnavailable", "etcd"))
    assert not failures.is_crash(Forbidden(403, "Forbidden", "no rights"))
    assert not failures.is_crash(Conflict(409, "Conflict", "changed"))


def test_messages_name_the_cause_and_the_bound() -> None:
    exc = ValueError("bad\nvalue " + "x" * 2000)
    assert failures.cause(exc).startswith("ValueError: bad value xxx")
    assert len(failures.cause(exc)) <= 512
    message = failures.retry_message(3, 3, exc)
    assert message.startswith(
        f"reconcile failed (3 of {failures.MAX_CRASHES} before the Flow fails)"
    )
    assert message.endswith("retrying in 2s")
    assert not failures.gives_up(failures.MAX_CRASHES - 1)
    assert failures.gives_up(failures.MAX_CRASHES)
    assert "6 failed passes" in failures.give_up_message(6, exc)


def test_the_reconciling_condition_is_added_then_dropped_by_the_next_normal_write() -> None:
    from datetime import UTC, datetime  # noqa: PLC0415

    from flowcraft.drivers.kubernetes import status as flow_status  # noqa: PLC0415

    now = datetime(2026, 1, 1, tzinfo=UTC)
    running = flow_status.with_conventions({"phase": "Running"}, {}, 1, now)
    failed = flow_status.with_reconcile_error(running, "ReconcileError", "boom", now)
    reconciling = [c for c in failed["conditions"] if c["type"] == "Reconciling"]
    assert reconciling == [
        {
            "type": "Reconciling",
            "status": "False",
            "reason": "ReconcileError",
            "message": "boom",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ]
    assert len(failed["conditions"]) == len(running["conditions"]) + 1
    again = flow_status.with_conventions({"phase": "Running"}, failed, 1, now)
    assert [c["type"] for c in again["conditions"]] == [c["type"] for c in running["conditions"]]


def test_the_reconciler_backs_off_and_gives_up_after_the_crash_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio  # noqa: PLC0415
    from typing import Any  # noqa: PLC0415

    from flowcraft.drivers.kubernetes.cache import FlowKey, ObjectCache  # noqa: PLC0415
    from flowcraft.drivers.kubernetes.reconcile import Reconciler  # noqa: PLC0415

    passes: list[int] = []
    delays: list[float] = []
    gave_up: list[int] = []

    async def crash(key: FlowKey, state: Any) -> None:
        passes.append(1)
        raise RuntimeError("bug in a pass")

    async def scenario() -> None:
        rec = Reconciler(client=None, cache=ObjectCache(), instance="t")  # type: ignore[arg-type]
        rec._pass = crash  # type: ignore[method-assign]

        def schedule(key: FlowKey, state: Any, delay: float) -> None:
            delays.append(delay)
            rec.trigger(key)  # at once: the test does not wait out the backoff

        async def give_up(key: FlowKey, state: Any, exc: Exception) -> None:
            gave_up.append(state.crashes)

        monkeypatch.setattr(rec, "_schedule", schedule)
        monkeypatch.setattr(rec, "_give_up", give_up)
        rec.trigger(FlowKey("ns", "f"))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if gave_up:
                break
        await rec.close()

    asyncio.run(scenario())
    assert gave_up == [failures.MAX_CRASHES]
    assert len(passes) == failures.MAX_CRASHES
    assert delays == [failures.backoff_seconds(n) for n in range(1, failures.MAX_CRASHES)]
