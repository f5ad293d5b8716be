"""Prometheus metrics of the Kubernetes driver.

Why: latency must be measured, not assumed, and a platform team watches an
operator through Prometheus. Everything the operator exports is defined here, with the rules
that keep it cheap and honest:

- base units (``_seconds``), ``_total`` counters, bounded labels: ``namespace``, ``result``,
  ``stage``; the Flow's name (``flow``) only when the operator is started with
  ``--metrics-flow-label`` (one series per flow name can grow without bound). Never a label
  per run, attempt or uid.
- each fact is counted once although the reconcile is level-triggered (it sees the same pod
  many times): node and flow results come from status *transitions* that were written, and
  the per-attempt bookkeeping is keyed by Job name and dropped when a Flow is retired.
- bucket boundaries are configurable (operator flags, chart values): what "slow" means
  depends on the workloads.

The reconciler reaches the process-wide :class:`Metrics` through :func:`current`; the
operator's entry installs it with :func:`configure` (defaults when never configured, so tests
and harnesses that skip configuration still work). Unit tests build their own on a private
registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.registry import Collector

from flowcraft import __version__
from flowcraft.model import TERMINAL_FLOW_PHASES, TERMINAL_NODE_PHASES, FlowStatus

# Fine below 100 ms: the target is tens of milliseconds and the report quotes quantiles.
_FINE = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1)
_COARSE = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SCHEDULE_LATENCY_BUCKETS = _FINE + _COARSE
# Nodes: sub-second scripts to hour-long batch jobs.
NODE_DURATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
FLOW_DURATION_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
                         21600.0)  # fmt: skip

DEPENDENCY_TO_CREATE = "dependency_to_create"
CREATE_TO_RUNNING = "create_to_running"


def parse_buckets(text: str) -> tuple[float, ...]:
    """``"0.5,1,2.5"`` -> (0.5, 1.0, 2.5); raises ValueError naming what is wrong."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(
            f"bucket bounds must be numbers separated by commas, got {text!r}"
        ) from None
    if not values:
        raise ValueError("at least one bucket bound is needed")
    if any(v <= 0 for v in values):
        raise ValueError(f"bucket bounds must be positive seconds, got {text!r}")
    if sorted(set(values)) != values:
        raise ValueError(f"bucket bounds must be strictly increasing, got {text!r}")
    return tuple(values)


@dataclass(frozen=True)
class MetricsConfig:
    flow_label: bool = False
    node_duration_buckets: tuple[float, ...] = NODE_DURATION_BUCKETS
    schedule_latency_buckets: tuple[float, ...] = SCHEDULE_LATENCY_BUCKETS
    flow_duration_buckets: tuple[float, ...] = FLOW_DURATION_BUCKETS


class FlowId(NamedTuple):
    namespace: str
    name: str


@dataclass(frozen=True)
class Attempt:
    """One finished attempt whose pod ran: timed from container start to container end."""

    node: str
    started_at: datetime
    finished_at: datetime
    succeeded: bool


def _result(phase: str) -> str:
    return phase.lower()


