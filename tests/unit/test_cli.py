"""The flowcraft command: exit codes, messages for bad input (never a traceback), JSON output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from flowcraft import __version__
from flowcraft.cli import UsageError, apply_params, main
from flowcraft.model import load_flow

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PARALLEL = str(EXAMPLES / "parallel.yaml")
FAST = ["--param", "seconds=0.05"]


def flowcraft(*args: str) -> subprocess.CompletedProcess[str]:
    """The real console entry point, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-c", "from flowcraft.cli import main; raise SystemExit(main())", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"flowcraft {__version__}"


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "run" in capsys.readouterr().err


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", PARALLEL]) == 0
    assert capsys.readouterr().out == "ok: flow parallel: 5 nodes, 6 edges\n"


def test_validate_reports_every_problem_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: flowcraft.io/v1alpha1\nkind: Flow\nmetadata: {name: bad}\n"
        "spec:\n  nodes: [{id: a, uses: nope}]\n  edges: [{source: a, target: zz}]\n"
    )
    proc = flowcraft("validate", str(bad))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"flowcraft: error: invalid flow ({bad}): 2 problems")
    assert "spec.nodes[0].uses" in proc.stderr
    assert "spec.edges[0].target" in proc.stderr


@pytest.mark.parametrize("command", ["run", "validate"])
def test_missing_flow_file(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "no/such/flow.yaml"]) == 2
    assert capsys.readouterr().err == (
        "flowcraft: error: flow file 'no/such/flow.yaml' does not exist\n"
    )


def test_invalid_yaml_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec: [unclosed\n")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flowcraft: error: ")
    assert "not valid YAML/JSON at line" in err


def test_run_succeeds_and_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", PARALLEL, *FAST]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("flow parallel: Succeeded in ")
    for node in ("start-parallel", "task-1", "task-2", "task-3", "gather"):
        assert f"{node} started" in captured.err
        assert f"{node} succeeded in " in captured.err
        assert any(line.split()[:2] == [node, "Succeeded"] for line in captured.out.splitlines())


