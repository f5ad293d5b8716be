"""Two operators, one Lease: the standby writes nothing while the leader lives, and finishes
the leader's Flows after a SIGKILL, with exactly one Job per (node, attempt).

Both operators are real subprocesses (tests/operator_harness.py) with ``--leader-elect`` on a
Lease in the test's namespace and client-go's default timing (15 s / 10 s / 2 s).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from cluster import Cluster
from operator_harness import (
    OperatorProcess,
    apply_doc,
    elected_operators,
    events_for,
    flow_crd,
    get_flow,
    jobs_by_node,
    lease_holder,
    runner_image,
    wait_for,
    wait_phase,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("runner_image", "flow_crd")]

__all__ = ["flow_crd", "runner_image"]  # fixtures

LEASE_DURATION, RETRY_PERIOD = 15.0, 2.0

STEP = "import time\n\ndef run(ctx):\n    time.sleep(ctx.params['s'])\n    return ctx.params['s']\n"


def _chain(name: str, ids: list[str], seconds: float) -> dict[str, Any]:
    """a -> b -> ... each sleeping ``seconds``; the middle fans out to two siblings."""
    nodes = [{"id": i, "uses": "step", "params": {"s": seconds}} for i in ids]
    edges = [{"source": a, "target": b} for a, b in itertools.pairwise(ids)]
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {"functions": {"step": {"script": STEP}}, "nodes": nodes, "edges": edges},
    }


def _start_pair(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> tuple[OperatorProcess, OperatorProcess]:
    leader, standby = elected_operators(cluster, namespace, tmp_path)
    leader.start()
    wait_for(lambda: lease_holder(cluster, namespace) == "op-0", timeout=60, what="op-0 leads")
    standby.start()
    wait_for(lambda: "is standby" in standby.log(), timeout=60, what="op-1 waits as standby")
    return leader, standby


def _node_phase(cluster: Cluster, namespace: str, flow: str, node: str) -> str | None:
    nodes = (get_flow(cluster, namespace, flow).get("status") or {}).get("nodes") or {}
    return (nodes.get(node) or {}).get("phase")


def _dump(*ops: OperatorProcess) -> None:
    import sys  # noqa: PLC0415

    for op in ops:
        sys.stderr.write(f"\n--- {op.log_path.name} ---\n{op.log()[-15000:]}\n")


def test_standby_never_writes_while_the_leader_lives(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    leader, standby = _start_pair(cluster, namespace, tmp_path)
    try:
        apply_doc(cluster, namespace, _chain("quiet", ["a", "b", "c"], 0.5))
        flow = wait_phase(cluster, namespace, "quiet", {"Succeeded", "Failed"})
        assert flow["status"]["phase"] == "Succeeded", flow["status"]
        assert {n: len(j) for n, j in jobs_by_node(cluster, namespace, "quiet").items()} == {
            "a": 1,
            "b": 1,
            "c": 1,
        }
        # Every Event about the Flow was written by the leader (reportingInstance).
        writers = {e.get("reportingInstance") for e in events_for(cluster, namespace, "quiet")}
        assert writers == {"op-0"}, writers
        assert standby.alive()
        assert leader.alive()
        assert lease_holder(cluster, namespace) == "op-0"
        # The standby never got past the Lease: no watch, no reconcile, no write.
        assert "leads" not in standby.log()
        assert "reconcile" not in standby.log()

        # A graceful stop hands the Lease over at once (released after the last write).
        stopped = time.monotonic()
        leader.stop()
        wait_for(lambda: lease_holder(cluster, namespace) == "op-1", timeout=30, what="op-1")
        handover = time.monotonic() - stopped
        assert handover < LEASE_DURATION, f"handover after SIGTERM took {handover:.1f} s"
    except BaseException:
        _dump(leader, standby)
        raise
    finally:
        leader.stop()
        standby.stop()


def test_sigkilled_leader_is_replaced_and_the_flow_finishes_once(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    leader, standby = _start_pair(cluster, namespace, tmp_path)
    ids = ["a", "b", "c", "d", "e"]
    try:
        apply_doc(cluster, namespace, _chain("chain", ids, 3))
        wait_for(
            lambda: _node_phase(cluster, namespace, "chain", "b") == "Running",
            timeout=180,
            what="node b running",
        )
        killed = time.monotonic()
        leader.kill()
        wait_for(
            lambda: lease_holder(cluster, namespace) == "op-1",
            timeout=LEASE_DURATION + 30,
            interval=0.2,
            what="op-1 to take the lease",
        )
        takeover = time.monotonic() - killed
        sys_note = f"takeover {takeover:.1f} s after SIGKILL"
        print(sys_note)
        # At most one lease duration after the last renewal, plus the standby's polling.
        assert takeover <= LEASE_DURATION + 2 * RETRY_PERIOD + 3, sys_note
        flow = wait_phase(cluster, namespace, "chain", {"Succeeded", "Failed"}, timeout=300)
        assert flow["status"]["phase"] == "Succeeded", flow["status"]
        jobs = jobs_by_node(cluster, namespace, "chain")
        assert {n: len(j) for n, j in jobs.items()} == dict.fromkeys(ids, 1), jobs
        assert all(n["attempts"] == 1 for n in flow["status"]["nodes"].values()), flow["status"]
        # The standby's writes are its own: the flow's last Events name op-1.
        writers = [e.get("reportingInstance") for e in events_for(cluster, namespace, "chain")]
        assert "op-1" in writers, writers
    except BaseException:
        _dump(leader, standby)
        raise
    finally:
        leader.stop()
        standby.stop()
