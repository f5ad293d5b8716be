"""The wire contract of a node attempt: file names, environment, exit codes, the result
envelope and its context writes. The lowest layer: stdlib only, imports nothing of ours.

Why a module of its own, below the model: the node runtime (in a pod, where importing pydantic
would cost start-up time), the drivers (which prepare inputs and read results) and the engine
(which folds context writes into the flow's context) must agree on these shapes; keeping them
in one stdlib-only place means the sides cannot drift apart. See ``flowcraft.runtime`` for the
contract as a node sees it.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

ENV_NODE = "FLOWCRAFT_NODE"
ENV_ATTEMPT = "FLOWCRAFT_ATTEMPT"
ENV_IN = "FLOWCRAFT_IN"
ENV_OUT = "FLOWCRAFT_OUT"
ENV_OUT_LIMIT = "FLOWCRAFT_OUT_LIMIT"

FUNCTION_FILE = "function.json"
PARAMS_FILE = "params.json"
INPUT_FILE = "input.json"
OUTPUTS_DIR = "outputs"
WRITES_DIR = "writes"
INITIAL_CONTEXT_FILE = "context.json"
VIEW_FILE = "view.json"

# The kubelet keeps at most 4096 bytes of a container's termination message; the local runner
# applies the same limit by default so a flow that works locally also fits on the cluster.
DEFAULT_OUT_LIMIT = 4096

EXIT_OK = 0
EXIT_FUNCTION_FAILED = 1
EXIT_SETUP_FAILED = 2

_SUCCESS_KEYS = frozenset({"output", "action", "writes"})
_ERROR_KEYS = frozenset({"error", "traceback"})


# One context write of a node, flowcraft's delta shape: {"op": "set", "key", "value"} or
# {"op": "delete", "key"}. Kept as plain dicts: they travel as JSON and are applied in order.
Write = dict[str, Any]


class ViewItem(NamedTuple):
    """One entry of a node's view (``view.json``): a success folded into its context.

    A stored result is read from ``outputs/<stem>.json`` (and ``writes/<stem>.json`` when
    ``wrote``), stem = ``file_stem(key)``; an ``inline`` item carries its output (a built-in
    the engine ran, or a node its fallback recovered: null) and, in ``applied``, the writes
    applied before it (a batch-gather's ``outputKey``); ``undefined`` removes the keys
    (flowcraft's undefined output)."""

    node: str
    key: str | None = None
    wrote: bool = False
    inline: bool = False
    value: Any = None
    undefined: bool = False
    applied: tuple[Write, ...] = ()

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.node}
        if self.inline:
            if self.applied:
                doc["set"] = list(self.applied)
            doc["value"] = self.value
        elif self.undefined:
            doc["undefined"] = True
        else:
            if self.key is not None and self.key != self.node:
                doc["key"] = self.key
            if self.wrote:
                doc["writes"] = True
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> ViewItem | None:
        if isinstance(doc, str):
            return cls(doc, key=doc)
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            return None
        node = doc["id"]
        if "value" in doc:
            applied = doc.get("set")
            writes = tuple(applied) if isinstance(applied, list) else ()
            return cls(node, inline=True, value=doc["value"], applied=writes)
        if doc.get("undefined"):
            return cls(node, undefined=True)
        key = doc.get("key", node)
        return cls(node, key=key if isinstance(key, str) else node, wrote=bool(doc.get("writes")))


def result_key(node_id: str, iteration: int = 0) -> str:
    """Where a driver stores a node's result (output, writes) for one loop iteration: the
    node id for the first run, ``<id>/<iteration>`` after (ids never contain "/")."""
    return node_id if not iteration else f"{node_id}/{iteration}"


def item_key(node_id: str, iteration: int, item: int) -> str:
    """Where a driver stores a batch item's result (output, writes): ``<scatter>/<iteration>/
    <item>``. Two slashes, so it never collides with a result key (at most one)."""
    return f"{node_id}/{iteration}/{item}"


def file_stem(node_id: str) -> str:
    """The file name (without ``.json``) that stands for a node id in the input directory.

    Node ids are any string without "/" (flowcraft's camelCase, ``_``, ``-``, even spaces or
    unicode); file names must be portable and safe in a projected volume, so characters other
    than ``[A-Za-z0-9_-]`` and a leading "." are percent-encoded (UTF-8), and a stem that
    would exceed 200 bytes is cut and suffixed with a hash of the id. Distinct ids give
    distinct stems.
    """
    out = []
    for ch in node_id:
        if ch.isascii() and (ch.isalnum() or ch in "_-"):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode())
    stem = "".join(out)
    if len(stem) > 200:
        import hashlib  # noqa: PLC0415 - rare path; the runtime keeps its imports minimal

        stem = stem[:180] + "~" + hashlib.sha256(node_id.encode()).hexdigest()[:16]
    return stem