def test_run_output_json_is_the_final_context(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", PARALLEL, *FAST, "--output", "json", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    context = json.loads(captured.out)
    gather = {f"t{n}": {"data": f"Data from Task {n}"} for n in (1, 2, 3)}
    assert context["_outputs.gather"] == gather
    assert context["gather"] == gather
    for node in ("start-parallel", "task-1", "task-2", "task-3"):
        assert context[f"_outputs.{node}"] == context[node]
    assert context["_outputs.task-2"] == {"data": "Data from Task 2"}


def test_run_failed_flow_exits_1_and_keeps_its_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", str(EXAMPLES / "failing-branch.yaml"), "--workdir", str(tmp_path)])
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("flow failing-branch: Failed in ")
    assert "bad failed after 1 attempt: RuntimeError: this branch is broken on purpose" in (
        captured.err
    )
    runs = list(tmp_path.iterdir())
    assert len(runs) == 1
    assert (runs[0] / "nodes" / "bad" / "1" / "log.txt").is_file()


FAILING = str(EXAMPLES / "failing-branch.yaml")
BROKEN = "node 'bad' failed after 1 attempt: RuntimeError: this branch is broken on purpose"


def test_run_quiet_json_of_a_failing_flow_still_reports_the_errors_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", FAILING, "--output", "json", "-q"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["_outputs.good"] == {"node": "good"}
    assert captured.err == f"flowcraft: flow failing-branch Failed\n  error: {BROKEN}\n"


def test_run_text_summary_on_stdout_errors_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", FAILING]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("flow failing-branch: Failed in ")
    assert "error:" not in captured.out
    assert f"  error: {BROKEN}\n" in captured.err


def test_run_output_result_is_the_whole_result_as_flowcraft_shapes_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", FAILING, "--output", "result", "-q"]) == 1
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    # flowcraft's WorkflowResult: status, context, serializedContext, errors (WorkflowError).
    assert result["status"] == "failed"
    assert json.loads(result["serializedContext"]) == result["context"]
    assert result["context"]["_outputs.good"] == {"node": "good"}
    (error,) = result["errors"]
    assert error["message"] == BROKEN
    assert (error["nodeId"], error["name"], error["isFatal"]) == ("bad", "FlowcraftError", False)
    assert error["timestamp"].endswith("Z")
    # Beyond it: our phase and per-node status.
    assert result["phase"] == "Failed"
    assert result["flow"] == "failing-branch"
    assert result["nodes"]["bad"]["phase"] == "Failed"
    assert result["nodes"]["bad"]["message"].startswith("RuntimeError: this branch is broken")
    assert result["nodes"]["good"] | {"startedAt": "", "finishedAt": ""} == {
        "phase": "Succeeded", "attempts": 1, "startedAt": "", "finishedAt": "",
    }  # fmt: skip
    assert BROKEN in captured.err


def test_run_output_result_of_a_successful_flow(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", PARALLEL, *FAST, "--output", "result", "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    result = json.loads(captured.out)
    assert (result["status"], result["phase"], result["errors"]) == ("completed", "Succeeded", [])
    assert set(result["nodes"]) == {"start-parallel", "task-1", "task-2", "task-3", "gather"}


def test_run_of_a_suspended_flow_runs_it_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = tmp_path / "held.yaml"
    flow.write_text(
        textwrap.dedent(
            """
            apiVersion: flowcraft.io/v1alpha1
            kind: Flow
            metadata: {name: held}
            spec:
              suspend: true
              functions: {ok: {script: "def run(ctx):\n    return 1\n"}}
              nodes: [{id: a, uses: ok}]
            """
        )
    )
    assert main(["run", str(flow), "--output", "json", "-q"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["a"] == 1
    assert captured.err == (
        "warning: spec.suspend: true is ignored by flowcraft run (the flow runs now; on a "
        "cluster it would wait until spec.suspend is set to false)\n"
    )


def test_run_retries_show_in_progress(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(EXAMPLES / "retry-fallback.yaml")]) == 0
    err = capsys.readouterr().err
    assert (
        "fetch attempt 1 failed: ConnectionError: upstream unavailable (attempt 1); retrying in"
        in (err)
    )
    assert "fetch started (attempt 3)" in err
    assert "fetch failed after 3 attempts" in err


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("noequals", "--param 'noequals': expected [NODE.]KEY=VALUE"),
        ("=1", "--param '=1': expected [NODE.]KEY=VALUE"),
        ("task-9.seconds=1", "--param 'task-9.seconds=1': flow 'parallel' has no node 'task-9'"),
        ("task-1.=1", "--param 'task-1.=1': missing KEY after 'task-1.'"),
    ],
)
def test_bad_param(param: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", PARALLEL, "--param", param]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"flowcraft: error: {message}")


def test_params_override_everywhere_or_per_node() -> None:
    flow = load_flow(PARALLEL)
    changed = apply_params(flow, ["seconds=0.5", "task-1.seconds=3", "task-2.label=plain text"])
    params = {node.id: node.params for node in changed.spec.nodes}
    assert params["task-1"] == {"task": 1, "seconds": 3}
    assert params["task-2"] == {"task": 2, "seconds": 0.5, "label": "plain text"}
    assert params["gather"] == {"seconds": 0.5}
    assert flow.spec.node("task-1").params["seconds"] == 2.0  # the original is untouched


def test_apply_params_rejects_unknown_node() -> None:
    with pytest.raises(UsageError, match="has no node 'x'"):
        apply_params(load_flow(PARALLEL), ["x.y=1"])


def test_blueprint_with_functions_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blueprint = {
        "id": "hello-blueprint",
        "nodes": [{"id": "a", "uses": "hello"}, {"id": "b", "uses": "hello"}],
        "edges": [{"source": "a", "target": "b"}],
    }
    (tmp_path / "bp.json").write_text(json.dumps(blueprint))
    (tmp_path / "fns.yaml").write_text(
        "hello:\n  script: |\n    def run(ctx):\n        return 'hello from ' + ctx.node_id\n"
    )
    args = [str(tmp_path / "bp.json"), "--functions", str(tmp_path / "fns.yaml")]
    assert main(["validate", *args]) == 0
    assert main(["run", *args, "--output", "json", "-q"]) == 0
    out = capsys.readouterr().out
    context = json.loads(out[out.index("{") :])
    assert context["b"] == "hello from b"


def test_blueprint_without_functions_is_explained(tmp_path: Path) -> None:
    (tmp_path / "bp.json").write_text(json.dumps({"id": "x", "nodes": [], "edges": []}))
    proc = flowcraft("validate", str(tmp_path / "bp.json"))
    assert proc.returncode == 2
    assert "pass a functions file" in proc.stderr
    assert "Traceback" not in proc.stderr


HELLO_BLUEPRINT = {
    "id": "hello-context",
    "nodes": [{"id": "a", "uses": "greet", "label": "first"}],
    "edges": [],
}
GREET = textwrap.dedent("""\
    greet:
      script: |
        def run(ctx):
            return ctx.get('greeting') + ' ' + ctx.node_id
    """)


def blueprint_args(tmp_path: Path, context: str | None = None) -> list[str]:
    (tmp_path / "bp.json").write_text(json.dumps(HELLO_BLUEPRINT))
    (tmp_path / "fns.yaml").write_text(GREET)
    args = [str(tmp_path / "bp.json"), "--functions", str(tmp_path / "fns.yaml")]
    if context is not None:
        (tmp_path / "ctx.json").write_text(context)
        args += ["--initial-context", str(tmp_path / "ctx.json")]
    return args


def test_run_with_initial_context(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = blueprint_args(tmp_path, '{"greeting": "hi", "n": 1}')
    assert main(["run", *args, "--output", "json", "-q"]) == 0
    captured = capsys.readouterr()
    context = json.loads(captured.out)
    assert context["greeting"] == "hi"
    assert context["n"] == 1
    assert context["a"] == "hi a"
    # The blueprint's unknown node key is dropped and said so, even with -q.
    assert captured.err == "warning: nodes[0].label: ignored (not part of the blueprint format)\n"


@pytest.mark.parametrize("command", ["run", "validate"])
def test_initial_context_that_is_not_an_object(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = blueprint_args(tmp_path, "[1, 2]")
    assert main([command, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flowcraft: error: ")
    assert f"initial context file {str(tmp_path / 'ctx.json')!r} must hold a JSON/YAML object" in (
        err
    )
    assert "got a list" in err


def test_missing_initial_context_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [*blueprint_args(tmp_path), "--initial-context", "no/such.json"]
    assert main(["run", *args]) == 2
    assert capsys.readouterr().err == (
        "flowcraft: error: initial context file 'no/such.json' does not exist\n"
    )


def test_initial_context_help_states_the_precedence(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("run", "submit"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert "--initial-context FILE" in out
        assert "merged over the manifest's spec.context, the file winning" in out


def test_validate_prints_yaml_trap_warnings_on_stderr(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "apiVersion: flowcraft.io/v1alpha1\nkind: Flow\nmetadata: {name: trap}\nspec:\n"
        "  functions: {t: {script: 'def run(ctx): return 1'}}\n"
        "  nodes:\n    - {id: a, uses: t, params: {n: 1, ok: 'y'}}\n"
    )
    proc = flowcraft("validate", str(flow))
    assert proc.returncode == 0
    assert proc.stdout == "ok: flow trap: 1 node, 0 edges\n"
    assert proc.stderr == (
        "warning: spec.nodes[0].params.n (line 7): unquoted key 'n' is read as the boolean "
        'false by kubectl (YAML 1.1) and becomes the key "false"; quote it: "n"\n'
    )


def test_submit_sends_the_initial_context_and_prints_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio  # noqa: PLC0415

    from flowcraft import cli_cluster  # noqa: PLC0415

    sent: list[dict[str, Any]] = []

    class FakeApi:
        async def create_flow(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
            sent.append(body)
            return body

    def on_cluster(args: Any, work: Any) -> Any:
        return asyncio.run(work(FakeApi(), "default"))

    monkeypatch.setattr(cli_cluster, "_on_cluster", on_cluster)
    args = blueprint_args(tmp_path, "greeting: yes\n")
    assert main(["submit", *args, "--context", "kube-ctx"]) == 0
    captured = capsys.readouterr()
    assert sent[0]["spec"]["context"] == {"greeting": True}
    assert sent[0]["spec"]["failFast"] is False
    assert "flow.flowcraft.io/hello-context created (namespace default)" in captured.out
    assert "warning: nodes[0].label: ignored" in captured.err
    assert f"warning: greeting ({tmp_path / 'ctx.json'}, line 1): unquoted 'yes'" in captured.err


def node_processes_under(workdir: Path) -> list[int]:
    """Live processes whose FLOWCRAFT_IN points into ``workdir`` (read from /proc)."""
    found = []
    marker = f"FLOWCRAFT_IN={workdir}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ:
            found.append(int(entry.name))
    return found


SLOW_PARALLEL = """
apiVersion: flowcraft.io/v1alpha1
kind: Flow
metadata: {name: parallel}
spec:
  functions:
    slow:
      script: |
        import time
        def run(ctx):
            time.sleep(120)
  nodes:
    - {id: task-1, uses: slow}
    - {id: task-2, uses: slow}
    - {id: task-3, uses: slow}
"""


def test_ctrl_c_cancels_the_flow_and_kills_its_nodes(tmp_path: Path) -> None:
    # Tasks that outlive any start-up delay on a busy machine: all three are running when
    # the interrupt comes, whatever the load (the reference flow's 1 s task could end first).
    flow = tmp_path / "slow.yaml"
    flow.write_text(SLOW_PARALLEL)
    work = tmp_path / "work"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from flowcraft.cli import main; raise SystemExit(main())",
            "run",
            str(flow),
            "--workdir",
            str(work),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "task-1 started" in line:
            break
    # "started" is printed when the engine starts the node; wait for the processes themselves.
    deadline = time.monotonic() + 60
    while len(node_processes_under(work)) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(node_processes_under(work)) == 3, "the three tasks should be running now"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, "".join(seen) + err
    assert "Traceback" not in err
    assert "interrupted: cancelling the flow" in err
    assert "task-1 cancelled: interrupted by the user (Ctrl-C)" in err
    assert out.startswith("flow parallel: Cancelled in ")
    assert node_processes_under(work) == []


def test_operator_command_is_wired(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["operator", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--namespace" in out
    assert "--kubeconfig" in out
    assert "--pod-creation-timeout" in out


def test_the_pod_creation_timeout_flag_defaults_to_300_s_or_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse  # noqa: PLC0415

    from flowcraft.drivers.kubernetes.entry import add_arguments  # noqa: PLC0415

    def parse(*args: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        return parser.parse_args(list(args))

    monkeypatch.delenv("FLOWCRAFT_POD_CREATION_TIMEOUT", raising=False)
    assert parse().pod_creation_timeout == 300.0
    assert parse("--pod-creation-timeout=5").pod_creation_timeout == 5.0
    monkeypatch.setenv("FLOWCRAFT_POD_CREATION_TIMEOUT", "42")
    assert parse().pod_creation_timeout == 42.0
    for bad in ("0", "-1", "soon", "inf"):
        with pytest.raises(SystemExit):
            parse(f"--pod-creation-timeout={bad}")
    assert "positive number of seconds" in capsys.readouterr().err


def test_cli_import_stays_light() -> None:
    """Building the parser must not load the model, the runner or the operator's stack."""
    heavy = "{'pydantic', 'yaml', 'cel', 'kopf', 'kubernetes', 'asyncio'}"
    code = (
        "import sys, flowcraft.cli; flowcraft.cli._parser(); "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


BIG_RESULT_FLOW = """\
apiVersion: flowcraft.io/v1alpha1
kind: Flow
metadata: {name: big}
spec:
  functions:
    make:
      script: |
        def run(ctx):
            return "x" * ctx.params["size"]
    measure:
      script: |
        def run(ctx):
            return len(ctx.input)
  nodes:
    - {id: a, uses: make, params: {size: SIZE}}
    - {id: b, uses: measure}
  edges:
    - {source: a, target: b}
"""


def test_run_passes_results_up_to_the_clusters_1_mib_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`flowcraft run` once kept the old 4 KiB cap: a 100 KB result failed locally only."""
    flow = tmp_path / "big.yaml"
    flow.write_text(BIG_RESULT_FLOW.replace("SIZE", "100000"))
    assert main(["run", str(flow), "-q", "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["_outputs.b"] == 100000


def test_run_fails_a_result_over_1_mib_naming_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = tmp_path / "big.yaml"
    flow.write_text(BIG_RESULT_FLOW.replace("SIZE", str(1024 * 1024)))  # + 2 quotes
    assert main(["run", str(flow), "-q", "--output", "json"]) == 1
    err = capsys.readouterr().err
    assert "OutputTooLarge" in err
    assert "1048578 bytes, over the limit of 1048576 bytes" in err


def test_run_into_a_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    """`flowcraft run ... --output json | head -c 10` once ended in a BrokenPipeError traceback.

    The context printed is ~600 KB, more than a pipe holds, so the writer always meets the
    closed pipe."""
    flow = tmp_path / "big.yaml"
    flow.write_text(BIG_RESULT_FLOW.replace("SIZE", "300000"))
    flowcraft = Path(sys.executable).parent / "flowcraft"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "operator")}
    proc = subprocess.run(
        f"{flowcraft} run {flow} -q --output json | head -c 10; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert proc.stdout == '{\n  "_outp'
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 141
