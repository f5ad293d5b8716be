"""The local runner end to end: real node processes through the runtime, driven by the engine."""

from __future__ import annotations

import asyncio
import textwrap
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from flowcraft.cli import apply_params
from flowcraft.drivers.local import AttemptRecord, LocalRunner, RunResult
from flowcraft.model import Flow, FlowStatus, load_flow

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(flow: Flow, tmp_path: Path, **kwargs: Any) -> RunResult:
    runner = LocalRunner(flow, tmp_path / "run", **kwargs)
    return asyncio.run(runner.run())


def example(name: str) -> Flow:
    return load_flow(EXAMPLES / f"{name}.yaml")


def flow_yaml(body: str) -> Flow:
    head = "apiVersion: flowcraft.io/v1alpha1\nkind: Flow\nmetadata: {name: t}\n"
    return load_flow(head + textwrap.dedent(body))


def records(result: RunResult, node: str) -> list[AttemptRecord]:
    return [r for r in result.attempts if r.node == node]


def phases(result: RunResult) -> dict[str, str]:
    return {node_id: node.phase for node_id, node in result.status.nodes.items()}


def test_parallel_reference_flow(tmp_path: Path) -> None:
    result = run(example("parallel"), tmp_path)

    assert result.status.phase == "Succeeded"
    assert set(phases(result).values()) == {"Succeeded"}
    expected = {f"t{n}": {"data": f"Data from Task {n}"} for n in (1, 2, 3)}
    assert result.outputs["gather"] == expected
    assert result.context["_outputs.gather"] == expected
    assert result.context["gather"] == expected
    for n in (1, 2, 3):
        assert result.context[f"_outputs.task-{n}"] == {"data": f"Data from Task {n}"}

    tasks = [records(result, f"task-{n}")[0] for n in (1, 2, 3)]
    by_finish = sorted(tasks, key=lambda r: r.finished_at)
    assert [r.node for r in by_finish] == ["task-2", "task-3", "task-1"]
    # The three branches ran at the same time: their intervals share a common instant.
    assert max(r.started_at for r in tasks) < min(r.finished_at for r in tasks)
    start, gather = records(result, "start-parallel")[0], records(result, "gather")[0]
    assert all(start.finished_at <= r.started_at for r in tasks)
    assert all(r.finished_at <= gather.started_at for r in tasks)


def test_conditional_takes_the_big_branch(tmp_path: Path) -> None:
    result = run(example("conditional"), tmp_path)
    assert result.status.phase == "Succeeded"
    assert phases(result) == {
        "check": "Succeeded",
        "manual-review": "Succeeded",
        "auto-approve": "Skipped",
        "report": "Succeeded",
    }
    assert result.outputs["manual-review"] == {"approved": 250, "by": "human"}
    assert result.outputs["report"] == {"decided_by": ["manual-review"]}
    assert records(result, "auto-approve") == []


def test_conditional_takes_the_small_branch_with_a_param(tmp_path: Path) -> None:
    result = run(apply_params(example("conditional"), ["check.amount=5"]), tmp_path)
    assert result.status.phase == "Succeeded"
    assert phases(result)["manual-review"] == "Skipped"
    assert result.outputs["auto-approve"] == {"approved": 5, "by": "robot"}
    assert result.outputs["report"] == {"decided_by": ["auto-approve"]}


def test_retry_then_fallback(tmp_path: Path) -> None:
    result = run(example("retry-fallback"), tmp_path)
    assert result.status.phase == "Succeeded"
    fetch = result.status.nodes["fetch"]
    assert fetch.phase == "Failed"
    assert fetch.attempts == 3
    assert fetch.message == "recovered by fallback 'use-cache'"
    attempts = records(result, "fetch")
    assert attempts[-1].message is not None
    assert "ConnectionError: upstream unavailable (attempt 3)" in attempts[-1].message
    assert [r.attempt for r in attempts] == [1, 2, 3]
    assert all(r.outcome == "failed" for r in attempts)
    # Each retry starts only after the previous attempt ended.
    assert all(a.finished_at <= b.started_at for a, b in pairwise(attempts))
    assert result.status.nodes["use-cache"].phase == "Succeeded"
    fallback = records(result, "use-cache")[0]
    assert attempts[-1].finished_at <= fallback.started_at
    assert result.outputs["publish"] == {
        "published": {"source": "cache", "value": 42},
        "fetch": None,
    }


