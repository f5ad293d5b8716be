"""Run the flowcraft operator as a real subprocess against the test cluster.

Why a subprocess (not an in-process task): the restart-safety tests SIGKILL it by pid, exactly
what an OOM kill or a node loss does, and a fresh process proves nothing survives in memory.
Each test gets its own operator watching only its own namespace, so tests stay independent.

Fixtures (import into a conftest): ``flow_crd`` (session: applies crds/flow.yaml and
crds/blueprint.yaml and waits for them to be Established), ``operator`` (function: an
:class:`OperatorProcess` started for the test's ``namespace``; stopped after the test, its log
attached to failures) and ``runner_image`` (session: builds the node runtime image from this
checkout and loads it; the tag is ``$FLOWCRAFT_TEST_RUNNER_IMAGE``, default
``flowcraft-runner:0.1.0``, so two checkouts can test against one cluster without replacing
each other's runtime; the operators started here launch nodes with that image).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from cluster import ROOT, Cluster

T = TypeVar("T")

CRD_FILE = ROOT / "crds" / "flow.yaml"
BLUEPRINT_CRD_FILE = ROOT / "crds" / "blueprint.yaml"
EXAMPLES = ROOT / "examples"
RUNNER_IMAGE = os.environ.get("FLOWCRAFT_TEST_RUNNER_IMAGE", "flowcraft-runner:0.1.0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorProcess:
    """``python -m flowcraft.drivers.kubernetes`` for some namespaces; controlled by pid."""

    def __init__(
        self,
        cluster: Cluster,
        namespaces: list[str],
        log_path: Path,
        *,
        verbose: bool = False,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.verbose = verbose
        self.extra_args = list(extra_args)
        self.cluster = cluster
        self.namespaces = namespaces
        self.log_path = log_path
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        args = [sys.executable, "-m", "flowcraft.drivers.kubernetes"]
        args += ["--kubeconfig", str(self.cluster.kubeconfig)]
        for ns in self.namespaces:
            args += ["--namespace", ns]
        args += ["--metrics-port", str(self.metrics_port)]
        args += ["--runner-image", RUNNER_IMAGE]
        if self.verbose:
            args.append("--verbose")
        args += self.extra_args
        env = self.cluster.env()
        env["PYTHONPATH"] = str(ROOT / "operator") + os.pathsep + env.get("PYTHONPATH", "")
        with self.log_path.open("ab") as log:
            log.write(f"--- start #{self.starts + 1}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self.starts += 1

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("operator not started")
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye: what a crash looks like."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            assert self.proc is not None
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metrics_up(self) -> bool:
        try:
            self.metrics()
        except (urllib.error.URLError, ConnectionError):
            return False
        return True

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as resp:
            return str(resp.read().decode())


def elected_operators(
    cluster: Cluster, namespace: str, tmp_path: Path, count: int = 2, *, lease: str = "op"
) -> list[OperatorProcess]:
    """``count`` operators for ``namespace`` with leader election on (the Lease ``lease`` in
    that namespace, identities ``op-0``, ``op-1``...), not started; logs ``operator-N.log``."""
    return [
        OperatorProcess(
            cluster,
            [namespace],
            tmp_path / f"operator-{i}.log",
            extra_args=[
                "--leader-elect",
                f"--leader-election-namespace={namespace}",
                f"--leader-election-name={lease}",
                f"--leader-election-identity=op-{i}",
            ],
        )
        for i in range(count)
    ]


def lease_holder(cluster: Cluster, namespace: str, lease: str = "op") -> str | None:
    """The Lease's holderIdentity (None: no Lease yet, or released)."""
    result = cluster.kubectl("get", "lease", lease, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    holder = (json.loads(result.stdout).get("spec") or {}).get("holderIdentity")
    return str(holder) if holder else None


def wait_for(
    probe: Callable[[], T | None], *, timeout: float = 120, interval: float = 0.25, what: str
) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


# ---------------------------------------------------------------------------- helpers


def get_flow(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = cluster.kubectl_json("get", "flow", name, "-n", namespace)
    return doc


def flow_phase(cluster: Cluster, namespace: str, name: str) -> str | None:
    phase = (get_flow(cluster, namespace, name).get("status") or {}).get("phase")
    return phase if isinstance(phase, str) else None


def wait_phase(
    cluster: Cluster, namespace: str, name: str, phases: set[str], timeout: float = 180
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        flow = get_flow(cluster, namespace, name)
        return flow if (flow.get("status") or {}).get("phase") in phases else None

    return wait_for(probe, timeout=timeout, what=f"flow {name} to reach {sorted(phases)}")


def items(cluster: Cluster, kind: str, namespace: str, selector: str | None = None) -> list[Any]:
    args = ["get", kind, "-n", namespace]
    if selector:
        args += ["-l", selector]
    doc = cluster.kubectl_json(*args)
    return list(doc.get("items") or [])


def jobs_by_node(cluster: Cluster, namespace: str, flow: str) -> dict[str, list[str]]:
    """node id -> sorted Job names (one per attempt) of ``flow``."""
    out: dict[str, list[str]] = {}
    for job in items(cluster, "jobs", namespace, f"flowcraft.io/flow={flow}"):
        node = job["metadata"]["labels"]["flowcraft.io/node"]
        out.setdefault(node, []).append(job["metadata"]["name"])
    return {k: sorted(v) for k, v in out.items()}


def events_for(cluster: Cluster, namespace: str, flow: str) -> list[dict[str, Any]]:
    return [
        e
        for e in items(cluster, "events", namespace)
        if e.get("involvedObject", {}).get("kind") == "Flow"
        and e.get("involvedObject", {}).get("name") == flow
    ]


def apply_file(cluster: Cluster, namespace: str, path: Path) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(path))


def apply_doc(cluster: Cluster, namespace: str, doc: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(doc))


def operator_role_kubeconfig(cluster: Cluster, namespace: str, tmp_path: Path) -> Path:
    """A kubeconfig for a ServiceAccount bound (in ``namespace``) to deploy/operator.yaml's
    ClusterRole: the operator then runs with exactly the rights it ships with. The caller deletes
    the ClusterRole ``flowcraft-operator-test-<namespace>`` (cut to 63) afterwards."""
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "operator.yaml").read_text()))
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    role["metadata"]["name"] = f"flowcraft-operator-test-{namespace}"[:63]
    apply_doc(cluster, namespace, role)
    cluster.kubectl("create", "serviceaccount", "op", "-n", namespace)
    cluster.kubectl(
        "create", "rolebinding", "op", "-n", namespace,
        f"--clusterrole={role['metadata']['name']}", f"--serviceaccount={namespace}:op",
    )  # fmt: skip
    token = cluster.kubectl("create", "token", "op", "-n", namespace).stdout.strip()
    admin = cluster.kubectl_json("config", "view", "--raw", "--minify")
    admin["users"] = [{"name": "op", "user": {"token": token}}]
    admin["contexts"][0]["context"]["user"] = "op"
    path = tmp_path / "operator-sa.kubeconfig"
    path.write_text(json.dumps(admin))
    return path


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def flow_crd(cluster: Cluster) -> None:
    for path in (CRD_FILE, BLUEPRINT_CRD_FILE):
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    for crd in ("crd/flows.flowcraft.io", "crd/blueprints.flowcraft.io"):
        cluster.kubectl("wait", "--for=condition=Established", crd, "--timeout=60s")


