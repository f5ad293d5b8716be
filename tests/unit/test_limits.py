"""Upper bounds: retry settings and durations (model), backoff arithmetic (engine), status size.

Each bound exists because something broke without it: a backoff past the year 9999 crashed the
engine at attempt 39, and an unbounded errors list or message could push a Flow's status past
what the API server accepts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flowcraft.engine import Engine, NodeFailed
from flowcraft.model import FlowSpec, FlowStatus, FlowValidationError, parse_flow
from flowcraft.model.bounds import (
    MAX_MESSAGE_CHARS,
    MAX_STATUS_ERRORS,
    bound_message,
    node_message_limit,
)
from flowcraft.model.flow import (
    MAX_BACKOFF_MS,
    MAX_DEADLINE_SECONDS,
    MAX_RETRIES,
    MAX_RETRY_DELAY_MS,
    MAX_TIMEOUT_MS,
    NodeConfig,
    NodeStatus,
)

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def ms(value: float) -> datetime:
    return T0 + timedelta(milliseconds=value)


def node(node_id: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "uses": "task", **({"config": config} if config else {})}


def make_spec(nodes: list[dict[str, Any]], **spec: Any) -> FlowSpec:
    return parse_flow(
        {
            "apiVersion": "flowcraft.io/v1alpha1",
            "kind": "Flow",
            "metadata": {"name": "t"},
            "spec": {
                "nodes": nodes,
                "functions": {"task": {"script": "def run(ctx): return 1"}},
                **spec,
            },
        }
    ).spec


class Run:
    """A minimal driver: feeds failures to the engine, keeps the status."""

    def __init__(self, spec: FlowSpec) -> None:
        self.engine = Engine(spec)
        self.step = self.engine.start(T0)

    @property
    def status(self) -> FlowStatus:
        return self.step.status

    def attempt(self, node_id: str) -> int:
        return self.status.nodes[node_id].attempts

    def advance(self, *events: NodeFailed, now: datetime = T0) -> None:
        self.step = self.engine.advance(self.status, list(events), now, {})

    def fail(self, node_id: str, message: str, now: datetime = T0) -> None:
        self.advance(NodeFailed(node_id, self.attempt(node_id), now, message), now=now)


def test_backoff_is_capped_and_never_overflows() -> None:
    config = NodeConfig(max_retries=MAX_RETRIES, retry_delay=1000)
    assert config.retry_delay_ms(1) == 1000
    assert config.retry_delay_ms(3) == 4000
    assert config.retry_delay_ms(39) == MAX_BACKOFF_MS
    assert config.retry_delay_ms(10**9) == MAX_BACKOFF_MS
    assert NodeConfig(retry_delay=0).retry_delay_ms(10**9) == 0


def test_engine_survives_forty_failed_attempts_with_a_one_second_delay() -> None:
    # Before the cap: timedelta(1000 * 2**38 ms) added to now overflowed at attempt 39.
    run = Run(make_spec([node("a", maxRetries=41, retryDelay=1000)]))
    now = ms(0)
    for attempt in range(1, 41):
        assert run.attempt("a") == attempt
        run.fail("a", f"failure {attempt}", now=now)
        retry_at = run.status.nodes["a"].retry_at
        assert retry_at is not None
        assert (retry_at - now).total_seconds() * 1000 <= MAX_BACKOFF_MS
        now = retry_at
        run.advance(now=now)
    run.fail("a", "last", now=now)
    assert run.status.phase == "Failed"


def flow(config: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": "t"},
        "spec": {
            "nodes": [{"id": "a", "uses": "t", "config": config or {}}],
            "functions": {"t": {"script": "def run(ctx): return 1"}},
            **spec,
        },
    }


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"maxRetries": MAX_RETRIES + 1}, "maxRetries"),
        ({"retryDelay": MAX_RETRY_DELAY_MS + 1}, "retryDelay"),
        ({"timeout": MAX_TIMEOUT_MS + 1}, "timeout"),
    ],
)
def test_node_config_caps_are_rejected_with_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(FlowValidationError, match=field):
        parse_flow(flow(config))
    at_cap = {key: value - 1 for key, value in config.items()}
    parse_flow(flow(at_cap))


def test_active_deadline_is_capped() -> None:
    with pytest.raises(FlowValidationError, match="activeDeadlineSeconds"):
        parse_flow(flow(activeDeadlineSeconds=MAX_DEADLINE_SECONDS + 1))


def test_errors_and_messages_are_bounded_whatever_fails() -> None:
    # 200 independent nodes fail with 10,000-character messages (failFast off: all of them
    # run): the status keeps 10 error entries of at most 2,048 characters, and says how many.
    ids = [f"n{i}" for i in range(200)]
    run = Run(make_spec([node(i) for i in ids], failFast=False))
    for node_id in ids:
        run.fail(node_id, "x" * 10_000)
    status = run.status
    assert status.phase == "Failed"
    assert len(status.errors) == MAX_STATUS_ERRORS
    assert status.errors[-1] == "... and 191 more failure(s)"
    assert all(len(e) <= MAX_MESSAGE_CHARS for e in status.errors)
    assert status.message is not None
    assert status.message.startswith("200 failure(s): ")
    assert len(status.message) <= MAX_MESSAGE_CHARS
    for ns in status.nodes.values():
        assert ns.message is not None
        assert len(ns.message) <= MAX_MESSAGE_CHARS
        assert "characters cut]" in ns.message


def test_bound_message_keeps_short_text_and_cuts_long_text_to_the_limit() -> None:
    assert bound_message("short") == "short"
    text = "start " + "y" * 5000 + " innermost cause"
    cut = bound_message(text, limit=100)
    assert len(cut) <= 100
    assert cut.startswith("start yyy")
    assert cut.endswith("y innermost cause")
    kept = len(cut) - len(cut[cut.index(" ... [") : cut.index("] ... ") + 6])
    assert f" ... [{len(text) - kept} characters cut] ... " in cut


def test_the_status_of_an_invalid_flow_is_bounded_too() -> None:
    from flowcraft.drivers.kubernetes import status as flow_status  # noqa: PLC0415

    problems = "; ".join(f"spec.nodes[{i}].uses: unknown function 'f{i}'" for i in range(5000))
    out = flow_status.invalid_status({}, problems, datetime(2026, 1, 1, tzinfo=UTC))
    assert len(out["message"]) <= MAX_MESSAGE_CHARS
    assert out["errors"] == [out["message"]]
    assert "characters cut]" in out["message"]


def worst_status_bytes(nodes: int, id_length: int) -> int:
    """The JSON size of a status with every field at its bound (messages at the node share,
    all 3,000 edges taken, ten full error entries, a full flow message)."""
    at = datetime(2026, 11, 29, 19, 0, 0, 123456, tzinfo=UTC)
    ns = NodeStatus(
        phase="Retrying",
        attempts=MAX_RETRIES,
        started_at=at,
        finished_at=at,
        retry_at=at,
        wake_at=at,
        message="m" * node_message_limit(nodes),
        reason="DeadlineExceeded",
        output_ref="o" * 63,
        iteration=100,
        taken_edges=[-3000] * (3000 // nodes),
        seq=100_000,
        writes=1000,
        input_seq=100_000,
    )
    status = FlowStatus(
        phase="Failed",
        started_at=at,
        finished_at=at,
        message="m" * MAX_MESSAGE_CHARS,
        errors=["e" * MAX_MESSAGE_CHARS] * MAX_STATUS_ERRORS,
        nodes={str(i).rjust(id_length, "n"): ns for i in range(nodes)},
        seq=100_000,
    )
    return len(json.dumps(status.model_dump(mode="json", by_alias=True, exclude_none=True)))


def test_worst_case_status_sizes() -> None:
    # Free-form text is bounded to 2 KiB + 10 x 2 KiB + 96 KiB of node messages; the rest of a
    # status is structure, ~0.5 KB per node. Figures (KiB): 1 node 45, 100 nodes 187, 1,500
    # nodes (the CRD's maximum) with 63-character ids 854.
    assert worst_status_bytes(1, 63) < 64 * 1024
    assert worst_status_bytes(100, 63) < 256 * 1024
    assert worst_status_bytes(1500, 63) < 1024 * 1024
    assert node_message_limit(10) == MAX_MESSAGE_CHARS
    assert node_message_limit(1500) == 65


@pytest.mark.parametrize("duration", [1e300, "99999999999999999999d", "367d"])
def test_a_sleep_longer_than_a_year_is_refused_at_validation(duration: object) -> None:
    # 1e300 ms overflowed the date arithmetic: the engine crashed on every pass.
    doc = flow()
    doc["spec"]["nodes"] = [{"id": "z", "uses": "sleep", "params": {"duration": duration}}]
    with pytest.raises(FlowValidationError, match=r"params.duration: at most 366d"):
        parse_flow(doc)
    doc["spec"]["nodes"][0]["params"]["duration"] = "366d"
    Engine(parse_flow(doc).spec).start(T0)
