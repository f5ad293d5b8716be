"""Names and encodings of the node runtime contract, shared by the runtime and every driver.

Why a separate module: drivers (local subprocesses, docker, Kubernetes pods) write the inputs
and read the result of a node; keeping the file names, environment variables, exit codes and
the result envelope in one stdlib-only place means the two sides cannot drift apart.
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

# The kubelet keeps at most 4096 bytes of a container's termination message; the local runner
# applies the same limit by default so a flow that works locally also fits on the cluster.
DEFAULT_OUT_LIMIT = 4096

EXIT_OK = 0
EXIT_FUNCTION_FAILED = 1
EXIT_SETUP_FAILED = 2

_SUCCESS_KEYS = frozenset({"output", "action"})
_ERROR_KEYS = frozenset({"error", "traceback"})


class NodeResult(NamedTuple):
    """What one attempt produced: an output and action, or an error message.

    A NamedTuple rather than a dataclass: importing dataclasses costs the runtime ~7 ms.
    """

    output: Any = None
    action: str | None = None
    error: str | None = None
    traceback: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def encode_success(output: Any, action: str | None) -> str:
    """The success envelope; raises TypeError/ValueError when output is not JSON."""
    return json.dumps({"output": output, "action": action}, allow_nan=False, ensure_ascii=False)


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
            if action is None or isinstance(action, str):
                return NodeResult(output=doc["output"], action=action)
        if "error" in keys and keys <= _ERROR_KEYS and isinstance(doc["error"], str):
            tb = doc.get("traceback")
            return NodeResult(error=doc["error"], traceback=tb if isinstance(tb, str) else None)
    return NodeResult(output=doc)