@dataclass
class Metrics:
    """The operator's metric families on one registry, plus the bookkeeping that dedupes."""

    config: MetricsConfig = field(default_factory=MetricsConfig)
    registry: CollectorRegistry = REGISTRY

    def __post_init__(self) -> None:
        scoped = ("namespace", "flow") if self.config.flow_label else ("namespace",)
        reg = self.registry
        self.node_duration = Histogram(
            "flowcraft_node_duration_seconds",
            "Run time of a node attempt's pod, from container start to container end.",
            labelnames=(*scoped, "result"),
            buckets=self.config.node_duration_buckets,
            registry=reg,
        )
        self.schedule_latency = Histogram(
            "flowcraft_node_schedule_latency_seconds",
            "Scheduling delay of a node attempt. stage=dependency_to_create: the event showing "
            "its last dependency succeeded arrived -> its Job create request was sent. "
            "stage=create_to_running: the Job was created -> the operator saw its pod running.",
            labelnames=("stage",),
            buckets=self.config.schedule_latency_buckets,
            registry=reg,
        )
        self.flow_duration = Histogram(
            "flowcraft_flow_duration_seconds",
            "Time from a Flow's start to its end (succeeded, failed or cancelled).",
            labelnames=(*scoped, "result"),
            buckets=self.config.flow_duration_buckets,
            registry=reg,
        )
        self.flows = Counter(
            "flowcraft_flows",
            "Flows that reached an end, by result (succeeded, failed, cancelled).",
            labelnames=(*scoped, "result"),
            registry=reg,
        )
        self.nodes = Counter(
            "flowcraft_nodes",
            "Nodes that reached an end, by result (succeeded, failed, skipped, cancelled).",
            labelnames=(*scoped, "result"),
            registry=reg,
        )
        self.nodes_running = Gauge(
            "flowcraft_nodes_running",
            "Node attempts whose pod the operator currently sees running.",
            registry=reg,
        )
        self.build_info = Gauge(
            "flowcraft_build_info",
            "Always 1; the operator's version is in the label.",
            labelnames=("version",),
            registry=reg,
        )
        self.build_info.labels(version=__version__).set(1)
        self.leader = Gauge(
            "flowcraft_leader",
            "1 while this process leads and writes (always, without leader election); 0 while "
            "it is a standby waiting for the Lease.",
            registry=reg,
        )
        # Job name -> when its create request succeeded (until its pod is seen running).
        self._created: dict[FlowId, dict[str, datetime]] = {}
        # Job names whose pod is running now.
        self._running: dict[FlowId, set[str]] = {}

    def _scope(self, flow: FlowId) -> dict[str, str]:
        if self.config.flow_label:
            return {"namespace": flow.namespace, "flow": flow.name}
        return {"namespace": flow.namespace}

    # -- per attempt (Job) ----------------------------------------------------------------

    def dependency_to_create(self, seconds: float) -> None:
        self.schedule_latency.labels(stage=DEPENDENCY_TO_CREATE).observe(max(0.0, seconds))

    def job_created(self, flow: FlowId, job: str, at: datetime) -> None:
        self._created.setdefault(flow, {})[job] = at

    def pod_running(self, flow: FlowId, job: str, at: datetime) -> None:
        """The pod of ``job`` is seen running (repeats are fine: counted once)."""
        created = self._created.get(flow, {}).pop(job, None)
        if created is not None:
            self.schedule_latency.labels(stage=CREATE_TO_RUNNING).observe(
                max(0.0, (at - created).total_seconds())
            )
        running = self._running.setdefault(flow, set())
        if job not in running:  # passes see the same running pod many times
            running.add(job)
            self.nodes_running.inc()

    def pod_finished(self, flow: FlowId, job: str, started_at: datetime | None) -> None:
        """The pod of ``job`` ended; a pod never seen running still has its create→start."""
        created = self._created.get(flow, {}).pop(job, None)
        if created is not None and started_at is not None:
            self.schedule_latency.labels(stage=CREATE_TO_RUNNING).observe(
                max(0.0, (started_at - created).total_seconds())
            )
        running = self._running.get(flow)
        if running is not None and job in running:
            running.discard(job)
            self.nodes_running.dec()

    def forget(self, flow: FlowId) -> None:
        """The Flow finished or is gone: drop what is kept about its Jobs."""
        self._created.pop(flow, None)
        self.nodes_running.dec(len(self._running.pop(flow, ())))

    # -- per written status transition -----------------------------------------------------

    def status_written(
        self, flow: FlowId, old: FlowStatus, new: FlowStatus, attempts: Iterable[Attempt]
    ) -> None:
        """Count what the status write just made true: finished attempts, node and flow ends.

        Called only after the write succeeded, with the attempts that pass observed (all of
        them were running in ``old``), so a conflict-and-retry never counts twice.
        """
        scope = self._scope(flow)
        for attempt in attempts:
            seconds = (attempt.finished_at - attempt.started_at).total_seconds()
            result = "succeeded" if attempt.succeeded else "failed"
            self.node_duration.labels(**scope, result=result).observe(max(0.0, seconds))
        for node, ns in new.nodes.items():
            before = old.nodes.get(node)
            if ns.phase in TERMINAL_NODE_PHASES and (before is None or before.phase != ns.phase):
                self.nodes.labels(**scope, result=_result(ns.phase)).inc()
        if new.phase in TERMINAL_FLOW_PHASES and old.phase != new.phase:
            took = None
            if new.started_at is not None and new.finished_at is not None:
                took = (new.finished_at - new.started_at).total_seconds()
            self.flow_ended(flow, new.phase, took)

    def flow_ended(self, flow: FlowId, phase: str, seconds: float | None) -> None:
        """One Flow reached ``phase`` (also for Flows failed before they ran: invalid spec)."""
        scope = self._scope(flow)
        self.flows.labels(**scope, result=_result(phase)).inc()
        if seconds is not None:
            self.flow_duration.labels(**scope, result=_result(phase)).observe(max(0.0, seconds))


_current: Metrics | None = None


def configure(config: MetricsConfig, registry: CollectorRegistry = REGISTRY) -> Metrics:
    """Install the process-wide metrics (once, before serving; later calls replace it)."""
    global _current  # noqa: PLW0603 - one exporter per process, set at startup
    if _current is not None and _current.registry is registry:
        for collector in _collectors(_current):
            registry.unregister(collector)
    _current = Metrics(config, registry)
    return _current


def current() -> Metrics:
    global _current  # noqa: PLW0603
    if _current is None:
        _current = Metrics()
    return _current


def _collectors(m: Metrics) -> Sequence[Collector]:
    return (m.node_duration, m.schedule_latency, m.flow_duration, m.flows, m.nodes,
            m.nodes_running, m.build_info, m.leader)  # fmt: skip


def observe_dependency_to_create(seconds: float) -> None:
    current().dependency_to_create(seconds)


def join_satisfied_seen(
    sources: Iterable[str],
    join: str,
    seen: Mapping[str, float],
    fallback: Mapping[str, str] | None = None,
) -> float | None:
    """When the event that satisfied a node's join was received: the start of that node's
    ``dependency_to_create`` sample.

    ``seen`` maps node id -> receipt time (the event loop's clock, in the watch handler) of
    the event showing that node's success, for the successes the current pass observed;
    ``sources`` are the node's predecessors. A source's fallback counts for it (its success
    resolves the source's edges). An ``all`` join is satisfied by the last of them to
    arrive, an ``any`` join by the first. None when no success of this pass satisfied it:
    a root, a retry, a node a parallelism slot released, a built-in or subflow predecessor
    (no watch event to time from) — such starts are not dependency transitions, and a
    sample borrowed from another node's success would misreport them.
    """
    fallback = fallback or {}
    times = []
    for source in sources:
        for node in (source, fallback.get(source)):
            if node is not None and node in seen:
                times.append(seen[node])
    if not times:
        return None
    return min(times) if join == "any" else max(times)


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Expose /metrics on ``port`` (a daemon thread owned by prometheus_client)."""
    # The *_created series double the output and no dashboard here reads them.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    start_http_server(port, addr=addr)
