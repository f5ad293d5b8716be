"""Cluster access for the integration and e2e tests.

Which cluster: ``$KUBECONFIG`` when set (a user's kind cluster, anything), otherwise the
harness cluster's ``.cluster/kubeconfig`` (``make cluster``), otherwise the kwok harness's
``.cluster/kwok.kubeconfig`` (``make cluster-kwok``; select it explicitly with
``KUBECONFIG=.cluster/kwok.kubeconfig`` when both run).
Without either, the ``cluster`` fixture FAILS (never skips) and says how to start one.

Fixtures (import them into a conftest with ``from cluster import *``):

- ``cluster`` (session): a :class:`Cluster`: ``.kubeconfig``, ``.mode``, ``.kubectl(...)``,
  ``.api_client()``, ``.load_images(...)``, ``.create_namespace()``.
- ``k8s_api`` (session): a ``kubernetes.client.ApiClient`` for that cluster.
- ``namespace`` (function): name of a fresh namespace, deleted after the test.
- ``load_images`` (session): ``load_images("flowcraft-x:1.0", ...)`` puts local images into
  the cluster (harness containerd import, or ``kind load``); a no-op in kwok mode.
- ``smoke_image`` (session): the smoke image tag (``flowcraft-smoke:...``), loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_DIR = ROOT / ".cluster"
HARNESS_KUBECONFIG = CLUSTER_DIR / "kubeconfig"
KWOK_KUBECONFIG = CLUSTER_DIR / "kwok.kubeconfig"
HACK = ROOT / "hack"

NO_CLUSTER_MESSAGE = f"""no Kubernetes cluster for the integration/e2e tests.
Start the offline harness cluster:   make cluster        (real pods)
  or the kwok one (no containers):   make cluster-kwok   (writes {KWOK_KUBECONFIG})
  or point KUBECONFIG at a cluster:  KUBECONFIG=~/.kube/config pytest -m 'integration or e2e'
Select only unit tests with:          pytest -m unit"""


class ClusterUnavailable(RuntimeError):
    """No cluster can be found for the cluster tests."""


def versions() -> dict[str, str]:
    """Pinned versions and image tags from hack/versions.env."""
    out: dict[str, str] = {}
    for raw in (HACK / "versions.env").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def find_kubeconfig() -> tuple[Path, str]:
    """Return (kubeconfig, mode); mode is 'real' or 'kwok' for the harness, else 'external'."""
    harness = {HARNESS_KUBECONFIG.resolve(): "real", KWOK_KUBECONFIG.resolve(): "kwok"}
    env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ClusterUnavailable(f"KUBECONFIG={env} does not exist.\n{NO_CLUSTER_MESSAGE}")
        return path, harness.get(path.resolve(), "external")
    for path in (HARNESS_KUBECONFIG, KWOK_KUBECONFIG):
        if path.is_file():
            return path, harness[path.resolve()]
    raise ClusterUnavailable(NO_CLUSTER_MESSAGE)


def tool_binary(name: str, hint: str) -> str:
    """$FLOWCRAFT_<NAME>, else the harness's .cluster/bin/<name>, else PATH; `hint` if none."""
    override = os.environ.get(f"FLOWCRAFT_{name.upper()}")
    if override:
        return override
    local = CLUSTER_DIR / "bin" / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise ClusterUnavailable(f"{name} not found: {hint}")
    return found


def kubectl_binary() -> str:
    return tool_binary("kubectl", "run `make cluster` or install kubectl")


@dataclass
class Cluster:
    kubeconfig: Path
    mode: str  # "real" | "kwok" (harness) | "external" (KUBECONFIG)
    kubectl_bin: str = field(default_factory=kubectl_binary)

    @property
    def runs_containers(self) -> bool:
        return self.mode != "kwok"

    def env(self) -> dict[str, str]:
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            env.pop(var, None)
        return env

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; raises with stderr in the message on failure."""
        cmd = [self.kubectl_bin, "--kubeconfig", str(self.kubeconfig), *args]
        proc = subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}"
            )
        return proc

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def apply(self, manifest: str | dict[str, Any], namespace: str | None = None) -> None:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        ns = ["-n", namespace] if namespace else []
        self.kubectl("apply", *ns, "-f", "-", input=text)

    def api_client(self) -> Any:
        """A kubernetes.client.ApiClient configured from this kubeconfig."""
        configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(self.kubeconfig), client_configuration=configuration
        )
        configuration.proxy = None
        return client.ApiClient(configuration)

    def create_namespace(self, prefix: str = "fc-test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.kubectl("create", "namespace", name)
        self.kubectl("label", "namespace", name, "flowcraft.test/ephemeral=true")
        # Pods need the namespace's default ServiceAccount (created by controller-manager).
        self.kubectl(
            "wait", "--for=jsonpath={.metadata.name}=default", "-n", name,
            "serviceaccount/default", "--timeout=60s",
        )  # fmt: skip
        return name

    def delete_namespace(self, name: str, wait: bool = False) -> None:
        self.kubectl(
            "delete", "namespace", name, "--ignore-not-found", f"--wait={str(wait).lower()}",
            check=False,
        )  # fmt: skip

    def load_images(self, images: Sequence[str]) -> None:
        """Make local images available to pods (harness containerd import / kind load)."""
        if not images or not self.runs_containers:
            return
        target = {"real": "harness", "kwok": "kwok"}.get(self.mode)
        env = self.env()
        if target:
            env["FLOWCRAFT_LOAD_TARGET"] = target
        proc = subprocess.run(
            [str(HACK / "image-load.sh"), *images],
            capture_output=True, text=True, env=env, timeout=600, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise AssertionError(f"loading {images} failed:\n{proc.stderr}{proc.stdout}")


def connect() -> Cluster:
    """The cluster for this run, checked to answer; raises ClusterUnavailable otherwise."""
    kubeconfig, mode = find_kubeconfig()
    cluster = Cluster(kubeconfig=kubeconfig, mode=mode)
    proc = cluster.kubectl("get", "--raw", "/readyz", check=False, timeout=30)
    if proc.returncode != 0:
        raise ClusterUnavailable(
            f"the cluster in {kubeconfig} does not answer /readyz:\n{proc.stderr.strip()}\n"
            f"{NO_CLUSTER_MESSAGE}"
        )
    return cluster


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    try:
        return connect()
    except ClusterUnavailable as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def k8s_api(cluster: Cluster) -> Iterator[Any]:
    api = cluster.api_client()
    yield api
    api.close()


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    prefix = "fc-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40]
    name = cluster.create_namespace(prefix.rstrip("-"))
    yield name
    cluster.delete_namespace(name, wait=False)


@pytest.fixture(scope="session")
def load_images(cluster: Cluster) -> Any:
    loaded: set[str] = set()

    def load(*images: str) -> None:
        todo = [image for image in images if image not in loaded]
        cluster.load_images(todo)
        loaded.update(todo)

    return load


@pytest.fixture(scope="session")
def smoke_image(load_images: Any) -> str:
    image = versions()["SMOKE_IMAGE"]
    load_images(image)
    return image


__all__ = [
    "Cluster",
    "ClusterUnavailable",
    "cluster",
    "connect",
    "k8s_api",
    "load_images",
    "namespace",
    "smoke_image",
    "versions",
]
