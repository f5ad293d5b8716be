"""A container node run by the local runner with a real docker daemon gets the pod's sandbox:
uid/gid 65532, a read-only root with a writable /tmp, no capabilities, no network, the
launch's env and inputs at the pod's paths.

The daemon is the harness's private dockerd (``hack/dockerd.sh``, started if needed); the
image is the harness base image the runner image is built FROM (``hack/versions.env``), so
nothing is pulled. Without a daemon the test fails with how to get one (it never skips).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from flowcraft.drivers.local import LocalRunner
from flowcraft.model import load_flow

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent(
    """\
    import json, os
    def writable(path):
        try:
            with open(path, "w"):
                return True
        except OSError:
            return False
    status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
    ins = os.environ["FLOWCRAFT_IN"]
    out = {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "rootWritable": writable("/probe"),
        "tmpWritable": writable("/tmp/probe"),
        "inWritable": writable(ins + "/probe"),
        "capEff": int(status["CapEff"].strip(), 16),
        "noNewPrivs": status["NoNewPrivs"].strip(),
        "nets": sorted(os.listdir("/sys/class/net")),
        "home": os.environ.get("HOME"),
        "greeting": os.environ.get("GREETING"),
        "node": os.environ.get("FLOWCRAFT_NODE"),
        "input": json.load(open(ins + "/input.json")),
        "context": json.load(open(ins + "/context.json")),
    }
    with open(os.environ["FLOWCRAFT_OUT"], "w") as f:
        json.dump({"output": out, "action": None}, f)
    """
)


def _docker_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the docker CLI at the harness daemon; return the base image's name."""
    start = subprocess.run(
        ["hack/dockerd.sh", "start"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if start.returncode != 0:
        pytest.fail(f"needs a docker daemon (hack/dockerd.sh start): {start.stderr}", pytrace=False)
    env = subprocess.run(
        ["hack/dockerd.sh", "env"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for assignment in env.replace("export ", "").split():
        name, _, value = assignment.partition("=")
        monkeypatch.setenv(name, value)
    versions = (ROOT / "hack" / "versions.env").read_text().splitlines()
    base = next(v.split("=", 1)[1] for v in versions if v.startswith("BASE_IMAGE="))
    return base.strip().strip('"')


def test_container_node_runs_locally_in_the_pod_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = _docker_env(monkeypatch)
    flow = load_flow(
        "apiVersion: flowcraft.io/v1alpha1\nkind: Flow\nmetadata: {name: sandbox}\n"
        + textwrap.dedent(
            f"""\
            spec:
              context: {{k: 1}}
              functions:
                start: {{script: "def run(ctx): return 41"}}
                probe:
                  image: {json.dumps(image)}
                  command: [python3, -c]
                  args: [{json.dumps(PROBE)}]
                  env: {{GREETING: hello, HOME: /root}}
                  resources: {{limits: {{memory: 128Mi, cpu: "1"}}}}
              nodes: [{{id: start, uses: start}}, {{id: probe, uses: probe}}]
              edges: [{{source: start, target: probe}}]
            """
        )
    )
    result = asyncio.run(LocalRunner(flow, tmp_path / "run").run())
    assert result.status.phase == "Succeeded", result.status.nodes["probe"].message
    seen = result.outputs["probe"]
    assert (seen["uid"], seen["gid"]) == (65532, 65532)
    assert seen["rootWritable"] is False
    assert seen["tmpWritable"] is True
    assert seen["inWritable"] is False
    assert seen["capEff"] == 0
    assert seen["noNewPrivs"] == "1"
    assert seen["nets"] == ["lo"]
    assert seen["home"] == "/tmp"  # the sandbox's, as in a pod: the function cannot move it
    assert seen["greeting"] == "hello"
    assert seen["node"] == "probe"
    assert seen["input"] == 41
    assert seen["context"] == {"k": 1}
