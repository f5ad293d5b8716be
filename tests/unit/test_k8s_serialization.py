"""Decisions for one Flow come from one pass at a time; bursts of triggers coalesce.

This is the design answer to the join trap (see the ``reconcile`` package docstring), so it
is tested directly: the pass itself is replaced by a probe that records overlap (no API
involved), the worker logic is real.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowcraft.drivers.kubernetes.cache import FlowKey, ObjectCache
from flowcraft.drivers.kubernetes.reconcile import Reconciler

pytestmark = pytest.mark.unit


class _Probe:
    def __init__(self) -> None:
        self.active: dict[FlowKey, int] = {}
        self.max_active = 0
        self.passes: dict[FlowKey, int] = {}
        self.gate = asyncio.Event()

    async def __call__(self, key: FlowKey, state: Any) -> None:
        self.active[key] = self.active.get(key, 0) + 1
        self.max_active = max(self.max_active, self.active[key])
        self.passes[key] = self.passes.get(key, 0) + 1
        await self.gate.wait()
        self.active[key] -= 1


def _reconciler(probe: _Probe) -> Reconciler:
    rec = Reconciler(client=None, cache=ObjectCache(), instance="test")  # type: ignore[arg-type]
    rec._pass = probe  # type: ignore[method-assign]
    return rec


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_a_burst_of_triggers_runs_one_pass_then_exactly_one_more() -> None:
    async def scenario() -> _Probe:
        probe = _Probe()
        rec = _reconciler(probe)
        key = FlowKey("ns", "f")
        rec.trigger(key)
        await _settle()
        for _ in range(100):  # e.g. 100 Job completions while the first pass runs
            rec.trigger(key)
        await _settle()
        probe.gate.set()
        await _settle()
        await rec.close()
        return probe

    probe = asyncio.run(scenario())
    assert probe.max_active == 1
    assert probe.passes == {FlowKey("ns", "f"): 2}


def test_different_flows_run_concurrently() -> None:
    async def scenario() -> _Probe:
        probe = _Probe()
        rec = _reconciler(probe)
        rec.trigger(FlowKey("ns", "a"))
        rec.trigger(FlowKey("ns", "b"))
        await _settle()
        both = len([k for k, n in probe.active.items() if n])
        probe.gate.set()
        await _settle()
        await rec.close()
        assert both == 2
        return probe

    probe = asyncio.run(scenario())
    assert probe.max_active == 1


def test_own_status_write_echo_is_recognised() -> None:
    async def scenario() -> None:
        rec = _reconciler(_Probe())
        key = FlowKey("ns", "f")
        assert not rec.is_own_write(key, "5")
        rec.trigger(key)
        rec._flows[key].written_rv = "5"
        assert rec.is_own_write(key, "5")
        assert not rec.is_own_write(key, "6")
        await rec.close()

    asyncio.run(scenario())


def test_a_crashing_pass_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    async def flaky(key: FlowKey, state: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("bug in a pass")

    async def scenario() -> None:
        rec = Reconciler(client=None, cache=ObjectCache(), instance="t")  # type: ignore[arg-type]
        rec._pass = flaky  # type: ignore[method-assign]
        rec.trigger(FlowKey("ns", "f"))
        for _ in range(100):  # the retry comes from the backoff timer
            await asyncio.sleep(0.05)
            if len(calls) >= 2:
                break
        await rec.close()

    asyncio.run(scenario())
    assert len(calls) == 2
    assert "crashed" in caplog.text
    assert "bug in a pass" in caplog.text


def test_only_foreign_flow_events_invalidate_the_cached_flow() -> None:
    async def scenario() -> None:
        rec = _reconciler(_Probe())
        key = FlowKey("ns", "f")
        rec.trigger(key)
        state = rec._flows[key]
        state.written_rv, state.latest = "7", {"metadata": {"resourceVersion": "7"}}
        rec.flow_changed(key, "7")  # the echo of our own status write
        assert state.latest is not None
        rec.flow_changed(key, "8")  # e.g. the user set spec.suspend
        assert state.latest is None
        assert state.foreign_events == 1
        await rec.close()

    asyncio.run(scenario())


class _SlowStatusClient:
    """Answers a status PUT only when ``gate`` opens, with resourceVersion ``rv``."""

    def __init__(self, rv: str) -> None:
        self.gate = asyncio.Event()
        self.rv = rv

    async def replace_flow_status(self, namespace: str, name: str, body: Any) -> Any:
        await self.gate.wait()
        return {"metadata": {"resourceVersion": self.rv}}


def test_an_echo_that_beats_the_writes_response_is_still_our_own() -> None:
    """The watch echo of a status write often arrives before the PUT's response; taken for
    someone else's change, it cost the next pass a GET of the Flow. A change by someone else
    during the write still counts."""

    async def scenario() -> None:
        client = _SlowStatusClient("9")
        rec = Reconciler(client=client, cache=ObjectCache(), instance="t")  # type: ignore[arg-type]
        rec._pass = _Probe()  # type: ignore[method-assign]
        key = FlowKey("ns", "f")
        rec.trigger(key)
        state = rec._flows[key]
        state.latest = {"metadata": {"resourceVersion": "8"}}
        write = asyncio.create_task(rec._write_status(key, state, {"metadata": {}}))
        await _settle()
        rec.flow_changed(key, "9")  # our own echo, before the response
        client.gate.set()
        await write
        assert state.foreign_events == 0
        assert state.latest is not None

        client.gate, client.rv = asyncio.Event(), "11"
        write = asyncio.create_task(rec._write_status(key, state, {"metadata": {}}))
        await _settle()
        rec.flow_changed(key, "10")  # e.g. the user set spec.suspend meanwhile
        client.gate.set()
        await write
        assert state.foreign_events == 1
        assert state.latest is None
        await rec.close()

    asyncio.run(scenario())


def test_the_late_echo_of_an_earlier_write_is_still_our_own() -> None:
    """Two writes back to back: the first one's echo may arrive during or after the second."""

    async def scenario() -> None:
        client = _SlowStatusClient("20")
        rec = Reconciler(client=client, cache=ObjectCache(), instance="t")  # type: ignore[arg-type]
        rec._pass = _Probe()  # type: ignore[method-assign]
        key = FlowKey("ns", "f")
        rec.trigger(key)
        state = rec._flows[key]
        client.gate.set()
        await rec._write_status(key, state, {"metadata": {}})
        client.gate, client.rv = asyncio.Event(), "21"
        write = asyncio.create_task(rec._write_status(key, state, {"metadata": {}}))
        await _settle()
        rec.flow_changed(key, "20")  # the first write's echo, during the second
        client.gate.set()
        await write
        rec.flow_changed(key, "20")  # ... or after it
        assert state.foreign_events == 0
        await rec.close()

    asyncio.run(scenario())
