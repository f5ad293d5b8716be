"""Prometheus metrics of the Kubernetes driver.

Why: DESIGN.md asks for latency to be measured, not assumed. The one histogram here times the
operator's own share of the critical path: from the moment the event that showed a dependency
succeeded arrived, to the moment the create request for the next Job was sent. Labels stay
bounded (a fixed ``stage``), never per flow or per run.
"""

from __future__ import annotations

from prometheus_client import Histogram, start_http_server

# Fine below 100 ms: the target is tens of milliseconds and the report quotes quantiles.
_FINE = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1)
_COARSE = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

NODE_SCHEDULE_LATENCY = Histogram(
    "flowcraft_node_schedule_latency_seconds",
    "Time from observing a dependency's success to sending the next node's Job create request.",
    labelnames=("stage",),
    buckets=_FINE + _COARSE,
)

DEPENDENCY_TO_CREATE = "dependency_to_create"


def observe_dependency_to_create(seconds: float) -> None:
    NODE_SCHEDULE_LATENCY.labels(stage=DEPENDENCY_TO_CREATE).observe(max(0.0, seconds))


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Expose /metrics on ``port`` (a daemon thread owned by prometheus_client)."""
    start_http_server(port, addr=addr)