@pytest.fixture(scope="session")
def runner_image(cluster: Cluster, load_images: Any) -> str:
    """The node runtime image built from this checkout, loaded into the cluster."""
    if not cluster.runs_containers:
        pytest.fail("these tests need a cluster that runs containers (make cluster)", pytrace=False)
    # Cheap when nothing changed; makes the image match the code under test.
    subprocess.run(
        ["make", "-s", "image-runner", f"RUNNER_IMAGE={RUNNER_IMAGE}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    load_images(RUNNER_IMAGE)
    return RUNNER_IMAGE


@pytest.fixture
def operator(
    cluster: Cluster,
    namespace: str,
    flow_crd: None,
    tmp_path: Path,
) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(cluster, [namespace], tmp_path / "operator.log")
    proc.start()
    yield proc
    proc.stop()
    # pytest shows captured output only for failing tests: the operator's log comes with them.
    sys.stderr.write(f"\n--- operator log ({proc.log_path}) ---\n{proc.log()[-20000:]}\n")


__all__ = [
    "EXAMPLES",
    "RUNNER_IMAGE",
    "OperatorProcess",
    "apply_doc",
    "apply_file",
    "elected_operators",
    "events_for",
    "flow_crd",
    "flow_phase",
    "get_flow",
    "items",
    "jobs_by_node",
    "lease_holder",
    "operator",
    "operator_role_kubeconfig",
    "runner_image",
    "wait_for",
    "wait_phase",
]