def test_failing_branch_lets_the_other_branch_finish(tmp_path: Path) -> None:
    result = run(example("failing-branch"), tmp_path)
    assert result.status.phase == "Failed"
    status = result.status.nodes
    assert status["bad"].phase == "Failed"
    assert "RuntimeError: this branch is broken on purpose" in (status["bad"].message or "")
    assert status["good"].phase == "Succeeded"
    assert status["good-after"].phase == "Succeeded"
    assert status["bad-after"].phase not in ("Running", "Succeeded")
    assert records(result, "bad-after") == []
    assert any("bad" in error for error in result.status.errors)
    # The failure left a log with the traceback for the user.
    log = records(result, "bad")[0].log.read_text()
    assert "broken on purpose" in log


def test_fail_fast_starts_nothing_after_a_failure(tmp_path: Path) -> None:
    flow = example("failing-branch")
    flow = flow.model_copy(update={"spec": flow.spec.model_copy(update={"fail_fast": True})})
    result = run(flow, tmp_path)
    assert result.status.phase == "Failed"
    assert records(result, "good-after") == []
    assert records(result, "bad-after") == []


SLEEPER = """
spec:
  functions:
    sleep:
      script: |
        import time
        def run(ctx):
            time.sleep(ctx.params["seconds"])
            return "woke up"
  nodes:
    - id: slow
      uses: sleep
      params: {seconds: 60}
      config: {timeout: 300}
"""


def test_timeout_kills_the_node(tmp_path: Path) -> None:
    result = run(flow_yaml(SLEEPER), tmp_path)
    assert result.status.phase == "Failed"
    node = result.status.nodes["slow"]
    assert node.phase == "Failed"
    assert "timed out after 0.3 s" in (node.message or "")
    assert [r.outcome for r in records(result, "slow")] == ["timed-out"]


def test_cancel_stops_running_nodes(tmp_path: Path) -> None:
    flow = flow_yaml(SLEEPER.replace("config: {timeout: 300}", ""))
    runner: LocalRunner

    def on_status(status: FlowStatus) -> None:
        if status.nodes.get("slow") and status.nodes["slow"].phase == "Running":
            runner.cancel("test says stop")

    runner = LocalRunner(flow, tmp_path / "run", on_status=on_status)
    result = asyncio.run(runner.run())
    assert result.status.phase == "Cancelled"
    assert result.status.nodes["slow"].phase == "Cancelled"
    assert "slow" not in result.outputs


def test_python_function_from_the_flow_directory(tmp_path: Path) -> None:
    (tmp_path / "mymod_local.py").write_text("def hello(ctx):\n    return 'hi ' + ctx.node_id\n")
    flow = flow_yaml(
        """
        spec:
          functions:
            hello: {python: "mymod_local:hello"}
          nodes: [{id: greet, uses: hello}]
        """
    )
    result = run(flow, tmp_path, pythonpath=[str(tmp_path)])
    assert result.status.phase == "Succeeded"
    assert result.outputs["greet"] == "hi greet"


BIG = """
spec:
  functions:
    big:
      script: |
        def run(ctx):
            return "x" * (1024 * 1024 - 1)  # its JSON: 2 bytes of quotes over 1 MiB
  nodes: [{id: big, uses: big}]
"""


