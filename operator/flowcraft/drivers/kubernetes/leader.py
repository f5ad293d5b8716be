"""Leader election on a ``coordination.k8s.io`` Lease: two replicas, one writer.

Why it exists: the operator's correctness rests on one writer per Flow (the reconcile is
serialized in-process). kopf's peering only pauses handlers cooperatively and is not an
election with a deadline, so a second replica needs a real lock: a Lease object that the leader
renews and a standby takes over once it has expired.

The algorithm is client-go's ``leaderelection`` (same three durations, same meaning):

- ``lease_duration`` (15 s): how long a standby waits, on its own clock, after it last saw the
  Lease's record change before it may take the Lease. It never compares the record's
  ``renewTime`` with its clock, so clock skew between machines does not matter; only clock
  *rates* do.
- ``renew_deadline`` (10 s): the leader stops writing when its last successful renewal started
  longer ago than this. It must be shorter than ``lease_duration``: the gap (5 s) is the margin
  for the leader to stop before any standby can consider the Lease expired. Stopping is
  enforced twice: every write the :class:`~flowcraft.drivers.kubernetes.client.Client` sends
  checks :meth:`LeaderElector.may_write` first, and the renew loop ends the process
  (``os._exit``, no graceful shutdown that could write) the moment the deadline passes.
- ``retry_period`` (2 s): how often the leader renews and a standby retries.

So after a SIGKILLed leader, a standby leads within ``lease_duration`` + 2 x ``retry_period``
of the last renewal (then kopf lists everything and resumes every Flow from its status). A
leader stopped with SIGTERM releases the Lease after its last write, and a standby leads within
one ``retry_period``. A standby runs nothing but this loop: it neither watches nor writes.

The decision (:func:`decide`) is pure; :class:`LeaderElector` does the I/O through the client.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from flowcraft.drivers.kubernetes.client import AlreadyExists, ApiError, Conflict, NotFound

logger = logging.getLogger(__name__)

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Timing:
    """client-go's defaults; ``renew_deadline < lease_duration`` and ``retry_period <
    renew_deadline`` are required (the margin that makes two writers impossible)."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < retry period < renew deadline < lease duration "
                f"(got {self.retry_period:g} s, {self.renew_deadline:g} s, "
                f"{self.lease_duration:g} s)"
            )


def default_identity() -> str:
    """Unique per process: the pod name (the hostname in a pod) plus a random suffix."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def micro_time(epoch: float) -> str:
    """A Lease's MicroTime (RFC 3339 with microseconds, UTC)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(lease: Manifest) -> tuple[Any, ...]:
    """What a standby watches for change: any renewal changes ``renewTime``."""
    spec = lease.get("spec") or {}
    return (
        spec.get("holderIdentity"),
        spec.get("leaseDurationSeconds"),
        spec.get("acquireTime"),
        spec.get("renewTime"),
        spec.get("leaseTransitions"),
    )


@dataclass
class Observation:
    """The last Lease record seen and when (monotonic clock of this process) it changed."""

    record: tuple[Any, ...] | None = None
    changed_at: float = 0.0


def decide(
    lease: Manifest,
    observed: Observation,
    *,
    identity: str,
    timing: Timing,
    now_mono: float,
    now_wall: float,
) -> Manifest | None:
    """The Lease spec to write to lead (acquire or renew), or None while another holds it.

    Updates ``observed`` with ``lease``'s record. A Lease with an empty holder (released) is
    free at once; another holder's Lease is free ``lease_duration`` after its record last
    changed as seen by this process. ``lease_duration`` is taken from this process's timing,
    never from the record, so every replica waits as long as it promises to.
    """
    record = _record(lease)
    if record != observed.record:
        observed.record = record
        observed.changed_at = now_mono
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity") or ""
    if holder and holder != identity and now_mono < observed.changed_at + timing.lease_duration:
        return None
    now = micro_time(now_wall)
    transitions = int(spec.get("leaseTransitions") or 0)
    ours = holder == identity
    return {
        "holderIdentity": identity,
        "leaseDurationSeconds": max(1, round(timing.lease_duration)),
        "acquireTime": spec.get("acquireTime") if ours and spec.get("acquireTime") else now,
        "renewTime": now,
        "leaseTransitions": transitions if ours else transitions + 1,
    }


class LeaseApi(Protocol):
    async def get_lease(self, namespace: str, name: str) -> Manifest: ...

    async def create_lease(self, namespace: str, body: Manifest) -> Manifest: ...

    async def replace_lease(self, namespace: str, name: str, body: Manifest) -> Manifest: ...


