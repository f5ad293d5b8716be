"""Job creates the API server refuses (reconcile/cluster.py, worker.py), without a cluster:
a refused create fails its attempt with the server's message; a pass that fails keeps the
items it started to look at next pass. (The real refusal, a ResourceQuota, is in
tests/e2e/test_refused_creates_e2e.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowcraft.drivers.kubernetes import builders, subflows
from flowcraft.drivers.kubernetes.cache import FlowKey, ObjectCache
from flowcraft.drivers.kubernetes.client import Forbidden, Invalid, NotFound, ServerError
from flowcraft.drivers.kubernetes.reconcile.cluster import Cluster
from flowcraft.drivers.kubernetes.reconcile.lost import gone_message, item_job_gone
from flowcraft.drivers.kubernetes.reconcile.state import FlowState, Pass
from flowcraft.drivers.kubernetes.reconcile.worker import keeping_started
from flowcraft.engine import Engine, NodeFailed, StartNode
from flowcraft.model import parse_flow

pytestmark = pytest.mark.unit

REF = builders.FlowRef(name="f", namespace="ns", uid="uid-1")
QUOTA = (
    'jobs.batch "f-a-1" is forbidden: exceeded quota: one-job, requested: count/jobs.batch=1, '
    "used: count/jobs.batch=1, limited: count/jobs.batch=1"
)


def _pass() -> Pass:
    flow = parse_flow(
        {
            "apiVersion": "flowcraft.io/v1alpha1",
            "kind": "Flow",
            "metadata": {"name": "f"},
            "spec": {
                "nodes": [{"id": "a", "uses": "t"}],
                "functions": {"t": {"script": "def run(ctx): return 1"}},
            },
        }
    )
    return Pass(FlowKey("ns", "f"), REF, FlowState(), flow.spec, Engine(flow.spec))


class _Refusing:
    """A client whose Job creates and reads all fail with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.creates = 0

    async def create_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.creates += 1
        raise self.error

    async def get_job(self, namespace: str, name: str) -> dict[str, Any]:
        raise self.error


def _cluster(client: _Refusing) -> Cluster:
    return Cluster(
        client=client,  # type: ignore[arg-type]
        cache=ObjectCache(),
        requests=asyncio.Semaphore(1),
        subflows=subflows.Subflows(client),  # type: ignore[arg-type]
        instance="test",
        runner_image=None,
        indexed=False,
    )


ACTION = StartNode("a", 1, None, None)
JOB = {"metadata": {"name": "f-a-1"}}


def test_a_refused_create_fails_the_attempt_with_the_servers_message() -> None:
    ctx = _pass()
    client = _Refusing(Forbidden(403, "Forbidden", QUOTA))
    asyncio.run(_cluster(client).create_job(ctx, ACTION, JOB))
    assert client.creates == 1  # sent once, never again for this attempt
    (failed,) = ctx.state.pending
    assert isinstance(failed, NodeFailed)
    assert (failed.node, failed.attempt) == ("a", 1)
    assert failed.message == f"the API server refused Job f-a-1: {QUOTA}"
    # Looked at again (a batch item), the missing Job fails with the refusal, not a deletion.
    assert gone_message(ctx, "f-a-1", 1) == failed.message


def test_an_invalid_job_still_fails_the_attempt_as_rejected() -> None:
    ctx = _pass()
    asyncio.run(_cluster(_Refusing(Invalid(422, "Invalid", "bad"))).create_job(ctx, ACTION, JOB))
    (failed,) = ctx.state.pending
    assert isinstance(failed, NodeFailed)
    assert failed.message == "the API server rejected the Job: bad"


def test_a_server_error_on_create_fails_the_pass_not_the_attempt() -> None:
    """A 5xx says nothing about whether the Job was made: the pass fails and is retried (a
    node's Job that left no trace is then created, ``lost.left_no_trace``); no attempt fails
    at once."""
    ctx = _pass()
    with pytest.raises(ServerError):
        asyncio.run(
            _cluster(_Refusing(ServerError(500, "InternalError", "etcd"))).create_job(
                ctx, ACTION, JOB
            )
        )
    assert ctx.state.pending == []
    # A batch item's Job that then does not exist fails its attempt naming the create.
    client = _Refusing(NotFound(404, "NotFound", "gone"))
    assert asyncio.run(item_job_gone(_cluster(client), ctx, "f-a-1"))
    assert gone_message(ctx, "f-a-1", 1) == (
        "Job f-a-1 does not exist: its create failed (500 InternalError); the attempt failed "
        "(a retry, if any, runs as a new attempt)"
    )
    assert asyncio.run(item_job_gone(_cluster(client), ctx, "f-a-2"))
    assert "was deleted" in gone_message(ctx, "f-a-2", 1)  # a Job created, then deleted


def test_a_failed_pass_keeps_the_items_it_started_to_look_at_next_pass() -> None:
    ctx = _pass()
    ctx.state.recheck = {"seen-before"}

    def failing_pass() -> None:
        with keeping_started(ctx):
            ctx.started.update({"item-job-1", "item-job-2"})
            raise RuntimeError("the pass failed after starting items")

    with pytest.raises(RuntimeError):
        failing_pass()
    assert ctx.state.recheck == {"seen-before", "item-job-1", "item-job-2"}


def test_a_pass_that_completes_records_recheck_itself() -> None:
    ctx = _pass()
    with keeping_started(ctx):
        ctx.started.add("item-job-1")
    assert ctx.state.recheck == set()  # the pass's own bookkeeping (Reconciler._pass) does it
