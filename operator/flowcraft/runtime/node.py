"""Run one node attempt: read the contract's inputs, call the user's function, write the result.

Why it is shaped this way: everything a node needs arrives as files and environment variables
(mountable from ConfigMaps), and everything it reports leaves as one small JSON file plus an
exit code, so the same process works as a local subprocess and as a pod's container. User code
runs in this process only; drivers never import it.
"""

from __future__ import annotations

import importlib
import json
import linecache
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from flowcraft.runtime.contract import (
    ENV_ATTEMPT,
    ENV_IN,
    ENV_NODE,
    ENV_OUT,
    ENV_OUT_LIMIT,
    EXIT_FUNCTION_FAILED,
    EXIT_OK,
    EXIT_SETUP_FAILED,
    FUNCTION_FILE,
    INPUT_FILE,
    OUTPUTS_DIR,
    PARAMS_FILE,
    encode_error,
    encode_success,
)

_TRACEBACK_LINES = 12
_MISSING = object()


class SetupError(Exception):
    """The node's environment or input files break the contract (exit code 2)."""


class FunctionError(Exception):
    """The function's result breaks the contract (exit code 1), e.g. output not JSON."""


class NodeContext:
    """The ``ctx`` argument of a node function."""

    def __init__(
        self,
        node_id: str,
        attempt: int,
        params: dict[str, Any],
        input: Any,
        outputs_dir: Path | None,
    ) -> None:
        self.node_id = node_id
        self.attempt = attempt
        self.params = params
        self.input = input
        self._outputs_dir = outputs_dir
        self._outputs: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        """A flowcraft context key: ``_outputs.<id>``, ``<id>`` or ``_inputs.<own id>``."""
        if key.startswith("_inputs."):
            return self.input if key[len("_inputs.") :] == self.node_id else default
        node = key[len("_outputs.") :] if key.startswith("_outputs.") else key
        value = self._output(node)
        return default if value is _MISSING else value

    def log(self, *parts: object) -> None:
        """Write one line to stderr (the node's log locally, the pod's log on the cluster)."""
        print(*parts, file=sys.stderr, flush=True)

    def _output(self, node: str) -> Any:
        if node in self._outputs:
            return self._outputs[node]
        # Node ids are DNS-1123 labels; anything else cannot name a file here.
        if self._outputs_dir is None or not node or "/" in node or node.startswith("."):
            return _MISSING
        path = self._outputs_dir / f"{node}.json"
        if not path.is_file():
            return _MISSING
        value = _read_json(path, f"output of node {node!r}")
        self._outputs[node] = value
        return value


def main() -> int:
    """Run the node described by the environment; return the process exit code."""
    out_path = os.environ.get(ENV_OUT)
    if not out_path:
        print(f"flowcraft runtime: {ENV_OUT} is not set", file=sys.stderr)
        return EXIT_SETUP_FAILED
    limit: int | None = None
    try:
        limit = _read_limit()
        ctx, function = _setup()
    except SetupError as err:
        return _fail(out_path, f"SetupError: {err}", "", limit, EXIT_SETUP_FAILED)

    try:
        output, action = _call(function, ctx)
    except Exception as err:
        # The one broad catch: anything the user's code raises (while its module loads or while
        # it runs) is that node's failure, reported through the contract rather than crashing.
        return _fail(
            out_path,
            f"{type(err).__name__}: {err}",
            _user_traceback(err),
            limit,
            EXIT_FUNCTION_FAILED,
        )

    try:
        text = encode_success(output, action)
    except (TypeError, ValueError) as err:
        message = f"OutputNotJSON: node {ctx.node_id!r} returned an output that is not JSON: {err}"
        return _fail(out_path, message, "", limit, EXIT_FUNCTION_FAILED)
    size = len(text.encode())
    if limit is not None and size > limit:
        message = (
            f"OutputTooLarge: node {ctx.node_id!r} result is {size} bytes, over the limit of "
            f"{limit} bytes ({ENV_OUT_LIMIT})"
        )
        return _fail(out_path, message, "", limit, EXIT_FUNCTION_FAILED)
    return _write(out_path, text, EXIT_OK)


