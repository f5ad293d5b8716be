"""Reading a node attempt's fate from its Job and pod: times, outputs, failures, limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime
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
