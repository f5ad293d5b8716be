"""The validating admission webhook, served by a real operator process, called by the real
API server: ``kubectl apply`` of an invalid Flow returns ``flowcraft validate``'s problems.

The operator runs on this host (as in the other integration tests) with a certificate made
here for 127.0.0.1, and a ValidatingWebhookConfiguration points the harness API server (a host
process) at it by URL, scoped to this test's namespace so no other test sees it. The chart's
own wiring (Secret, Service, caBundle, flags) is checked by tests/integration/test_chart.py.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster import Cluster
from operator_harness import OperatorProcess, flow_crd, free_port, wait_for

pytestmark = pytest.mark.integration

__all__ = ["flow_crd"]  # fixture

FN = {"ok": {"script": "def run(ctx):\n    return 1\n"}}


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(directory: Path) -> bytes:
    """A CA and a server certificate for 127.0.0.1 in ``directory`` (tls.crt, tls.key); returns
    the CA certificate (PEM) for the webhook configuration's caBundle."""
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "1", "-subj", "/CN=flowcraft-test-ca", cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr",
        "-subj", "/CN=127.0.0.1", cwd=directory,
    )  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(
        "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "tls.crt", "-days", "1", "-extfile", "san.ext", cwd=directory,
    )  # fmt: skip
    return (directory / "ca.crt").read_bytes()


def _flow(name: str, edges: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {
            "functions": FN,
            "nodes": [{"id": "a", "uses": "ok"}, {"id": "b", "uses": "ok"}],
            "edges": edges,
            "suspend": True,  # admission only: nothing should run
            **spec,
        },
    }


@pytest.fixture
def webhook(
    cluster: Cluster, namespace: str, flow_crd: None, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """An operator serving the webhook on 127.0.0.1, and a configuration for ``namespace``."""
    certs = tmp_path / "certs"
    certs.mkdir()
    ca = make_certs(certs)
    port = free_port()
    proc = OperatorProcess(
        cluster,
        [namespace],
        tmp_path / "operator.log",
        extra_args=["--webhook-port", str(port), "--webhook-cert-dir", str(certs)],
    )
    proc.start()
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))

    def listening() -> bool:
        assert proc.alive(), proc.log()
        try:
            url = f"https://127.0.0.1:{port}/healthz"
            with urllib.request.urlopen(url, context=context, timeout=5) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, ConnectionError):
            return False

    wait_for(listening, timeout=60, what="the webhook to listen")
    name = f"flowcraft-test-{namespace}"
    configuration = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "validate.flows.flowcraft.io",
                "clientConfig": {
                    "url": f"https://127.0.0.1:{port}/validate-flow",
                    "caBundle": base64.b64encode(ca).decode(),
                },
                "rules": [
                    {
                        "apiGroups": ["flowcraft.io"],
                        "apiVersions": ["v1alpha1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["flows"],
                        "scope": "Namespaced",
                    }
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 10,
            }
        ],
    }
    cluster.apply(configuration)
    try:
        yield proc
    finally:
        cluster.kubectl("delete", "validatingwebhookconfiguration", name, check=False)
        proc.stop()
        sys.stderr.write(f"\n--- operator log ---\n{proc.log()[-20000:]}\n")


def _apply(
    cluster: Cluster, namespace: str, doc: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(doc), check=False)


def _validate(tmp_path: Path, doc: dict[str, Any]) -> list[str]:
    """``flowcraft validate``'s problem lines for ``doc``."""
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(doc))
    proc = subprocess.run(
        [sys.executable, "-c", "from flowcraft.cli import main; raise SystemExit(main())",
         "validate", str(path)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    return [line for line in proc.stderr.splitlines() if line.startswith("  - ")]


def test_kubectl_apply_of_an_invalid_flow_gets_the_validate_problems_back(
    cluster: Cluster, namespace: str, webhook: OperatorProcess, tmp_path: Path
) -> None:
    cycle = _flow("cycle", [{"source": "a", "target": "b"}, {"source": "b", "target": "a"}])

    def rejected_by_webhook() -> str | None:
        proc = _apply(cluster, namespace, cycle)
        assert webhook.alive(), webhook.log()
        if proc.returncode != 0 and "validate.flows.flowcraft.io" in proc.stderr:
            return proc.stderr
        if proc.returncode == 0:  # the configuration was not active yet: try again
            cluster.kubectl("delete", "flow", "cycle", "-n", namespace, "--wait=true")
        return None

    err = wait_for(rejected_by_webhook, timeout=60, what="the webhook to answer")
    assert 'admission webhook "validate.flows.flowcraft.io" denied the request' in err
    assert "invalid flow: 1 problem" in err
    problems = _validate(tmp_path, cycle)
    assert problems == ["  - spec.edges: cycle: a -> b -> a"]
    for line in problems:
        assert line in err

    # Several problems at once, each with its path, as flowcraft validate lists them.
    broken = _flow(
        "broken",
        [{"source": "a", "target": "nope"}, {"source": "a", "target": "b", "condition": "(("}],
    )
    err = _apply(cluster, namespace, broken).stderr
    problems = _validate(tmp_path, broken)
    assert len(problems) == 2
    for line in problems:
        assert line in err

    # A valid Flow passes, and so do edits of its controls.
    ok = _flow("fine", [{"source": "a", "target": "b"}])
    assert _apply(cluster, namespace, ok).returncode == 0
    cluster.kubectl(
        "patch", "flow", "fine", "-n", namespace, "--type=merge", "-p", '{"spec":{"parallelism":2}}'
    )
    assert webhook.alive()
