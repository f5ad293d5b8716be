"""One launch contract: the cluster's Job and the local run directory + ``docker run`` (or host
process) are renderings of the same ``Launch``, compared here field by field."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from flowcraft.contract import ViewItem, file_stem
from flowcraft.drivers import launch as contract
from flowcraft.drivers import local_launch
from flowcraft.drivers.kubernetes import builders, jobs, timeouts
from flowcraft.drivers.local import LocalRunner
from flowcraft.engine.batch import worker_id
from flowcraft.model import FunctionSpec, NodeSpec, load_flow

pytestmark = pytest.mark.unit

FLOW = builders.FlowRef(name="f", namespace="ns", uid="uid-1")
NODE = NodeSpec(id="gather", uses="g", params={"a": 1})
ORDER = (
    ViewItem("task-1", key="task-1"),
    ViewItem("fetch User", key="fetch User/2", wrote=True),
    ViewItem("recovered", inline=True, value=None),
)
VIEW = jobs.View(
    order=ORDER,
    configmaps={"task-1": "f-task-1-out", "fetch User/2": "f-fetch-out"},
    context_configmap="f-context",
)
CONTAINER_FN = FunctionSpec(
    image="busybox:1.36",
    command=["sh", "-c"],
    args=["echo hi"],
    env={"GREETING": "hi", "FLOWCRAFT_NODE": "forged", "HOME": "/root"},
    resources={"limits": {"memory": "64Mi", "cpu": "500m"}, "requests": {"cpu": "100m"}},
)
SCRIPT_FN = FunctionSpec(script="def run(ctx): return 1", env={"GREETING": "hi"})


def _launch(fn: FunctionSpec, **kw: Any) -> contract.Launch:
    args: dict[str, Any] = {
        "attempt": 2,
        "input_value": {"x": [1, 2]},
        "view": ORDER,
        "initial_context": True,
        "runner_image": "flowcraft-runner:t",
        "timeout_seconds": 7.5,
        "out_limit": contract.CLUSTER_OUT_LIMIT,
    }
    args.update(kw)
    return contract.node_launch(NODE, fn, **args)


def _run_dir(tmp_path: Path, launch: contract.Launch) -> Path:
    """A run directory holding every stored result and the initial context ``launch`` reads."""
    run_dir = tmp_path / "run"
    for folder in ("outputs", "writes"):
        (run_dir / folder).mkdir(parents=True)
    (run_dir / "context.json").write_text('{"k": 1}')
    for stored in launch.stored:
        local_launch.stored_source(run_dir, stored).write_text(f'"{stored.part} {stored.key}"')
    return run_dir


def _docker(argv: list[str]) -> dict[str, Any]:
    """The parts of a ``docker run`` argv, as a pod spec names them."""
    assert argv[:3] == ["docker", "run", "--rm"]
    out: dict[str, Any] = {
        "env": [],
        "tmpfs": [],
        "cap_drop": [],
        "volumes": [],
        "security_opt": [],
        "read_only": False,
    }
    flags = {
        "-e": "env",
        "--tmpfs": "tmpfs",
        "--cap-drop": "cap_drop",
        "-v": "volumes",
        "--security-opt": "security_opt",
    }
    i = 3
    while argv[i].startswith("-"):
        flag = argv[i]
        if flag == "--read-only":
            out["read_only"] = True
            i += 1
            continue
        value = argv[i + 1]
        if flag in flags:
            out[flags[flag]].append(value)
        else:
            out[flag.lstrip("-")] = value
        i += 2
    out["image"] = argv[i]
    out["rest"] = argv[i + 1 :]
    return out


def _projected_files(job: dict[str, Any]) -> dict[str, str]:
    """Path in the input volume -> what it holds (annotation text or ``cm:<name>/<key>``)."""
    pod = job["spec"]["template"]
    annotations = pod["metadata"]["annotations"]
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "flowcraft-in")
    files: dict[str, str] = {}
    for source in volume["projected"]["sources"]:
        if "downwardAPI" in source:
            for item in source["downwardAPI"]["items"]:
                ann = item["fieldRef"]["fieldPath"].split("'")[1]
                files[item["path"]] = annotations[ann]
        else:
            cm = source["configMap"]
            for item in cm["items"]:
                files[item["path"]] = f"cm:{cm['name']}/{item['key']}"
    return files


def _local_files(in_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(in_dir)): p.read_text() for p in sorted(in_dir.rglob("*")) if p.is_file()
    }


def test_container_attempt_is_the_same_on_the_cluster_and_in_local_docker(tmp_path: Path) -> None:
    launch = _launch(CONTAINER_FN)
    job = jobs.render_job(FLOW, launch, VIEW)
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    run_dir = _run_dir(tmp_path, launch)
    in_dir, out_file = local_launch.prepare(launch, run_dir, tmp_path / "attempt")
    d = _docker(local_launch.docker_argv(launch, "docker", "n", in_dir, out_file))

    # env: the same variables in the same order (function env after, never overriding).
    assert [f"{e['name']}={e['value']}" for e in c["env"]] == d["env"]
    env = dict(e.split("=", 1) for e in d["env"])
    assert env["FLOWCRAFT_NODE"] == "gather"
    assert env["HOME"] == "/tmp"
    assert env["GREETING"] == "hi"
    assert env["FLOWCRAFT_OUT_LIMIT"] == "1048576"  # what one ConfigMap holds
    # image, command, args (Kubernetes semantics: command replaces the entrypoint).
    assert c["image"] == d["image"] == "busybox:1.36"
    assert [d["entrypoint"], *d["rest"]] == [*c["command"], *c["args"]] == ["sh", "-c", "echo hi"]
    # user, read-only root, capabilities, privilege escalation, writable paths.
    sc = c["securityContext"]
    assert d["user"] == f"{sc['runAsUser']}:{sc['runAsGroup']}" == "65532:65532"
    assert pod["securityContext"]["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is d["read_only"] is True
    assert sc["capabilities"]["drop"] == d["cap_drop"] == ["ALL"]
    assert sc["allowPrivilegeEscalation"] is False
    assert d["security_opt"] == ["no-new-privileges"]
    writable = [m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")]
    assert writable == d["tmpfs"] == ["/tmp"]
    assert d["network"] == "none"  # see launch: a local container reaches no further than a pod may
    # where inputs and the result are.
    in_mount = next(m for m in c["volumeMounts"] if m["name"] == "flowcraft-in")
    assert in_mount["readOnly"] is True
    assert f"{in_dir}:{in_mount['mountPath']}:ro" in d["volumes"]
    assert f"{out_file}:{c['terminationMessagePath']}" in d["volumes"]
    assert env["FLOWCRAFT_IN"] == in_mount["mountPath"]
    assert env["FLOWCRAFT_OUT"] == c["terminationMessagePath"]
    # files: the same paths, each with the same content.
    projected = _projected_files(job)
    local = _local_files(in_dir)
    assert sorted(projected) == sorted(local)
    for path, held in projected.items():
        if held.startswith("cm:f-context/"):
            assert local[path] == '{"k": 1}'
        elif held.startswith("cm:"):
            stored = next(s for s in launch.stored if s.path == path)
            cm = VIEW.configmaps[stored.key]  # type: ignore[index]
            part = "output.json" if stored.part == "output" else "writes.json"
            assert held == f"cm:{cm}/{part}"
            assert local[path] == f'"{stored.part} {stored.key}"'
        else:
            assert local[path] == held
    assert f"writes/{file_stem('fetch User/2')}.json" in local
    # limits: memory and cpu; the timeout (whole seconds on the cluster).
    assert c["resources"]["limits"] == {"memory": "64Mi", "cpu": "500m"}
    assert d["memory"] == str(64 * 2**20)
    assert d["cpus"] == "0.5"
    # On the cluster the operator times the attempt itself; the Job's deadline is a backstop.
    assert job["spec"]["activeDeadlineSeconds"] == 8 + timeouts.BACKSTOP_SECONDS


def test_script_attempt_locally_gets_the_launch_env_at_host_paths(tmp_path: Path) -> None:
    launch = _launch(SCRIPT_FN, out_limit=1000)
    job = jobs.render_job(FLOW, launch, VIEW)
    c = job["spec"]["template"]["spec"]["containers"][0]
    cluster_env = {e["name"]: e["value"] for e in c["env"]}
    run_dir = _run_dir(tmp_path, launch)
    in_dir, out_file = local_launch.prepare(launch, run_dir, tmp_path / "attempt")
    base = {"PATH": "/bin", "FLOWCRAFT_NODE": "stale", "HOME": "/home/u", "PYTHONPATH": "/x"}
    env = local_launch.host_env(launch, in_dir, out_file, base, ["/flow"])
    assert c["command"] == list(contract.RUNTIME_COMMAND)
    for name, value in cluster_env.items():
        if name == "FLOWCRAFT_IN":
            assert env[name] == str(in_dir)
        elif name == "FLOWCRAFT_OUT":
            assert env[name] == str(out_file)
        elif name in dict(contract.SANDBOX_ENV):
            assert env.get(name) == base.get(name)  # a host process keeps the host's HOME
        else:
            assert env[name] == value, name
    assert env["GREETING"] == "hi"
    assert env["FLOWCRAFT_NODE"] == "gather"  # never the caller's
    assert env["PYTHONPATH"] == os.pathsep.join(["/flow", "/x"])
    assert sorted(_projected_files(job)) == sorted(_local_files(in_dir))


def test_function_env_cannot_override_the_contract() -> None:
    env = _launch(CONTAINER_FN).env_map()
    assert env["FLOWCRAFT_NODE"] == "gather"
    assert env["HOME"] == "/tmp"


def test_no_initial_context_no_context_file(tmp_path: Path) -> None:
    launch = _launch(SCRIPT_FN, initial_context=False)
    view = jobs.View(order=ORDER, configmaps=VIEW.configmaps)
    run_dir = _run_dir(tmp_path, launch)
    in_dir, _ = local_launch.prepare(launch, run_dir, tmp_path / "attempt")
    assert "context.json" not in _projected_files(jobs.render_job(FLOW, launch, view))
    assert not (in_dir / "context.json").exists()


def test_batch_item_runs_under_its_worker_id_everywhere() -> None:
    item = _launch(SCRIPT_FN, item=3, uses="double", iteration=1)
    wid = worker_id("double", "gather", 1, 3)
    assert item.node_id == wid
    assert item.env_map()["FLOWCRAFT_NODE"] == wid
    assert json.loads(item.file_map()["params.json"]) == {}
    assert json.loads(item.file_map()["function.json"])["name"] == "double"
    job = jobs.render_job(FLOW, item, VIEW)
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["FLOWCRAFT_NODE"] == wid
    indexed = builders.indexed_job_manifest(
        FLOW,
        NODE,
        SCRIPT_FN,
        "double",
        round_=0,
        first_item=10,
        count=2,
        parallelism=2,
        timeout_seconds=None,
        view=VIEW,
        runner_image="r",
        iteration=1,
    )
    bootstrap = indexed["spec"]["template"]["spec"]["containers"][0]["command"][2]
    prefix = worker_id("double", "gather", 1, 0)[:-1]
    assert f"os.environ['FLOWCRAFT_NODE'] = {prefix!r} + str(10 + int(index))" in bootstrap


def test_payload_over_the_annotation_limit_fails_on_every_driver(tmp_path: Path) -> None:
    with pytest.raises(contract.PayloadTooLarge, match="over the"):
        _launch(SCRIPT_FN, input_value="x" * contract.MAX_PAYLOAD_BYTES)
    big = "x" * contract.MAX_PAYLOAD_BYTES
    flow = load_flow(
        textwrap.dedent(
            f"""\
            apiVersion: flowcraft.io/v1alpha1
            kind: Flow
            metadata: {{name: t}}
            spec:
              functions: {{f: {{script: "def run(ctx): return 1"}}}}
              nodes: [{{id: a, uses: f, params: {{big: {big}}}}}]
            """
        )
    )
    result = asyncio.run(LocalRunner(flow, tmp_path / "run").run())
    assert result.status.phase == "Failed"
    assert "limit for pod annotations" in (result.status.nodes["a"].message or "")


def test_script_function_env_is_honoured_locally(tmp_path: Path) -> None:
    flow = load_flow(
        textwrap.dedent(
            """\
            apiVersion: flowcraft.io/v1alpha1
            kind: Flow
            metadata: {name: t}
            spec:
              functions:
                f:
                  env: {GREETING: hello, FLOWCRAFT_NODE: forged}
                  script: |
                    import os
                    def run(ctx):
                        return [os.environ.get("GREETING"), os.environ["FLOWCRAFT_NODE"]]
              nodes: [{id: a, uses: f}]
            """
        )
    )
    result = asyncio.run(LocalRunner(flow, tmp_path / "run").run())
    assert result.status.phase == "Succeeded", result.status.nodes["a"].message
    assert result.outputs["a"] == ["hello", "a"]


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", 0.5), ("2", 2.0), ("1.5", 1.5), ("64Mi", 64 * 2**20), ("1G", 1e9), ("1e3", 1e3)],
)
def test_quantity(text: str, value: float) -> None:
    assert contract.quantity(text) == value


def test_quantity_rejects_garbage() -> None:
    with pytest.raises(contract.LaunchError):
        contract.quantity("lots")