def _lost_leadership() -> None:  # pragma: no cover - ends the process
    logger.critical("leader election: lease not renewed within the renew deadline; exiting now")
    logging.shutdown()
    os._exit(1)


class LeaderElector:
    """Acquire, renew and release one Lease. Create one per process."""

    def __init__(
        self,
        api: LeaseApi,
        namespace: str,
        name: str,
        *,
        identity: str | None = None,
        timing: Timing | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_lost: Callable[[], None] = _lost_leadership,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity or default_identity()
        self.timing = timing or Timing()
        self._clock = clock
        self._wall = wall_clock
        self._on_lost = on_lost
        self._observed = Observation()
        self._lease: Manifest | None = None
        # Start (monotonic) of the last renewal that succeeded; None while not leading.
        self._renewed_at: float | None = None

    # --- what the rest of the process asks ------------------------------------------------

    def may_write(self) -> bool:
        """True while this process leads and its last renewal is within the renew deadline."""
        renewed = self._renewed_at
        return renewed is not None and self._clock() < renewed + self.timing.renew_deadline

    @property
    def leading(self) -> bool:
        return self._renewed_at is not None

    # --- one attempt ------------------------------------------------------------------------

    async def try_acquire_or_renew(self) -> bool:
        """One round of client-go's tryAcquireOrRenew; True when this process now leads."""
        started = self._clock()
        try:
            lease = await self.api.get_lease(self.namespace, self.name)
        except NotFound:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": decide(
                    {},
                    self._observed,
                    identity=self.identity,
                    timing=self.timing,
                    now_mono=started,
                    now_wall=self._wall(),
                ),
            }
            try:
                self._lease = await self.api.create_lease(self.namespace, body)
            except AlreadyExists:
                return False
            self._won(started)
            return True
        spec = decide(
            lease,
            self._observed,
            identity=self.identity,
            timing=self.timing,
            now_mono=started,
            now_wall=self._wall(),
        )
        if spec is None:
            if self._renewed_at is not None:
                # Another process holds it: this one lost it (it could not renew in time).
                self._renewed_at = None
                self._on_lost()
            return False
        body = {**lease, "spec": {**(lease.get("spec") or {}), **spec}}
        try:
            self._lease = await self.api.replace_lease(self.namespace, self.name, body)
        except (Conflict, NotFound):
            return False
        self._won(started)
        return True

    def _won(self, started: float) -> None:
        if self._lease is not None:
            self._observed.record = _record(self._lease)
            self._observed.changed_at = started
        if self._renewed_at is None:
            logger.info(
                "leader election: %s leads (lease %s/%s)", self.identity, self.namespace, self.name
            )
        self._renewed_at = started

    # --- loops ------------------------------------------------------------------------------

    async def acquire(self) -> None:
        """Block until this process leads (a standby waits here, writing nothing else)."""
        logger.info(
            "leader election: %s is standby until it holds lease %s/%s",
            self.identity,
            self.namespace,
            self.name,
        )
        while True:
            try:
                if await asyncio.wait_for(
                    self.try_acquire_or_renew(), timeout=self.timing.retry_period
                ):
                    return
            except (ApiError, TimeoutError) as exc:
                logger.warning("leader election: lease %s/%s: %s", self.namespace, self.name, exc)
            await asyncio.sleep(self.timing.retry_period)

    async def keep_renewing(self) -> None:
        """Renew every ``retry_period``; past the renew deadline, call ``on_lost`` (exit)."""
        while True:
            await asyncio.sleep(self.timing.retry_period)
            renewed = self._renewed_at
            remaining = (renewed or 0.0) + self.timing.renew_deadline - self._clock()
            ok = False
            if remaining > 0:
                try:
                    ok = await asyncio.wait_for(self.try_acquire_or_renew(), timeout=remaining)
                except Exception as exc:  # any failure is a failed renewal
                    logger.warning("leader election: renew failed: %s", exc)
            if not ok and not self.may_write():
                self._renewed_at = None
                self._on_lost()
                return

    async def release(self) -> None:
        """After the last write: hand the Lease over at once (empty holder), if still ours."""
        if self._renewed_at is None or self._lease is None:
            return
        self._renewed_at = None
        lease = self._lease
        spec = {
            **(lease.get("spec") or {}),
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "renewTime": micro_time(self._wall()),
        }
        try:
            await self.api.replace_lease(self.namespace, self.name, {**lease, "spec": spec})
            logger.info("leader election: %s released the lease", self.identity)
        except ApiError as exc:
            logger.warning("leader election: release failed (it expires by itself): %s", exc)