def test_cluster_output_limit_applies_locally(tmp_path: Path) -> None:
    result = run(flow_yaml(BIG), tmp_path)
    assert result.status.phase == "Failed"
    message = result.status.nodes["big"].message or ""
    assert "OutputTooLarge" in message
    assert "is 1048577 bytes, over the limit of 1048576 bytes" in message
    assert "write large data to your own storage" in message


def test_a_result_of_exactly_the_limit_passes(tmp_path: Path) -> None:
    exact = BIG.replace("1024 * 1024 - 1", "1024 * 1024 - 2")
    result = run(flow_yaml(exact), tmp_path)
    assert result.status.phase == "Succeeded", result.status.nodes["big"].message
    assert len(result.outputs["big"]) == 1024 * 1024 - 2


def test_output_limit_can_be_lifted(tmp_path: Path) -> None:
    result = run(flow_yaml(BIG), tmp_path, out_limit=None)
    assert result.status.phase == "Succeeded"
    assert result.outputs["big"] == "x" * (1024 * 1024 - 1)


CONTAINER = """
spec:
  functions:
    shell: {image: "busybox:1.36", command: ["sh", "-c"], args: ["echo hi"]}
  nodes: [{id: box, uses: shell}]
"""


def test_container_without_docker_fails_clearly(tmp_path: Path) -> None:
    result = run(flow_yaml(CONTAINER), tmp_path, docker="no-such-docker-binary")
    assert result.status.phase == "Failed"
    assert result.status.nodes["box"].message == (
        "container function 'shell' needs a docker daemon: "
        "'no-such-docker-binary' is not installed (not found on PATH)"
    )


def test_container_with_unreachable_daemon_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    fake.chmod(0o755)
    result = run(flow_yaml(CONTAINER), tmp_path, docker=str(fake))
    message = result.status.nodes["box"].message or ""
    assert message.startswith("container function 'shell' needs a docker daemon: ")
    assert "Cannot connect to the Docker daemon" in message


def test_docker_argv_follows_kubernetes_command_semantics(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    # A docker stand-in: `info` answers, `run` records its argv and writes a result.
    fake.write_text(
        textwrap.dedent(
            f"""\
            #!/bin/sh
            if [ "$1" = info ]; then echo 27.0; exit 0; fi
            echo "$@" > {tmp_path}/argv.txt
            for a in "$@"; do
              case "$a" in *:/dev/termination-log) out="${{a%%:/dev/termination-log}}";; esac
            done
            echo '{{"output": "from container", "action": null}}' > "$out"
            """
        )
    )
    fake.chmod(0o755)
    result = run(flow_yaml(CONTAINER), tmp_path, docker=str(fake))
    assert result.status.phase == "Succeeded", result.status.nodes["box"].message
    assert result.outputs["box"] == "from container"
    argv = (tmp_path / "argv.txt").read_text().split()
    assert argv[0] == "run"
    assert argv[argv.index("--entrypoint") + 1] == "sh"
    assert argv[-4:] == ["busybox:1.36", "-c", "echo", "hi"]
    assert "FLOWCRAFT_OUT=/dev/termination-log" in argv
    assert "FLOWCRAFT_OUT_LIMIT=1048576" in argv


def test_run_dir_follows_the_runtime_contract(tmp_path: Path) -> None:
    result = run(example("parallel"), tmp_path)
    attempt = result.run_dir / "nodes" / "gather" / "1"
    # No context.json: the flow has no initial context (as a pod mounts none then).
    assert sorted(p.name for p in (attempt / "in").iterdir()) == [
        "function.json",
        "input.json",
        "outputs",
        "params.json",
        "view.json",
        "writes",
    ]
    visible = sorted(p.name for p in (attempt / "in" / "outputs").iterdir())
    assert visible == [f"{n}.json" for n in ("start-parallel", "task-1", "task-2", "task-3")]
    assert (attempt / "out" / "result.json").is_file()
    assert (result.run_dir / "outputs" / "gather.json").is_file()
