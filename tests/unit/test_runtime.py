"""The node runtime contract: files and env in, one JSON result file and an exit code out."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from flowcraft.contract import encode_error
from flowcraft.runtime import (
    EXIT_FUNCTION_FAILED,
    EXIT_OK,
    EXIT_SETUP_FAILED,
    main,
    parse_result,
)

pytestmark = pytest.mark.unit


class Node:
    """One prepared node directory plus the environment pointing at it."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.in_dir = tmp_path / "in"
        self.in_dir.mkdir()
        self.out = tmp_path / "out.json"
        self.env = {
            "FLOWCRAFT_NODE": "node-a",
            "FLOWCRAFT_ATTEMPT": "2",
            "FLOWCRAFT_IN": str(self.in_dir),
            "FLOWCRAFT_OUT": str(self.out),
        }
        self._monkeypatch = monkeypatch
        monkeypatch.delenv("FLOWCRAFT_OUT_LIMIT", raising=False)

    def script(self, source: str) -> Node:
        self.write("function.json", {"script": textwrap.dedent(source)})
        return self

    def write(self, name: str, value: Any) -> None:
        path = self.in_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))

    def run(self) -> tuple[int, dict[str, Any]]:
        for key, value in self.env.items():
            self._monkeypatch.setenv(key, value)
        code = main()
        return code, json.loads(self.out.read_text())


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Node:
    return Node(tmp_path, monkeypatch)


def test_script_sees_params_input_and_context(node: Node) -> None:
    node.script(
        """
        def run(ctx):
            return {
                "node": ctx.node_id,
                "attempt": ctx.attempt,
                "params": ctx.params,
                "input": ctx.input,
                "a": ctx.get("_outputs.up"),
                "b": ctx.get("up"),
                "own_input": ctx.get("_inputs.node-a"),
                "missing": ctx.get("_outputs.nope"),
                "default": ctx.get("nope", 7),
            }
        """
    )
    node.write("params.json", {"k": 1})
    node.write("input.json", [1, 2])
    node.write("outputs/up.json", {"data": "x"})
    code, result = node.run()
    assert code == EXIT_OK
    assert result == {
        "output": {
            "node": "node-a",
            "attempt": 2,
            "params": {"k": 1},
            "input": [1, 2],
            "a": {"data": "x"},
            "b": {"data": "x"},
            "own_input": [1, 2],
            "missing": None,
            "default": 7,
        },
        "action": None,
    }


def test_missing_params_and_input_default_to_empty(node: Node) -> None:
    node.script("def run(ctx):\n    return [ctx.params, ctx.input]\n")
    assert node.run() == (EXIT_OK, {"output": [{}, None], "action": None})


def test_async_function_is_awaited(node: Node) -> None:
    node.script(
        """
        import asyncio
        async def run(ctx):
            await asyncio.sleep(0)
            return "done"
        """
    )
    assert node.run() == (EXIT_OK, {"output": "done", "action": None})


def test_python_callable(node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "mypkg_rt"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "fns.py").write_text("def double(ctx):\n    return ctx.params['n'] * 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    node.write("function.json", {"python": "mypkg_rt.fns:double"})
    node.write("params.json", {"n": 21})
    assert node.run() == (EXIT_OK, {"output": 42, "action": None})


def test_python_callable_missing_attribute_fails(node: Node) -> None:
    node.write("function.json", {"python": "json:nope", "name": "fn"})
    code, result = node.run()
    assert code == EXIT_FUNCTION_FAILED
    assert result["error"] == "FunctionError: function 'fn': module 'json' has no attribute 'nope'"


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ({"output": 1, "action": "left"}, {"output": 1, "action": "left"}),
        ({"output": {"a": 1}}, {"output": {"a": 1}, "action": None}),
        # Any other key makes it a plain output, envelope keys included.
        ({"output": 1, "other": 2}, {"output": {"output": 1, "other": 2}, "action": None}),
        ({"action": "x"}, {"output": {"action": "x"}, "action": None}),
    ],
)
def test_action_envelope_rule(node: Node, returned: Any, expected: Any) -> None:
    node.script(f"def run(ctx):\n    return {returned!r}\n")
    assert node.run() == (EXIT_OK, expected)


def test_non_string_action_fails(node: Node) -> None:
    node.script("def run(ctx):\n    return {'output': 1, 'action': 3}\n")
    code, result = node.run()
    assert code == EXIT_FUNCTION_FAILED
    assert "action that is not a string: 3" in result["error"]


def test_raising_function_reports_type_message_and_user_traceback(node: Node) -> None:
    node.script(
        """
        def run(ctx):
            return helper()

        def helper():
            raise ValueError("boom")
        """
    )
    code, result = node.run()
    assert code == EXIT_FUNCTION_FAILED
    assert result["error"] == "ValueError: boom"
    assert 'raise ValueError("boom")' in result["traceback"]
    assert "flowcraft/runtime" not in result["traceback"]


def test_script_without_run_fails(node: Node) -> None:
    node.script("x = 1\n")
    code, result = node.run()
    assert code == EXIT_FUNCTION_FAILED
    assert "does not define run(ctx)" in result["error"]


def test_script_syntax_error_fails_as_function_error(node: Node) -> None:
    node.script("def run(ctx)\n    return 1\n")
    code, result = node.run()
    assert code == EXIT_FUNCTION_FAILED
    assert result["error"].startswith("SyntaxError:")


