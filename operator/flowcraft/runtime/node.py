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

from flowcraft.contract import (
    ENV_ATTEMPT,
    ENV_IN,
    ENV_NODE,
    ENV_OUT,
    ENV_OUT_INLINE,
    ENV_OUT_LIMIT,
    EXIT_FUNCTION_FAILED,
    EXIT_OK,
    EXIT_SETUP_FAILED,
    FUNCTION_FILE,
    INITIAL_CONTEXT_FILE,
    INPUT_FILE,
    NO_RESULT,
    OUTPUTS_DIR,
    PARAMS_FILE,
    VIEW_FILE,
    WRITES_DIR,
    ViewItem,
    Write,
    apply_writes,
    encode_error,
    encode_success_sized,
    file_stem,
    frame_result,
)

_TRACEBACK_LINES = 12
_MISSING = object()


class SetupError(Exception):
    """The node's environment or input files break the contract (exit code 2)."""


class FunctionError(Exception):
    """The function's result breaks the contract (exit code 1), e.g. output not JSON."""


class NodeContext:
    """The ``ctx`` argument of a node function.

    The context a node sees (flowcraft's shared, writable context) is built lazily on first
    use: the flow's initial context, then for each node that completed before this one
    started, in completion order, its writes and its output as ``_outputs.<id>`` and ``<id>``
    (the driver lists them in ``view.json``), plus ``_inputs.<own id>``. Writes go to an
    overlay and travel back with the result; the driver applies them only if this attempt
    succeeds.
    """

    def __init__(
        self,
        node_id: str,
        attempt: int,
        params: dict[str, Any],
        input: Any,
        outputs_dir: Path | None,
        *,
        in_dir: Path | None = None,
    ) -> None:
        self.node_id = node_id
        self.attempt = attempt
        self.params = params
        self.input = input
        self._outputs_dir = outputs_dir
        self._in_dir = in_dir
        self._outputs: dict[str, Any] = {}
        self._base: dict[str, Any] | None = None
        self._writes: dict[str, Write] = {}
        self._awaitable = False
        self.context = ContextView(self)

    # -- flowcraft's context API -----------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """A context key: initial keys, other nodes' writes, ``_outputs.<id>``, ``<id>``,
        ``_inputs.<own id>``, and this node's own writes so far."""
        write = self._writes.get(key)
        if write is not None:
            return write["value"] if write["op"] == "set" else default
        if key == f"_inputs.{self.node_id}" and self.input is not None:
            return self.input
        base = self._view()
        if base is not None:
            return base.get(key, default)
        # No view.json (an older driver): outputs are looked up by file, as before.
        node = key[len("_outputs.") :] if key.startswith("_outputs.") else key
        value = self._output(node)
        return default if value is _MISSING else value

    def has(self, key: str) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def set(self, key: str, value: Any) -> None:
        """Write a context key; visible to this node now, to later nodes once it succeeds."""
        if not isinstance(key, str):
            raise TypeError(f"context keys are strings, got {type(key).__name__}")
        self._writes.pop(key, None)  # keep the order of the last write per key
        self._writes[key] = {"op": "set", "key": key, "value": value}

    def delete(self, key: str) -> bool:
        """Remove a context key; True if it was there."""
        existed = self.has(key)
        self._writes.pop(key, None)
        self._writes[key] = {"op": "delete", "key": key}
        return existed

    def to_dict(self) -> dict[str, Any]:
        """The whole context as this node sees it (a copy)."""
        merged = dict(self._view() or {})
        if self.input is not None:
            merged[f"_inputs.{self.node_id}"] = self.input
        apply_writes(merged, list(self._writes.values()))
        return merged

    def writes(self) -> list[Write]:
        """This attempt's writes, one per key, in the order of their last write."""
        return list(self._writes.values())

    def log(self, *parts: object) -> None:
        """Write one line to stderr (the node's log locally, the pod's log on the cluster)."""
        print(*parts, file=sys.stderr, flush=True)

    # -- reading the input directory -------------------------------------------------------

    def _view(self) -> dict[str, Any] | None:
        if self._base is not None:
            return self._base
        if self._in_dir is None or not (self._in_dir / VIEW_FILE).is_file():
            return None
        base: dict[str, Any] = {}
        initial_path = self._in_dir / INITIAL_CONTEXT_FILE
        if initial_path.is_file():
            initial = _read_json(initial_path, INITIAL_CONTEXT_FILE)
            if isinstance(initial, dict):
                base.update(initial)
        order = _read_json(self._in_dir / VIEW_FILE, VIEW_FILE)
        if not isinstance(order, list):
            raise SetupError(f"{VIEW_FILE} must hold a list")
        for doc in order:
            item = ViewItem.from_json(doc)
            if item is None:
                raise SetupError(f"{VIEW_FILE}: unreadable entry {json.dumps(doc)[:200]}")
            node = item.node
            if item.undefined:
                base.pop(f"_outputs.{node}", None)
                base.pop(node, None)
                continue
            if item.inline:
                apply_writes(base, item.applied)
                value = item.value
            else:
                stem = file_stem(item.key or node)
                if item.wrote:
                    writes_path = self._in_dir / WRITES_DIR / f"{stem}.json"
                    apply_writes(base, _read_json(writes_path, f"writes of node {node!r}"))
                value = self._stored(stem, node)
            base[f"_outputs.{node}"] = value
            base[node] = value
        self._base = base
        return base

    def _output(self, node: str) -> Any:
        if node in self._outputs:
            return self._outputs[node]
        if self._outputs_dir is None or not node or "/" in node:
            return _MISSING
        path = self._outputs_dir / f"{file_stem(node)}.json"
        if not path.is_file():
            return _MISSING
        value = _read_json(path, f"output of node {node!r}")
        self._outputs[node] = value
        return value

    def _stored(self, stem: str, node: str) -> Any:
        """A stored output named in the view; the driver mounts every one it names."""
        if self._outputs_dir is None:
            raise SetupError(f"{VIEW_FILE} names the output of node {node!r} but no outputs/")
        path = self._outputs_dir / f"{stem}.json"
        if not path.is_file():
            raise SetupError(f"output of node {node!r} is missing at {path}")
        return _read_json(path, f"output of node {node!r}")


