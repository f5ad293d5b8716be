"""Leader election (drivers/kubernetes/leader.py): the Lease decision, the deadlines, the guard.

The Lease API here is an in-memory store with the API server's optimistic concurrency
(resourceVersion, Conflict, AlreadyExists); clocks are explicit numbers, so every timing rule
is checked exactly. The election on a real API server is covered by tests/e2e/test_ha_e2e.py.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from flowcraft.drivers.kubernetes.client import (
    AlreadyExists,
    Client,
    Conflict,
    Connection,
    NotFound,
    NotLeader,
    ServerError,
)
from flowcraft.drivers.kubernetes.leader import (
    LeaderElector,
    Observation,
    Timing,
    decide,
    micro_time,
)

pytestmark = pytest.mark.unit

Manifest = dict[str, Any]


class Leases:
    """One namespace's Leases with resourceVersion semantics; ``fail`` makes calls error."""

    def __init__(self) -> None:
        self.objects: dict[str, Manifest] = {}
        self.version = 0
        self.fail = False

    def _check(self) -> None:
        if self.fail:
            raise ServerError(503, "ServiceUnavailable", "down")

    async def get_lease(self, namespace: str, name: str) -> Manifest:
        self._check()
        if name not in self.objects:
            raise NotFound(404, "NotFound", name)
        return copy.deepcopy(self.objects[name])

    async def create_lease(self, namespace: str, body: Manifest) -> Manifest:
        self._check()
        name = body["metadata"]["name"]
        if name in self.objects:
            raise AlreadyExists(409, "AlreadyExists", name)
        self.version += 1
        obj = copy.deepcopy(body)
        obj["metadata"]["resourceVersion"] = str(self.version)
        self.objects[name] = obj
        return copy.deepcopy(obj)

    async def replace_lease(self, namespace: str, name: str, body: Manifest) -> Manifest:
        self._check()
        current = self.objects.get(name)
        if current is None:
            raise NotFound(404, "NotFound", name)
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise Conflict(409, "Conflict", name)
        self.version += 1
        obj = copy.deepcopy(body)
        obj["metadata"]["resourceVersion"] = str(self.version)
        self.objects[name] = obj
        return copy.deepcopy(obj)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


TIMING = Timing(lease_duration=15, renew_deadline=10, retry_period=2)


def _elector(api: Leases, identity: str, clock: Clock, lost: list[str]) -> LeaderElector:
    return LeaderElector(
        api,
        "ns",
        "flowcraft-operator",
        identity=identity,
        timing=TIMING,
        clock=clock,
        wall_clock=lambda: 1_700_000_000.0 + clock.now,
        on_lost=lambda: lost.append(identity),
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_timing_must_leave_the_leader_time_to_stop_before_the_lease_expires() -> None:
    with pytest.raises(ValueError, match="renew deadline < lease duration"):
        Timing(lease_duration=10, renew_deadline=10, retry_period=2)
    with pytest.raises(ValueError, match="retry period < renew deadline"):
        Timing(lease_duration=15, renew_deadline=10, retry_period=10)


def test_micro_time_is_rfc3339_with_microseconds() -> None:
    assert micro_time(0.5) == "1970-01-01T00:00:00.500000Z"


def test_first_process_creates_the_lease_and_leads() -> None:
    api, clock, lost = Leases(), Clock(), []
    a = _elector(api, "a", clock, lost)
    assert run(a.try_acquire_or_renew())
    spec = api.objects["flowcraft-operator"]["spec"]
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 1
    assert a.may_write()


def test_a_standby_waits_a_full_lease_duration_after_the_last_change_it_saw() -> None:
    api, clock, lost = Leases(), Clock(), []
    a, b = _elector(api, "a", clock, lost), _elector(api, "b", clock, lost)
    assert run(a.try_acquire_or_renew())
    assert not run(b.try_acquire_or_renew())  # b first sees a's record now (t=1000)
    clock.now += 8
    assert run(a.try_acquire_or_renew())  # a renews at t=1008: a new record
    clock.now += 1
    assert not run(b.try_acquire_or_renew())  # b sees it at t=1009
    clock.now += 14.9  # a is gone (killed); t=1023.9 < 1009 + 15
    assert not run(b.try_acquire_or_renew())
    assert not b.may_write()
    clock.now += 0.2  # t=1024.1: expired on b's clock
    assert run(b.try_acquire_or_renew())
    spec = api.objects["flowcraft-operator"]["spec"]
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 2
    assert b.may_write()


def test_the_leader_stops_writing_before_any_standby_may_take_over() -> None:
    """The invariant: a leader's may_write ends (renew deadline) strictly before a standby's
    view of the same renewal expires (lease duration), whatever the standby's polling."""
    api, clock, lost = Leases(), Clock(), []
    a, b = _elector(api, "a", clock, lost), _elector(api, "b", clock, lost)
    assert run(a.try_acquire_or_renew())
    renewed = clock.now
    for step in range(0, 300):
        clock.now = renewed + step * 0.1
        took = run(b.try_acquire_or_renew())
        if took:
            assert not a.may_write(), f"two writers at +{step * 0.1:.1f} s"
            assert clock.now - renewed >= TIMING.lease_duration
            return
    pytest.fail("the standby never took over")


def test_a_released_lease_is_taken_at_once() -> None:
    api, clock, lost = Leases(), Clock(), []
    a, b = _elector(api, "a", clock, lost), _elector(api, "b", clock, lost)
    assert run(a.try_acquire_or_renew())
    assert not run(b.try_acquire_or_renew())
    run(a.release())
    assert not a.may_write()
    assert api.objects["flowcraft-operator"]["spec"]["holderIdentity"] == ""
    assert run(b.try_acquire_or_renew())


def test_a_leader_whose_renewals_fail_loses_write_rights_at_the_renew_deadline() -> None:
    api, clock, lost = Leases(), Clock(), []
    a = _elector(api, "a", clock, lost)
    assert run(a.try_acquire_or_renew())
    api.fail = True
    clock.now += 9.9
    assert a.may_write()
    clock.now += 0.2
    assert not a.may_write()


def test_a_leader_that_finds_another_holder_stops_at_once() -> None:
    api, clock, lost = Leases(), Clock(), []
    a = _elector(api, "a", clock, lost)
    assert run(a.try_acquire_or_renew())
    lease = api.objects["flowcraft-operator"]
    lease["spec"]["holderIdentity"] = "intruder"
    lease["spec"]["renewTime"] = "later"
    assert not run(a.try_acquire_or_renew())
    assert lost == ["a"]
    assert not a.may_write()


def test_two_acquirers_racing_on_one_record_get_one_winner() -> None:
    api, clock, lost = Leases(), Clock(), []
    a, b = _elector(api, "a", clock, lost), _elector(api, "b", clock, lost)
    assert run(a.try_acquire_or_renew())
    run(a.release())

    async def both() -> list[bool]:
        return list(await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew()))

    assert sorted(run(both())) == [False, True]


