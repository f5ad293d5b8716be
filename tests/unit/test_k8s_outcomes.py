"""Reading a node attempt's fate from its Job and pod: times, outputs, failures, limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flowcraft.drivers.kubernetes import outcomes

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _pod(state: dict[str, Any], phase: str = "Running") -> dict[str, Any]:
    return {"status": {"phase": phase, "containerStatuses": [{"name": "node", "state": state}]}}


def _term(code: int, message: str, reason: str = "Completed") -> dict[str, Any]:
    return {
        "terminated": {
            "exitCode": code,
            "reason": reason,
            "message": message,
            "startedAt": "2026-01-01T11:59:58Z",
            "finishedAt": "2026-01-01T11:59:59Z",
        }
    }


def test_nothing_yet() -> None:
    assert outcomes.observe({"status": {}}, None, NOW) is None
    assert outcomes.observe(None, _pod({"waiting": {"reason": "ContainerCreating"}}), NOW) is None


def test_running_pod_gives_its_real_start() -> None:
    out = outcomes.observe(None, _pod({"running": {"startedAt": "2026-01-01T11:00:00Z"}}), NOW)
    assert out == outcomes.Started(datetime(2026, 1, 1, 11, 0, tzinfo=UTC))


def test_success_reads_the_envelope_and_pod_times() -> None:
    msg = json.dumps({"output": {"data": "x"}, "action": "big"})
    out = outcomes.observe(None, _pod(_term(0, msg), "Succeeded"), NOW)
    assert isinstance(out, outcomes.Succeeded)
    assert out.output == {"data": "x"}
    assert out.action == "big"
    assert out.started_at == datetime(2026, 1, 1, 11, 59, 58, tzinfo=UTC)
    assert out.at == datetime(2026, 1, 1, 11, 59, 59, tzinfo=UTC)


def test_container_image_output_plain_json_and_text() -> None:
    out = outcomes.observe(None, _pod(_term(0, '{"a": 1}'), "Succeeded"), NOW)
    assert isinstance(out, outcomes.Succeeded)
    assert out.output == {"a": 1}
    out = outcomes.observe(None, _pod(_term(0, "hello\n"), "Succeeded"), NOW)
    assert isinstance(out, outcomes.Succeeded)
    assert out.output == "hello"


def test_failure_names_exit_code_reason_and_runtime_error() -> None:
    msg = json.dumps({"error": "RuntimeError: boom", "traceback": "line 3"})
    out = outcomes.observe({"status": {}}, _pod(_term(1, msg, "Error"), "Failed"), NOW)
    assert isinstance(out, outcomes.Failed)
    assert out.message.startswith("exit code 1 (Error): RuntimeError: boom")
    assert "line 3" in out.message
    assert not out.timed_out
    assert not out.stuck


def test_failure_without_envelope_keeps_the_tail_of_the_message() -> None:
    out = outcomes.observe(None, _pod(_term(137, "x" * 1000 + "END", "OOMKilled"), "Failed"), NOW)
    assert isinstance(out, outcomes.Failed)
    assert "OOMKilled" in out.message
    assert out.message.endswith("END")
    assert len(out.message) < 600


def test_an_error_envelope_fails_the_node_even_with_exit_zero() -> None:
    out = outcomes.observe(None, _pod(_term(0, '{"error": "E: x"}'), "Succeeded"), NOW)
    assert isinstance(out, outcomes.Failed)


def test_truncated_output_fails_naming_the_limit() -> None:
    big = '{"output": "' + "y" * 5000
    out = outcomes.observe(None, _pod(_term(0, big[:4096]), "Succeeded"), NOW)
    assert isinstance(out, outcomes.Failed)
    assert "4096-byte termination-message limit" in out.message


def test_job_deadline_is_a_timeout() -> None:
    job = {
        "status": {
            "startTime": "2026-01-01T11:59:00Z",
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "DeadlineExceeded",
                    "message": "Job was active longer than specified deadline",
                    "lastTransitionTime": "2026-01-01T11:59:30Z",
                }
            ],
        }
    }
    running = _pod({"running": {"startedAt": "2026-01-01T11:59:01Z"}})
    out = outcomes.observe(job, running, NOW)
    assert isinstance(out, outcomes.Failed)
    assert out.timed_out
    assert "DeadlineExceeded" in out.message
    assert out.at == datetime(2026, 1, 1, 11, 59, 30, tzinfo=UTC)


def test_an_image_that_cannot_be_pulled_fails_the_attempt() -> None:
    waiting = {"waiting": {"reason": "ErrImageNeverPull", "message": "image not present"}}
    out = outcomes.observe({"status": {}}, _pod(waiting, "Pending"), NOW)
    assert isinstance(out, outcomes.Failed)
    assert "ErrImageNeverPull" in out.message
    assert "image not present" in out.message
    assert out.stuck


def test_ordinary_waiting_is_not_a_failure() -> None:
    waiting = {"waiting": {"reason": "ContainerCreating"}}
    assert outcomes.observe({"status": {}}, _pod(waiting, "Pending"), NOW) is None


# ---------------------------------------------------------------- a Job that never gets a pod

LIMIT = timedelta(seconds=300)
CREATED = datetime(2026, 1, 1, 11, 0, 0, tzinfo=UTC)


def _bare_job(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "f-a-1", "creationTimestamp": "2026-01-01T11:00:00Z"},
        "spec": {},
        "status": status,
    }


def test_a_job_without_a_pod_fails_once_the_limit_has_passed_since_its_creation() -> None:
    job = _bare_job()
    assert outcomes.no_pod(job, False, CREATED + LIMIT - timedelta(seconds=1), LIMIT) == (
        CREATED + LIMIT
    )
    failed = outcomes.no_pod(job, False, CREATED + LIMIT, LIMIT)
    assert isinstance(failed, outcomes.Failed)
    assert failed.stuck  # the caller deletes the Job
    assert not failed.timed_out
    assert failed.started_at is None
    assert failed.at == CREATED + LIMIT
    assert "Job f-a-1 got no pod within 300 s" in failed.message
    assert "`kubectl describe job f-a-1` shows why" in failed.message
    assert "ResourceQuota" in failed.message
    assert "admission webhook" in failed.message


def test_a_job_synced_but_refused_its_pod_counts_from_its_start_time() -> None:
    # A ResourceQuota: the Job controller started the Job (startTime) but no pod exists.
    job = _bare_job(startTime="2026-01-01T11:00:02Z")
    assert outcomes.no_pod(job, False, CREATED + LIMIT, LIMIT) == CREATED + LIMIT + timedelta(
        seconds=2
    )
    assert isinstance(
        outcomes.no_pod(job, False, CREATED + LIMIT + timedelta(seconds=2), LIMIT),
        outcomes.Failed,
    )


LATE = CREATED + timedelta(days=1)


@pytest.mark.parametrize(
    "status",
    [
        {"active": 1},
        {"ready": 1},
        {"terminating": 1},
        {"conditions": [{"type": "Complete", "status": "True"}]},
        {"conditions": [{"type": "Failed", "status": "True"}]},
        {"conditions": [{"type": "FailureTarget", "status": "True"}]},
        {"conditions": [{"type": "Suspended", "status": "True"}]},
    ],
)
def test_a_job_whose_status_shows_a_live_pod_or_an_end_or_a_suspension_is_not_judged(
    status: dict[str, Any],
) -> None:
    assert outcomes.no_pod(_bare_job(**status), False, LATE, LIMIT) is None


def test_a_pod_seen_a_suspended_or_a_deleted_job_is_not_judged() -> None:
    assert outcomes.no_pod(_bare_job(), True, LATE, LIMIT) is None
    suspended = _bare_job()
    suspended["spec"]["suspend"] = True
    assert outcomes.no_pod(suspended, False, LATE, LIMIT) is None
    deleting = _bare_job()
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T11:00:05Z"
    assert outcomes.no_pod(deleting, False, LATE, LIMIT) is None
    assert outcomes.no_pod({"metadata": {"name": "x"}}, False, LATE, LIMIT) is None  # no time


def test_a_resumed_job_gets_the_whole_limit_from_its_resumption() -> None:
    resumed_at = CREATED + timedelta(hours=2)
    job = _bare_job(
        conditions=[
            {
                "type": "Suspended",
                "status": "False",
                "lastTransitionTime": resumed_at.isoformat().replace("+00:00", "Z"),
            }
        ]
    )
    assert outcomes.no_pod(job, False, resumed_at + timedelta(seconds=1), LIMIT) == (
        resumed_at + LIMIT
    )
    assert isinstance(outcomes.no_pod(job, False, resumed_at + LIMIT, LIMIT), outcomes.Failed)
    assert "within 5 s" in outcomes.no_pod_message("j", timedelta(seconds=5))
    assert "within 0.5 s" in outcomes.no_pod_message("j", timedelta(seconds=0.5))


@pytest.mark.parametrize(
    "status",
    [
        {"failed": 1},
        {"succeeded": 1},
        {"uncountedTerminatedPods": {"failed": ["u1"]}},
    ],
)
def test_a_job_counting_an_ended_pod_that_is_gone_and_never_ended_fails_after_the_limit(
    status: dict[str, Any],
) -> None:
    """A chaos run's second stuck form: the pod create met the API-server crash, the Job
    controller's status writes met Conflicts, and the Job kept ``failed: 1``, no pod and no
    condition for good. Counted from its creation like a Job that never got a pod."""
    job = _bare_job(**status)
    assert outcomes.no_pod(job, False, CREATED + LIMIT - timedelta(seconds=1), LIMIT) == (
        CREATED + LIMIT
    )
    failed = outcomes.no_pod(job, False, CREATED + LIMIT, LIMIT)
    assert isinstance(failed, outcomes.Failed)
    assert failed.stuck
    assert failed.message.startswith("Job f-a-1 counts a pod that ended, but no pod of it exists")
    assert "within 300 s" in failed.message
    assert outcomes.no_pod(job, True, LATE, LIMIT) is None  # its pod is there: read it