def apply_writes(context: dict[str, Any], writes: Any) -> None:
    """Apply a node's writes to ``context`` in order (unknown ops are ignored: they were
    validated when the node's result was parsed)."""
    for write in writes or ():
        if not isinstance(write, dict):
            continue
        key = write.get("key")
        if not isinstance(key, str):
            continue
        if write.get("op") == "set":
            context[key] = write.get("value")
        elif write.get("op") == "delete":
            context.pop(key, None)


def _valid_writes(value: Any) -> tuple[Write, ...] | None:
    if not isinstance(value, list):
        return None
    for write in value:
        if not isinstance(write, dict) or not isinstance(write.get("key"), str):
            return None
        op = write.get("op")
        if not (op == "set" and "value" in write) and op != "delete":
            return None
    return tuple(value)


class NodeResult(NamedTuple):
    """What one attempt produced: an output and action, or an error message.

    A NamedTuple rather than a dataclass: importing dataclasses costs the runtime ~7 ms.
    """

    output: Any = None
    action: str | None = None
    error: str | None = None
    traceback: str | None = None
    writes: tuple[Write, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


def encode_success(output: Any, action: str | None, writes: list[Write] | None = None) -> str:
    """The success envelope; raises TypeError/ValueError when output (or a written value) is
    not JSON. ``writes`` is left out when there are none, so old readers keep working."""
    doc: dict[str, Any] = {"output": output, "action": action}
    if writes:
        doc["writes"] = writes
    return json.dumps(doc, allow_nan=False, ensure_ascii=False)


def encode_error(error: str, traceback: str = "", limit: int | None = None) -> str:
    """The error envelope, trimmed to fit ``limit`` bytes: oldest traceback lines go first."""
    lines = traceback.splitlines()
    while True:
        doc: dict[str, str] = {"error": error}
        if lines:
            doc["traceback"] = "\n".join(lines)
        text = json.dumps(doc, ensure_ascii=False)
        if limit is None or len(text.encode()) <= limit:
            return text
        if lines:
            lines.pop(0)
            continue
        # No traceback left: cut the message itself, keeping room for the JSON quoting.
        overflow = len(text.encode()) - limit
        error = error[: max(0, len(error) - overflow - 4)] + "..."
        if len(error) <= 3:
            return json.dumps({"error": "..."})


def parse_result(text: str) -> NodeResult:
    """Read what a node wrote to its result file, from the runtime or from any image.

    The runtime's envelopes are recognised by their exact keys; an empty file is a null output
    (a container that wrote nothing); other JSON is the output itself; other text is a string.
    """
    stripped = text.strip()
    if not stripped:
        return NodeResult()
    try:
        doc = json.loads(stripped)
    except ValueError:
        return NodeResult(output=stripped)
    if isinstance(doc, dict):
        keys = frozenset(doc)
        if "output" in keys and keys <= _SUCCESS_KEYS:
            action = doc.get("action")
            writes = _valid_writes(doc.get("writes", []))
            if (action is None or isinstance(action, str)) and writes is not None:
                return NodeResult(output=doc["output"], action=action, writes=writes)
        if "error" in keys and keys <= _ERROR_KEYS and isinstance(doc["error"], str):
            tb = doc.get("traceback")
            return NodeResult(error=doc["error"], traceback=tb if isinstance(tb, str) else None)
    return NodeResult(output=doc)