class ContextView:
    """``ctx.context``: flowcraft's ``context.context`` with get/set/has/delete/to_dict.

    Inside ``async def run(ctx)`` each method returns an awaitable, so ported flowcraft code
    (``await context.context.get(k)``) reads the same; inside ``def run(ctx)`` they return
    values directly.
    """

    def __init__(self, ctx: NodeContext) -> None:
        self._ctx = ctx

    def _wrap(self, value: Any) -> Any:
        return _ready(value) if self._ctx._awaitable else value

    def get(self, key: str, default: Any = None) -> Any:
        return self._wrap(self._ctx.get(key, default))

    def set(self, key: str, value: Any) -> Any:
        self._ctx.set(key, value)
        return self._wrap(None)

    def has(self, key: str) -> Any:
        return self._wrap(self._ctx.has(key))

    def delete(self, key: str) -> Any:
        return self._wrap(self._ctx.delete(key))

    def to_dict(self) -> Any:
        return self._wrap(self._ctx.to_dict())

    def toJSON(self) -> Any:  # flowcraft's name, for ports
        return self.to_dict()


async def _ready(value: Any) -> Any:
    return value


def main() -> int:
    """Run the node described by the environment; return the process exit code."""
    out_path = os.environ.get(ENV_OUT)
    if not out_path:
        print(f"flowcraft runtime: {ENV_OUT} is not set", file=sys.stderr)
        return EXIT_SETUP_FAILED
    limit: int | None = None
    inline: int | None = None
    # Until the real result replaces it, the result says "no result": a process that ends
    # early (os._exit, sys.exit, a signal) fails instead of succeeding with a null output.
    if _write(out_path, encode_error(NO_RESULT), EXIT_OK) != EXIT_OK:
        return EXIT_SETUP_FAILED
    try:
        limit = _read_limit(ENV_OUT_LIMIT)
        inline = _read_limit(ENV_OUT_INLINE)
        ctx, function = _setup()
    except SetupError as err:
        return _fail(out_path, f"SetupError: {err}", "", inline or limit, EXIT_SETUP_FAILED)
    # The log channel writes to the original stdout even if user code replaces sys.stdout.
    log_fd = os.dup(1) if inline is not None else None
    error_limit = inline or limit

    try:
        output, action = _call(function, ctx)
        writes = ctx.writes()
    except Exception as err:
        # The one broad catch: anything the user's code raises (while its module loads or while
        # it runs) is that node's failure, reported through the contract rather than crashing.
        return _fail(
            out_path,
            f"{type(err).__name__}: {err}",
            _user_traceback(err),
            error_limit,
            EXIT_FUNCTION_FAILED,
        )

    try:
        text, size = encode_success_sized(output, action, writes)
    except (TypeError, ValueError) as err:
        message = (
            f"OutputNotJSON: node {ctx.node_id!r} returned an output (or wrote a context "
            f"value) that is not JSON: {err}"
        )
        return _fail(out_path, message, "", error_limit, EXIT_FUNCTION_FAILED)
    if limit is not None and size > limit:
        message = (
            f"OutputTooLarge: node {ctx.node_id!r} result (output and context writes) is "
            f"{size} bytes, over the limit of {limit} bytes ({ENV_OUT_LIMIT}; a result is "
            "stored in one ConfigMap): write large data to your own storage and return a "
            "reference to it"
        )
        return _fail(out_path, message, "", error_limit, EXIT_FUNCTION_FAILED)
    if inline is not None and log_fd is not None:
        text, lines = frame_result(text, inline, os.urandom(8).hex())
        if lines and not _print_block(log_fd, lines):
            message = "SetupError: cannot write the result block to stdout"
            return _fail(out_path, message, "", error_limit, EXIT_SETUP_FAILED)
    return _write(out_path, text, EXIT_OK)


def _print_block(fd: int, lines: list[str]) -> bool:
    """Write the framed result's lines to the log, after whatever the function printed."""
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 - contextlib is an import the runtime does not otherwise need
            stream.flush()
        except (OSError, ValueError):
            pass
    data = ("\n" + "\n".join(lines) + "\n").encode()
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as err:
        print(f"flowcraft runtime: cannot write the result block: {err}", file=sys.stderr)
        return False
    return True


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
        node_id,
        attempt,
        params,
        node_input,
        outputs_dir if outputs_dir.is_dir() else None,
        in_dir=in_dir,
    )
    return ctx, function


def _call(function: Mapping[str, Any], ctx: NodeContext) -> tuple[Any, str | None]:
    fn = _load(function, ctx.node_id)
    # In an async function ctx.context's methods are awaitable, as flowcraft's are.
    ctx._awaitable = _is_async(fn)
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


def _is_async(fn: Any) -> bool:
    import inspect  # noqa: PLC0415 - cheap, and only the call path needs it

    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


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


def _read_limit(name: str) -> int | None:
    text = os.environ.get(name)
    if not text:
        return None
    try:
        limit = int(text)
    except ValueError:
        raise SetupError(f"{name} must be a number of bytes, got {text!r}") from None
    if limit <= 0:
        raise SetupError(f"{name} must be positive, got {limit}")
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