def _setup() -> tuple[NodeContext, dict[str, Any]]:
    node_id = _require_env(ENV_NODE)
    in_dir = Path(_require_env(ENV_IN))
    attempt_text = os.environ.get(ENV_ATTEMPT, "1")
    try:
        attempt = int(attempt_text)
    except ValueError:
        raise SetupError(f"{ENV_ATTEMPT} must be an integer, got {attempt_text!r}") from None
    if not in_dir.is_dir():
        raise SetupError(f"{ENV_IN}={str(in_dir)!r} is not a directory")

    function_path = in_dir / FUNCTION_FILE
    if not function_path.is_file():
        raise SetupError(f"{function_path} is missing")
    function = _read_json(function_path, FUNCTION_FILE)
    if not isinstance(function, dict) or not (
        isinstance(function.get("script"), str) or isinstance(function.get("python"), str)
    ):
        raise SetupError(
            f'{function_path} must be an object with a "script" or a "python" string, '
            f"got {json.dumps(function)[:200]}"
        )
    if isinstance(function.get("python"), str) and ":" not in function["python"]:
        raise SetupError(
            f'{function_path}: "python" must look like "pkg.module:function", '
            f"got {function['python']!r}"
        )

    params_path = in_dir / PARAMS_FILE
    params = _read_json(params_path, PARAMS_FILE) if params_path.is_file() else {}
    if not isinstance(params, dict):
        raise SetupError(f"{params_path} must hold a JSON object, got {type(params).__name__}")
    input_path = in_dir / INPUT_FILE
    node_input = _read_json(input_path, INPUT_FILE) if input_path.is_file() else None
    outputs_dir = in_dir / OUTPUTS_DIR
    ctx = NodeContext(
        node_id, attempt, params, node_input, outputs_dir if outputs_dir.is_dir() else None
    )
    return ctx, function


def _call(function: Mapping[str, Any], ctx: NodeContext) -> tuple[Any, str | None]:
    fn = _load(function, ctx.node_id)
    value = fn(ctx)
    if isinstance(value, Awaitable):
        import asyncio  # noqa: PLC0415 - only async functions pay for it

        value = asyncio.run(_await(value))
    if isinstance(value, dict) and "output" in value and set(value) <= {"output", "action"}:
        action = value.get("action")
        if action is not None and not isinstance(action, str):
            raise FunctionError(
                f"node {ctx.node_id!r} returned an action that is not a string: {action!r}"
            )
        return value["output"], action
    return value, None


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _load(function: Mapping[str, Any], node_id: str) -> Callable[[NodeContext], Any]:
    name = function.get("name") or node_id
    if isinstance(function.get("script"), str):
        source: str = function["script"]
        filename = f"<function {name}>"
        # Register the source so tracebacks show the user's lines.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace: dict[str, Any] = {"__name__": f"flowcraft_function_{name}".replace("-", "_")}
        # The inline script IS user code by design (the flow's function); it runs only here,
        # inside the node's own process.
        exec(compile(source, filename, "exec"), namespace)
        fn = namespace.get("run")
        if not callable(fn):
            raise FunctionError(f"script of function {name!r} does not define run(ctx)")
        return fn  # type: ignore[no-any-return]
    module_name, _, attr = function["python"].partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise FunctionError(
                f"function {name!r}: module {module_name!r} has no attribute {attr!r}"
            ) from None
    if not callable(target):
        raise FunctionError(f"function {name!r}: {function['python']!r} is not callable")
    return target  # type: ignore[no-any-return]


def _user_traceback(err: BaseException) -> str:
    """The last traceback lines, starting below the runtime's own frames when possible."""
    tb = err.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    lines = "".join(traceback.format_exception(type(err), err, tb)).splitlines()
    return "\n".join(lines[-_TRACEBACK_LINES:])


def _require_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SetupError(f"{name} is not set")
    return value


def _read_limit() -> int | None:
    text = os.environ.get(ENV_OUT_LIMIT)
    if not text:
        return None
    try:
        limit = int(text)
    except ValueError:
        raise SetupError(f"{ENV_OUT_LIMIT} must be a number of bytes, got {text!r}") from None
    if limit <= 0:
        raise SetupError(f"{ENV_OUT_LIMIT} must be positive, got {limit}")
    return limit


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise SetupError(f"cannot read {what} at {path}: {err.strerror}") from None
    except ValueError as err:
        raise SetupError(f"{what} at {path} is not valid JSON: {err}") from None


def _fail(out_path: str, error: str, tb: str, limit: int | None, code: int) -> int:
    print(f"flowcraft runtime: {error}", file=sys.stderr)
    if tb:
        print(tb, file=sys.stderr)
    return _write(out_path, encode_error(error, tb, limit), code)


def _write(out_path: str, text: str, code: int) -> int:
    try:
        with open(out_path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as err:
        print(f"flowcraft runtime: cannot write {ENV_OUT}={out_path}: {err}", file=sys.stderr)
        return EXIT_SETUP_FAILED
    return code
