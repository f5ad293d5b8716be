"""The operator's own timer for node timeouts (drivers/kubernetes/timeouts.py), and what a
Job whose pod vanished means (outcomes.pod_gone): pure functions, checked exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flowcraft.drivers.kubernetes import outcomes, timeouts

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_no_timeout_or_no_known_start_means_no_deadline() -> None:
    assert timeouts.deadline(None, T0, T0) is None
    assert timeouts.deadline(1000, None, None) is None


def test_the_deadline_counts_from_when_the_operator_saw_the_container_run() -> None:
    seen = T0 + timedelta(milliseconds=300)
    # startedAt (whole seconds) says T0: the true start is before T0 + 1 s, after... unknown.
    assert timeouts.deadline(1000, seen, T0) == seen + timedelta(seconds=1)


def test_after_a_restart_the_kubelets_whole_second_start_is_rounded_up() -> None:
    """startedAt is truncated to the second: the attempt may have started up to 1 s later, so
    the deadline never comes before it has had its whole timeout."""
    assert timeouts.deadline(500, None, T0) == T0 + timedelta(milliseconds=1500)


def test_a_late_observation_does_not_extend_the_deadline() -> None:
    late = T0 + timedelta(seconds=30)  # the operator was down when the container started
    assert timeouts.deadline(1000, late, T0) == T0 + timedelta(seconds=2)


def test_backstop_is_the_whole_second_timeout_plus_the_slack() -> None:
    assert timeouts.backstop_seconds(0.5) == 1 + timeouts.BACKSTOP_SECONDS
    assert timeouts.backstop_seconds(2.0) == 2 + timeouts.BACKSTOP_SECONDS
    assert "1000 ms" in timeouts.message(1000)


def _job(*conditions: str) -> dict[str, object]:
    return {
        "metadata": {"name": "f-a-1"},
        "status": {
            "startTime": "2026-01-01T12:00:00Z",
            "conditions": [
                {"type": c, "status": "True", "lastTransitionTime": "2026-01-01T12:00:05Z"}
                for c in conditions
            ],
        },
    }


def test_a_completed_job_without_a_pod_fails_the_attempt_naming_the_job() -> None:
    failed = outcomes.pod_gone(_job("Complete"), T0)
    assert isinstance(failed, outcomes.Failed)
    assert "Job f-a-1 completed but its pod is gone" in failed.message
    assert failed.at == T0 + timedelta(seconds=5)
    assert not failed.timed_out


def test_a_running_or_failed_job_without_a_pod_is_left_to_its_controller() -> None:
    assert outcomes.pod_gone(_job(), T0) is None
    assert outcomes.pod_gone(_job("Failed"), T0) is None