def test_keep_renewing_exits_when_the_api_is_unreachable_past_the_deadline() -> None:
    api, lost = Leases(), []
    elector = LeaderElector(
        api,
        "ns",
        "l",
        identity="a",
        timing=Timing(lease_duration=0.6, renew_deadline=0.4, retry_period=0.05),
        on_lost=lambda: lost.append("a"),
    )

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        assert await elector.try_acquire_or_renew()
        api.fail = True
        start = loop.time()
        await asyncio.wait_for(elector.keep_renewing(), timeout=5)
        return loop.time() - start

    elapsed = run(scenario())
    assert lost == ["a"]
    assert 0.3 < elapsed < 0.6  # at the renew deadline, before the lease duration


def test_keep_renewing_renews() -> None:
    api, lost = Leases(), []
    elector = LeaderElector(
        api,
        "ns",
        "l",
        identity="a",
        timing=Timing(lease_duration=0.6, renew_deadline=0.4, retry_period=0.05),
        on_lost=lambda: lost.append("a"),
    )

    async def scenario() -> None:
        assert await elector.try_acquire_or_renew()
        task = asyncio.create_task(elector.keep_renewing())
        await asyncio.sleep(0.8)  # longer than the lease: only renewals keep it
        assert elector.may_write()
        task.cancel()

    run(scenario())
    assert lost == []
    assert int(api.objects["l"]["metadata"]["resourceVersion"]) > 5


def test_decide_keeps_acquire_time_and_transitions_on_renewal() -> None:
    observed = Observation()
    lease = {
        "spec": {
            "holderIdentity": "a",
            "acquireTime": "t0",
            "renewTime": "t1",
            "leaseTransitions": 3,
            "leaseDurationSeconds": 15,
        }
    }
    spec = decide(lease, observed, identity="a", timing=TIMING, now_mono=5, now_wall=0)
    assert spec is not None
    assert spec["acquireTime"] == "t0"
    assert spec["leaseTransitions"] == 3
    assert spec["renewTime"] == micro_time(0)


class _Config:
    def get_api_key_with_prefix(self, _: str) -> None:
        return None


def test_the_client_refuses_writes_once_not_leader_but_still_reads_and_renews() -> None:
    conn = Connection(
        server="http://127.0.0.1:9",  # nothing listens: a request that is sent fails otherwise
        ca_path=None,
        insecure=False,
        cert_path=None,
        key_path=None,
        default_namespace=None,
        _config=_Config(),
    )
    client = Client(conn)
    client.write_guard = lambda: False

    async def scenario() -> None:
        with pytest.raises(NotLeader):
            await client.create_job("ns", {"metadata": {"name": "j"}})
        with pytest.raises(NotLeader):
            await client.replace_flow_status("ns", "f", {})
        # Reads and the Lease's own writes go out (and fail here only for the lack of a server).
        for call in (client.get_job("ns", "j"), client.replace_lease("ns", "l", {})):
            with pytest.raises(ServerError) as info:
                await call
            assert not isinstance(info.value, NotLeader)
        await client.close()

    run(scenario())
