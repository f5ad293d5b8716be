"""The runtime's result channel: large results as a log block, and processes that end
without a result (os._exit, sys.exit, a signal) failing in the runtime and the local runner."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flowcraft.contract import NO_RESULT, parse_result, read_frame
from flowcraft.drivers.local import LocalRunner
from flowcraft.model import load_flow

pytestmark = pytest.mark.unit

OPERATOR = Path(__file__).resolve().parents[2] / "operator"


def _run_runtime(tmp_path: Path, source: str, **env: str) -> tuple[int, str, str]:
    """The runtime as a process (exit code, result file, stdout)."""
    in_dir = tmp_path / "in"
    in_dir.mkdir(exist_ok=True)
    (in_dir / "function.json").write_text(json.dumps({"script": textwrap.dedent(source)}))
    out = tmp_path / "out.json"
    full_env = {
        **os.environ,
        "PYTHONPATH": str(OPERATOR),
        "FLOWCRAFT_NODE": "n",
        "FLOWCRAFT_IN": str(in_dir),
        "FLOWCRAFT_OUT": str(out),
        **env,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "flowcraft.runtime"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode, out.read_text() if out.exists() else "", proc.stdout


def test_a_large_result_goes_to_stdout_and_the_reference_to_the_result_file(
    tmp_path: Path,
) -> None:
    code, text, stdout = _run_runtime(
        tmp_path,
        """
        import random, string, sys
        def run(ctx):
            print("before")
            sys.stdout = open("/dev/null", "w")  # the block still reaches the real stdout
            ctx.set("ctx", "y" * 300_000)
            rng = random.Random(3)
            return "".join(rng.choices(string.ascii_letters, k=700 * 1024))
        """,
        FLOWCRAFT_OUT_LIMIT="1048576",
        FLOWCRAFT_OUT_INLINE="4096",
    )
    assert code == 0
    assert len(text.encode()) <= 4096
    ref = parse_result(text).frame
    assert ref is not None
    result = parse_result(read_frame(ref, stdout))
    assert result.ok
    assert len(result.output) == 700 * 1024
    assert result.writes == ({"op": "set", "key": "ctx", "value": "y" * 300_000},)
    assert stdout.startswith("before\n")


def test_without_an_inline_limit_the_result_file_holds_everything(tmp_path: Path) -> None:
    code, text, stdout = _run_runtime(tmp_path, "def run(ctx):\n    return 'x' * 100_000\n")
    assert code == 0
    assert stdout == ""
    assert parse_result(text).output == "x" * 100_000


def test_an_error_fits_the_termination_message(tmp_path: Path) -> None:
    code, text, _ = _run_runtime(
        tmp_path,
        "def run(ctx):\n    raise ValueError('e' * 10_000)\n",
        FLOWCRAFT_OUT_LIMIT="1048576",
        FLOWCRAFT_OUT_INLINE="4096",
    )
    assert code == 1
    assert len(text.encode()) <= 4096
    assert (parse_result(text).error or "").startswith("ValueError: eee")


@pytest.mark.parametrize(
    "body",
    ["import os\n    os._exit(0)", "import sys\n    sys.exit(0)", "raise SystemExit"],
)
def test_exiting_without_a_result_leaves_no_result(tmp_path: Path, body: str) -> None:
    code, text, _ = _run_runtime(tmp_path, f"def run(ctx):\n    {body}\n")
    assert code == 0
    assert parse_result(text).error == NO_RESULT


def _local(tmp_path: Path, script: str) -> tuple[str, str]:
    manifest = (
        "apiVersion: flowcraft.io/v1alpha1\nkind: Flow\nmetadata: {name: t}\nspec:\n"
        "  functions:\n    f:\n      script: |\n"
        + textwrap.indent(textwrap.dedent(script), " " * 8)
        + "  nodes: [{id: a, uses: f}]\n"
    )
    result = asyncio.run(LocalRunner(load_flow(manifest), tmp_path / "run").run())
    return result.status.phase, result.status.nodes["a"].message or ""


def test_os_exit_zero_fails_locally(tmp_path: Path) -> None:
    phase, message = _local(tmp_path, "import os\ndef run(ctx):\n    os._exit(0)\n")
    assert phase == "Failed"
    assert "exited without a result" in message


def test_a_node_killing_itself_fails_locally_naming_the_signal(tmp_path: Path) -> None:
    phase, message = _local(
        tmp_path, "import os, signal\ndef run(ctx):\n    os.kill(os.getpid(), signal.SIGTERM)\n"
    )
    assert phase == "Failed"
    assert message.startswith("node process killed by SIGTERM without a result")


def test_a_700_kib_output_reaches_the_next_node_locally(tmp_path: Path) -> None:
    manifest = textwrap.dedent(
        """\
        apiVersion: flowcraft.io/v1alpha1
        kind: Flow
        metadata: {name: t}
        spec:
          functions:
            big: {script: "def run(ctx):\\n    return 'x' * (700 * 1024)\\n"}
            count: {script: "def run(ctx):\\n    return [len(ctx.input), len(ctx.get('big'))]\\n"}
          nodes: [{id: big, uses: big}, {id: next, uses: count}]
          edges: [{source: big, target: next}]
        """
    )
    result = asyncio.run(LocalRunner(load_flow(manifest), tmp_path / "run").run())
    assert result.status.phase == "Succeeded", result.status.nodes["next"].message
    assert result.outputs["next"] == [700 * 1024, 700 * 1024]
