"""Large results on real pods: a node returning 700 KiB and one writing 300 KiB of context;
downstream nodes read both exactly (through their ConfigMaps, a 700 KiB input included); the
Flow's status holds only references; over the 1 MiB limit fails naming limit and size; the
operator runs with only the rights deploy/operator.yaml ships (``get pods/log`` among them)
while node pods have no service-account token. Processes that end without a result fail:
``os._exit(0)`` and a node killing itself with SIGTERM (PID 1 no more)."""

from __future__ import annotations

import hashlib
import json
import random
import string
from pathlib import Path
from typing import Any

import pytest

from cluster import Cluster
from flowcraft.drivers.kubernetes import results
from flowcraft.drivers.kubernetes import status as flow_status
from flowcraft.model import FlowStatus
from operator_harness import (
    OperatorProcess,
    apply_doc,
    flow_crd,
    items,
    operator,
    operator_role_kubeconfig,
    runner_image,
    wait_phase,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("runner_image")]

__all__ = ["flow_crd", "operator", "runner_image"]  # fixtures

KIB = 1024
# Random letters (seeded): zlib gets them to about 75 %, so the block really is ~700 KiB.
BLOB = """
import hashlib, random, string
def blob(n, seed):
    rng = random.Random(seed)
    return "".join(rng.choices(string.ascii_letters + string.digits, k=n))
def digest(value):
    return hashlib.sha256(value.encode()).hexdigest() if isinstance(value, str) else None
"""


def _blob(n: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choices(string.ascii_letters + string.digits, k=n))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


FUNCTIONS = {
    "big": {"script": BLOB + "def run(ctx):\n    return blob(700 * 1024, 1)\n"},
    "writer": {
        "script": BLOB
        + "def run(ctx):\n    ctx.set('blob', blob(300 * 1024, 2))\n    return 'wrote'\n"
    },
    "check": {
        "script": BLOB
        + "def run(ctx):\n"
        + "    out, blob_ = ctx.get('_outputs.big'), ctx.get('blob')\n"
        + "    return {'big': [len(out), digest(out)], 'blob': [len(blob_), digest(blob_)]}\n"
    },
    "echo-input": {
        "script": BLOB + "def run(ctx):\n    return [len(ctx.input), digest(ctx.input)]\n"
    },
    "over": {"script": "def run(ctx):\n    return 'x' * (1024 * 1024 - 1)\n"},
    "exit0": {"script": "import os\ndef run(ctx):\n    os._exit(0)\n"},
    "sigterm": {
        "script": "import os, signal\ndef run(ctx):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n    return 'survived'\n"
    },
}


def flow_doc(name: str, nodes: list[Any], edges: list[Any]) -> dict[str, Any]:
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {"functions": FUNCTIONS, "nodes": nodes, "edges": edges, "failFast": False},
    }


def _one(uses: str) -> list[Any]:
    return [{"id": uses, "uses": uses}]


def test_large_results_flow_downstream_with_only_the_shipped_rbac(
    cluster: Cluster, namespace: str, flow_crd: None, tmp_path: Path
) -> None:
    kubeconfig = operator_role_kubeconfig(cluster, namespace, tmp_path)
    restricted = Cluster(kubeconfig=kubeconfig, mode=cluster.mode)
    proc = OperatorProcess(restricted, [namespace], tmp_path / "operator.log")
    proc.start()
    try:
        nodes = [{"id": x, "uses": x} for x in ("big", "writer", "check")]
        nodes.append({"id": "next", "uses": "echo-input"})
        edges = [
            {"source": "big", "target": "check"},
            {"source": "writer", "target": "check"},
            {"source": "big", "target": "next"},
        ]
        apply_doc(cluster, namespace, flow_doc("large", nodes, edges))
        apply_doc(cluster, namespace, flow_doc("over", _one("over"), []))
        apply_doc(cluster, namespace, flow_doc("exit0", _one("exit0"), []))
        apply_doc(cluster, namespace, flow_doc("sigterm", _one("sigterm"), []))

        flow = wait_phase(cluster, namespace, "large", {"Succeeded", "Failed"}, timeout=300)
        assert flow["status"]["phase"] == "Succeeded", (flow["status"], proc.log()[-3000:])
        big, blob = _blob(700 * KIB, 1), _blob(300 * KIB, 2)
        status = FlowStatus.model_validate(flow["status"])
        configmaps = {
            ref: cluster.kubectl_json("get", "configmap", ref, "-n", namespace)
            for ref in flow_status.output_refs(status).values()
        }
        context = results.final_context(flow, configmaps)
        assert context["_outputs.check"] == {
            "big": [len(big), _sha(big)],
            "blob": [len(blob), _sha(blob)],
        }
        assert context["_outputs.next"] == [len(big), _sha(big)]  # its 700 KiB input
        assert context["_outputs.big"] == big
        assert context["blob"] == blob
        # The status holds references, never the data.
        assert len(json.dumps(flow["status"])) < 8 * KIB
        # Node pods: no token, no API access.
        for pod in items(cluster, "pods", namespace, "flowcraft.io/flow=large"):
            assert pod["spec"]["automountServiceAccountToken"] is False
            assert pod["spec"]["shareProcessNamespace"] is True
        assert "Forbidden" not in proc.log()

        over = wait_phase(cluster, namespace, "over", {"Succeeded", "Failed"}, timeout=300)
        message = over["status"]["nodes"]["over"]["message"]
        assert over["status"]["phase"] == "Failed", over["status"]
        assert "is 1048577 bytes, over the limit of 1048576 bytes" in message
        assert "write large data to your own storage" in message

        exited = wait_phase(cluster, namespace, "exit0", {"Succeeded", "Failed"}, timeout=300)
        assert exited["status"]["phase"] == "Failed", exited["status"]
        assert "exited without a result" in exited["status"]["nodes"]["exit0"]["message"]

        killed = wait_phase(cluster, namespace, "sigterm", {"Succeeded", "Failed"}, timeout=300)
        assert killed["status"]["phase"] == "Failed", killed["status"]
        assert killed["status"]["nodes"]["sigterm"]["message"] == (
            "killed by SIGTERM (exit code 143) without a result"
        )
    finally:
        proc.stop()
        cluster.kubectl(
            "delete", "clusterrole", f"flowcraft-operator-test-{namespace}"[:63], check=False
        )
