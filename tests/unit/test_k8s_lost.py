"""The reconcile's handling of lost objects and node timeouts (reconcile/lost.py), without a
cluster: the timeout decision per pass, the messages, and which Job produced an output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flowcraft.drivers.kubernetes import builders, names, outcomes
from flowcraft.drivers.kubernetes.cache import FlowKey
from flowcraft.drivers.kubernetes.reconcile.lost import (
    _producer,
    check_timeout,
    gone_message,
    job_gone,
    lost_output_message,
)
from flowcraft.drivers.kubernetes.reconcile.state import FlowState, Pass
from flowcraft.engine import Engine
from flowcraft.model import parse_flow

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
REF = builders.FlowRef(name="f", namespace="ns", uid="uid-1")


def _pass(timeout: int | None) -> Pass:
    config: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    flow = parse_flow(
        {
            "apiVersion": "flowcraft.io/v1alpha1",
            "kind": "Flow",
            "metadata": {"name": "f"},
            "spec": {
                "nodes": [{"id": "a", "uses": "t", "config": config}],
                "functions": {"t": {"script": "def run(ctx): return 1"}},
            },
        }
    )
    return Pass(FlowKey("ns", "f"), REF, FlowState(), flow.spec, Engine(flow.spec))


def test_no_timeout_no_decision() -> None:
    ctx = _pass(None)
    assert check_timeout(ctx, ("a", 1, 0), outcomes.Started(T0), T0 + timedelta(hours=1)) is None
    assert ctx.deadlines == []


def test_before_the_deadline_the_pass_wakes_at_it_after_it_the_attempt_times_out() -> None:
    ctx = _pass(1000)
    before = datetime.now(UTC)
    started = outcomes.Started(before.replace(microsecond=0))  # startedAt: whole seconds
    assert check_timeout(ctx, ("a", 1, 0), started, before) is None
    (deadline,) = ctx.deadlines
    # One second after the earlier of: when this process saw it run, startedAt + 1 s.
    seen = ctx.state.running_seen[("a", 1, 0)]
    assert seen >= before
    assert deadline == min(seen, started.at + timedelta(seconds=1)) + timedelta(seconds=1)
    assert check_timeout(ctx, ("a", 1, 0), started, deadline - timedelta(milliseconds=1)) is None
    late = check_timeout(ctx, ("a", 1, 0), started, deadline)
    assert isinstance(late, outcomes.Failed)
    assert late.timed_out
    assert "timed out after 1000 ms" in late.message
    # Decided once: a later pass (the status write was lost) reports the same failure.
    again = check_timeout(ctx, ("a", 1, 0), None, deadline + timedelta(seconds=9))
    assert again is not None
    assert again.at == deadline


def test_a_quick_success_or_a_not_yet_running_attempt_is_not_timed() -> None:
    ctx = _pass(1000)
    done = outcomes.Succeeded(T0, T0 + timedelta(seconds=1), 1, None)
    assert check_timeout(ctx, ("a", 1, 0), done, T0 + timedelta(seconds=9)) is None
    assert check_timeout(ctx, ("a", 1, 0), None, T0 + timedelta(seconds=9)) is None


def test_messages_name_the_object() -> None:
    state = FlowState()
    assert lost_output_message(state, "a") is None
    state.lost_outputs["a"] = "f-a-1-out"
    assert "output ConfigMap f-a-1-out" in str(lost_output_message(state, "a"))
    assert "Job f-a-1 was deleted while attempt 1 was running" in job_gone("f-a-1", 1)


def _job(node: str, attempt: int, **ann: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{node}-{attempt}",
            "annotations": {builders.ANN_NODE: node, builders.ANN_ATTEMPT: str(attempt), **ann},
        }
    }


def test_the_producer_of_an_output_is_the_attempt_whose_configmap_name_it_is() -> None:
    jobs = [_job("a", 1), _job("a", 2), _job("b", 1), _job("a", 2, **{builders.ANN_ITEM: "0"})]
    name = names.output_configmap_name("f", "uid-1", "a", 2, 0)
    found = _producer(REF, jobs, name)
    assert found is not None
    assert found[1:] == ("a", 2, 0)
    assert found[0] is jobs[1]
    assert _producer(REF, jobs, "nothing") is None


def test_a_container_reported_only_once_ended_still_fails_if_it_provably_ran_too_long() -> None:
    ctx = _pass(1000)
    # startedAt/finishedAt are whole seconds: 2 s apart means it ran more than 1 s.
    long = outcomes.Succeeded(T0, T0 + timedelta(seconds=2), 1, None)
    failed = check_timeout(ctx, ("a", 1, 0), long, T0 + timedelta(seconds=3))
    assert isinstance(failed, outcomes.Failed)
    assert failed.timed_out
    # 1 s apart: it may have run 0.1 s; a success.
    short = outcomes.Succeeded(T0, T0 + timedelta(seconds=1), 1, None)
    assert check_timeout(_pass(1000), ("a", 1, 0), short, T0 + timedelta(seconds=3)) is None


def test_a_job_the_operator_deleted_is_reported_with_the_reason_it_was_deleted_for() -> None:
    ctx = _pass(None)
    assert gone_message(ctx, "f-a-1", 1) == job_gone("f-a-1", 1)  # someone else deleted it
    ctx.state.gone_jobs["f-a-1"] = None  # a GET found it gone
    assert gone_message(ctx, "f-a-1", 1) == job_gone("f-a-1", 1)
    # The operator deleted it (no pod, an image that cannot be pulled): a pass whose status
    # write did not land reports the same reason, not "deleted".
    why = outcomes.no_pod_message("f-a-1", timedelta(seconds=300))
    ctx.state.gone_jobs["f-a-1"] = why
    assert gone_message(ctx, "f-a-1", 1) == why