@pytest.mark.parametrize("value", ["{1, 2}", "float('nan')", "object()"])
def test_output_not_json_is_a_clear_error(node: Node, value: str) -> None:
    node.script(f"def run(ctx):\n    return {value}\n")
    code, result = node.run()
    assert code == EXIT_FUNCTION_FAILED
    assert result["error"].startswith("OutputNotJSON: node 'node-a' returned an output")


def test_output_over_limit_names_limit_and_size(node: Node) -> None:
    node.env["FLOWCRAFT_OUT_LIMIT"] = "300"
    node.script("def run(ctx):\n    return 'x' * 400\n")
    code, result = node.run()
    assert code == EXIT_FUNCTION_FAILED
    size = len(json.dumps("x" * 400))  # as stored: the output's JSON (no writes)
    assert result["error"] == (
        f"OutputTooLarge: node 'node-a' result (output and context writes) is {size} bytes, "
        "over the limit of 300 bytes (FLOWCRAFT_OUT_LIMIT; a result is stored in one "
        "ConfigMap): write large data to your own storage and return a reference to it"
    )


def test_output_within_limit_passes(node: Node) -> None:
    node.env["FLOWCRAFT_OUT_LIMIT"] = "4096"
    node.script("def run(ctx):\n    return 'x' * 4000\n")
    code, _ = node.run()
    assert code == EXIT_OK
    assert len(node.out.read_bytes()) <= 4096


def test_error_result_is_trimmed_to_the_limit(node: Node) -> None:
    node.env["FLOWCRAFT_OUT_LIMIT"] = "120"
    node.script(
        """
        def run(ctx, depth=0):
            if depth < 20:
                return run(ctx, depth + 1)
            raise RuntimeError("deep")
        """
    )
    code, _ = node.run()
    assert code == EXIT_FUNCTION_FAILED
    assert len(node.out.read_bytes()) <= 120
    assert json.loads(node.out.read_text())["error"] == "RuntimeError: deep"


def test_encode_error_cuts_a_long_message_when_needed() -> None:
    text = encode_error("E: " + "m" * 500, "tb line", limit=64)
    assert len(text.encode()) <= 64
    assert json.loads(text)["error"].endswith("...")


def test_missing_function_file_is_a_setup_error(node: Node) -> None:
    code, result = node.run()
    assert code == EXIT_SETUP_FAILED
    assert result["error"].startswith("SetupError: ")
    assert "function.json is missing" in result["error"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("function.json", '{"image": "x"}', 'must be an object with a "script" or a "python"'),
        ("function.json", '{"python": "nocolon"}', 'must look like "pkg.module:function"'),
        ("params.json", "{bad", "params.json at "),
        ("params.json", "[1]", "must hold a JSON object, got list"),
    ],
)
def test_malformed_files_are_setup_errors(
    node: Node, name: str, content: str, message: str
) -> None:
    node.script("def run(ctx):\n    return 1\n")
    (node.in_dir / name).write_text(content)
    code, result = node.run()
    assert code == EXIT_SETUP_FAILED
    assert message in result["error"]


def test_bad_attempt_and_limit_env_are_setup_errors(node: Node) -> None:
    node.script("def run(ctx):\n    return 1\n")
    node.env["FLOWCRAFT_ATTEMPT"] = "two"
    assert "FLOWCRAFT_ATTEMPT must be an integer, got 'two'" in node.run()[1]["error"]
    node.env["FLOWCRAFT_ATTEMPT"] = "1"
    node.env["FLOWCRAFT_OUT_LIMIT"] = "-5"
    assert "FLOWCRAFT_OUT_LIMIT must be positive" in node.run()[1]["error"]


def test_missing_out_env_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWCRAFT_OUT", raising=False)
    assert main() == EXIT_SETUP_FAILED


def test_subprocess_entry_point(tmp_path: Path) -> None:
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    script = "def run(ctx):\n    ctx.log('working')\n    print('to stdout')\n    return 'ok'\n"
    (in_dir / "function.json").write_text(json.dumps({"script": script}))
    out = tmp_path / "out.json"
    env = {"FLOWCRAFT_NODE": "n", "FLOWCRAFT_IN": str(in_dir), "FLOWCRAFT_OUT": str(out)}
    proc = subprocess.run(
        [sys.executable, "-m", "flowcraft.runtime"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert proc.stderr == "working\n"
    assert proc.stdout == "to stdout\n"
    assert parse_result(out.read_text()) == parse_result('{"output": "ok", "action": null}')


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("", {"output": None, "action": None, "error": None}),
        ('{"output": 1, "action": "a"}', {"output": 1, "action": "a", "error": None}),
        ('{"error": "E: m", "traceback": "t"}', {"output": None, "error": "E: m"}),
        ('{"output": 1, "x": 2}', {"output": {"output": 1, "x": 2}, "error": None}),
        ('{"error": 5}', {"output": {"error": 5}, "error": None}),
        ("[1, 2]", {"output": [1, 2], "error": None}),
        ("plain text\n", {"output": "plain text", "error": None}),
    ],
)
def test_parse_result_reads_any_image(text: str, fields: dict[str, Any]) -> None:
    result = parse_result(text)
    for key, value in fields.items():
        assert getattr(result, key) == value
    assert result.ok is (fields["error"] is None)
