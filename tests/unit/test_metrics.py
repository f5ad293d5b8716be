"""The operator's metrics: names, labels, buckets, and each fact counted exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from flowcraft import __version__
from flowcraft.drivers.kubernetes.metrics import (
    Attempt,
    FlowId,
    Metrics,
    MetricsConfig,
    join_satisfied_seen,
    parse_buckets,
)
from flowcraft.model import FlowStatus, NodeStatus

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FLOW = FlowId("team-a", "parallel")


def _metrics(**config: object) -> tuple[Metrics, CollectorRegistry]:
    registry = CollectorRegistry()
    return Metrics(MetricsConfig(**config), registry), registry  # type: ignore[arg-type]


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _status(phase: str, nodes: dict[str, str], end: float | None = None) -> FlowStatus:
    return FlowStatus(
        phase=phase,  # type: ignore[arg-type]
        started_at=T0,
        finished_at=_at(end) if end is not None else None,
        nodes={n: NodeStatus(phase=p) for n, p in nodes.items()},  # type: ignore[arg-type]
    )


def test_every_family_is_exported_with_base_units_and_build_info() -> None:
    _, registry = _metrics()
    text = generate_latest(registry).decode()
    for name in (
        "flowcraft_node_duration_seconds",
        "flowcraft_node_schedule_latency_seconds",
        "flowcraft_flow_duration_seconds",
        "flowcraft_flows_total",
        "flowcraft_nodes_total",
        "flowcraft_nodes_running",
        "flowcraft_build_info",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert _value(registry, "flowcraft_build_info", version=__version__) == 1.0


def test_finished_attempts_are_timed_and_node_and_flow_ends_counted_once() -> None:
    m, registry = _metrics()
    old = _status("Running", {"a": "Running", "b": "Running"})
    new = _status("Failed", {"a": "Succeeded", "b": "Failed"}, end=9.0)
    attempts = [Attempt("a", _at(1), _at(3), True), Attempt("b", _at(1), _at(2), False)]
    m.status_written(FLOW, old, new, attempts)
    m.status_written(FLOW, new, new, [])  # a later pass with no transition adds nothing

    ns = {"namespace": "team-a"}
    assert _value(registry, "flowcraft_node_duration_seconds_count", **ns, result="succeeded") == 1
    assert _value(registry, "flowcraft_node_duration_seconds_sum", **ns, result="succeeded") == 2.0
    assert _value(registry, "flowcraft_node_duration_seconds_count", **ns, result="failed") == 1
    assert _value(registry, "flowcraft_nodes_total", **ns, result="succeeded") == 1
    assert _value(registry, "flowcraft_nodes_total", **ns, result="failed") == 1
    assert _value(registry, "flowcraft_flows_total", **ns, result="failed") == 1
    assert _value(registry, "flowcraft_flow_duration_seconds_sum", **ns, result="failed") == 9.0


def test_retrying_is_not_an_end_but_each_attempt_is_timed() -> None:
    m, registry = _metrics()
    old = _status("Running", {"a": "Running"})
    new = _status("Running", {"a": "Retrying"})
    m.status_written(FLOW, old, new, [Attempt("a", _at(0), _at(1), False)])
    assert _value(registry, "flowcraft_nodes_total", namespace="team-a", result="failed") is None
    assert (
        _value(
            registry, "flowcraft_node_duration_seconds_count", namespace="team-a", result="failed"
        )
        == 1
    )


def test_skipped_and_cancelled_nodes_count_without_a_duration() -> None:
    m, registry = _metrics()
    old = _status("Running", {"a": "Pending", "b": "Running"})
    new = _status("Cancelled", {"a": "Skipped", "b": "Cancelled"}, end=1.0)
    m.status_written(FLOW, old, new, [])
    assert _value(registry, "flowcraft_nodes_total", namespace="team-a", result="skipped") == 1
    assert _value(registry, "flowcraft_nodes_total", namespace="team-a", result="cancelled") == 1
    assert _value(registry, "flowcraft_flows_total", namespace="team-a", result="cancelled") == 1


def test_the_flow_label_is_opt_in() -> None:
    m, registry = _metrics()
    m.status_written(FLOW, _status("Running", {}), _status("Succeeded", {}, end=1.0), [])
    assert _value(registry, "flowcraft_flows_total", namespace="team-a", result="succeeded") == 1
    assert "flow=" not in generate_latest(registry).decode()

    m, registry = _metrics(flow_label=True)
    m.status_written(FLOW, _status("Running", {}), _status("Succeeded", {}, end=1.0), [])
    labels = {"namespace": "team-a", "flow": "parallel", "result": "succeeded"}
    assert _value(registry, "flowcraft_flows_total", **labels) == 1


def test_create_to_running_and_the_running_gauge_count_each_job_once() -> None:
    m, registry = _metrics()
    m.job_created(FLOW, "parallel-a-1", _at(0))
    m.job_created(FLOW, "parallel-b-1", _at(0))
    m.pod_running(FLOW, "parallel-a-1", _at(0.5))
    m.pod_running(FLOW, "parallel-a-1", _at(0.9))  # seen again on the next pass
    stage = {"stage": "create_to_running"}
    assert _value(registry, "flowcraft_node_schedule_latency_seconds_count", **stage) == 1
    assert _value(registry, "flowcraft_node_schedule_latency_seconds_sum", **stage) == 0.5
    assert _value(registry, "flowcraft_nodes_running") == 1
    # b was never seen running: its pod's own start time stands in.
    m.pod_finished(FLOW, "parallel-b-1", _at(0.25))
    m.pod_finished(FLOW, "parallel-a-1", _at(0.4))
    assert _value(registry, "flowcraft_node_schedule_latency_seconds_count", **stage) == 2
    assert _value(registry, "flowcraft_node_schedule_latency_seconds_sum", **stage) == 0.75
    assert _value(registry, "flowcraft_nodes_running") == 0


def test_forgetting_a_flow_clears_its_running_pods() -> None:
    m, registry = _metrics()
    m.pod_running(FLOW, "j1", _at(0))
    m.pod_running(FlowId("other", "x"), "j2", _at(0))
    m.forget(FLOW)
    assert _value(registry, "flowcraft_nodes_running") == 1


def test_dependency_to_create_keeps_its_stage_and_never_goes_negative() -> None:
    m, registry = _metrics()
    m.dependency_to_create(-0.001)
    stage = {"stage": "dependency_to_create"}
    assert _value(registry, "flowcraft_node_schedule_latency_seconds_count", **stage) == 1
    assert _value(registry, "flowcraft_node_schedule_latency_seconds_sum", **stage) == 0.0


def test_a_sample_starts_at_the_success_that_satisfied_that_nodes_join() -> None:
    # One pass saw a succeed at t=1.0 and b at t=3.0; x depends on a only, y on a and b.
    seen = {"a": 1.0, "b": 3.0}
    # x was satisfied by a's event, not by the pass's latest success (b): 1.0, not 3.0.
    assert join_satisfied_seen(["a"], "all", seen) == 1.0
    # An all-join is satisfied by the last of its dependencies, an any-join by the first.
    assert join_satisfied_seen(["a", "b"], "all", seen) == 3.0
    assert join_satisfied_seen(["a", "b"], "any", seen) == 1.0
    # A dependency that succeeded in an earlier pass does not count (c: not in this pass).
    assert join_satisfied_seen(["a", "c"], "all", seen) == 1.0


def test_a_fallbacks_success_satisfies_its_owners_dependents() -> None:
    # publish depends on fetch; fetch failed and its fallback use-cache succeeded at t=2.
    seen = {"use-cache": 2.0}
    assert join_satisfied_seen(["fetch"], "all", seen, {"fetch": "use-cache"}) == 2.0


def test_starts_no_success_of_the_pass_satisfied_have_no_sample() -> None:
    # A root, a retry, a node released by a parallelism slot when an unrelated node ended.
    assert join_satisfied_seen([], "all", {"other": 1.0}) is None
    assert join_satisfied_seen(["a"], "all", {"other": 1.0}) is None


def test_configured_buckets_are_used() -> None:
    m, registry = _metrics(node_duration_buckets=(1.0, 10.0))
    m.status_written(
        FLOW, _status("Running", {"a": "Running"}), _status("Running", {"a": "Succeeded"}),
        [Attempt("a", _at(0), _at(5), True)],
    )  # fmt: skip
    labels = {"namespace": "team-a", "result": "succeeded"}
    assert _value(registry, "flowcraft_node_duration_seconds_bucket", **labels, le="1.0") == 0
    assert _value(registry, "flowcraft_node_duration_seconds_bucket", **labels, le="10.0") == 1
    assert _value(registry, "flowcraft_node_duration_seconds_bucket", **labels, le="2.5") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.5,1,2.5", (0.5, 1.0, 2.5)), (" 1 , 60 ", (1.0, 60.0)), ("10", (10.0,))],
)
def test_parse_buckets(text: str, expected: tuple[float, ...]) -> None:
    assert parse_buckets(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "at least one"), ("1,x", "numbers"), ("0,1", "positive"), ("2,1", "increasing"),
     ("1,1", "increasing")],
)  # fmt: skip
def test_parse_buckets_rejects_bad_bounds(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_buckets(text)


def test_a_flow_failed_before_it_ran_counts_without_a_duration() -> None:
    m, registry = _metrics()
    m.flow_ended(FLOW, "Failed", None)
    assert _value(registry, "flowcraft_flows_total", namespace="team-a", result="failed") == 1
    assert (
        _value(
            registry, "flowcraft_flow_duration_seconds_count", namespace="team-a", result="failed"
        )
        is None
    )
