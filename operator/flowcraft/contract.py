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
ENV_OUT_INLINE = "FLOWCRAFT_OUT_INLINE"

FUNCTION_FILE = "function.json"
PARAMS_FILE = "params.json"
INPUT_FILE = "input.json"
OUTPUTS_DIR = "outputs"
WRITES_DIR = "writes"
INITIAL_CONTEXT_FILE = "context.json"
VIEW_FILE = "view.json"

# A result (output and context writes) is stored in one ConfigMap, whose data the API server
# caps at 1 MiB (the sum of its values' UTF-8 bytes, ``MaxSecretSize``). The runtime measures a
# result as the driver stores it: compact JSON of the output plus, when there are any, of the
# writes. Both drivers apply this limit, so a flow that works locally also fits on the cluster.
DEFAULT_OUT_LIMIT = 1024 * 1024
# The kubelet keeps at most 4096 bytes of a container's termination message: on the cluster a
# result that does not fit there travels as a framed block in the pod's log (see frame_result).
TERMINATION_MESSAGE_LIMIT = 4096
# What $FLOWCRAFT_OUT holds until the runtime writes the real result: a process that exits
# (os._exit, sys.exit, a signal) before that is a failure, never a null output.
NO_RESULT = "NoResult: the node process exited without a result"

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
    # The result is a block in the pod's log (see frame_result): read it with read_frame,
    # then parse_result the envelope.
    frame: FrameRef | None = None

    @property
    def ok(self) -> bool:
        """A success whose output is known (a frame still has to be read)."""
        return self.error is None and self.frame is None


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode_success(output: Any, action: str | None, writes: list[Write] | None = None) -> str:
    """The success envelope; raises TypeError/ValueError when output (or a written value) is
    not JSON. ``writes`` is left out when there are none, so old readers keep working."""
    return encode_success_sized(output, action, writes)[0]


def encode_success_sized(
    output: Any, action: str | None, writes: list[Write] | None = None
) -> tuple[str, int]:
    """The success envelope (compact JSON) and the bytes its result takes when stored: the
    output's JSON plus the writes' JSON, exactly what a driver keeps (see DEFAULT_OUT_LIMIT)."""
    out = _compact(output)
    parts = ['{"output":', out, ',"action":', _compact(action)]
    size = len(out.encode())
    if writes:
        stored = _compact(writes)
        parts += [',"writes":', stored]
        size += len(stored.encode())
    parts.append("}")
    return "".join(parts), size


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
    A frame (see frame_result) with its data inline is unpacked; one that points to the log
    gives a result with ``frame`` set; a corrupt frame is an error, never an output.
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
        if keys == {FRAME_KEY}:
            return _parse_frame(doc[FRAME_KEY])
        if "output" in keys and keys <= _SUCCESS_KEYS:
            action = doc.get("action")
            writes = _valid_writes(doc.get("writes", []))
            if (action is None or isinstance(action, str)) and writes is not None:
                return NodeResult(output=doc["output"], action=action, writes=writes)
        if "error" in keys and keys <= _ERROR_KEYS and isinstance(doc["error"], str):
            tb = doc.get("traceback")
            return NodeResult(error=doc["error"], traceback=tb if isinstance(tb, str) else None)
    return NodeResult(output=doc)


# --- Framing: results that do not fit in the termination message --------------------------
#
# On the cluster ``$FLOWCRAFT_OUT`` is the container's termination message (4096 bytes kept),
# set by the driver as ``FLOWCRAFT_OUT_INLINE``. An envelope that fits is written as is (the
# fast path: the operator reads it from the pod's status it already watches). One that does
# not is compressed (zlib, then base64); if that fits, $FLOWCRAFT_OUT holds a frame with the
# data inline. Otherwise the runtime prints the compressed envelope to its stdout as numbered
# lines tagged with a random nonce, and $FLOWCRAFT_OUT holds only a reference: nonce, line
# count, size and SHA-256 of the envelope. The operator reads the finished pod's log (the one
# ``pods/log`` read, done by the operator; pods keep no API access) and rebuilds the envelope
# with read_frame. Every step is checked (all lines present, base64, zlib stream, size,
# digest): a cut or corrupt block is a failure naming what is wrong, never a wrong output.

FRAME_KEY = "flowcraft/result"  # the only key of a frame in $FLOWCRAFT_OUT; also the line tag
FRAME_ENCODING = "zlib+base64"
# Base64 characters per log line: below the 16 KiB at which container runtimes split a line.
FRAME_CHUNK = 8000


class FrameError(ValueError):
    """A framed result is missing, cut or corrupt."""


class FrameRef(NamedTuple):
    """A result block in the pod's log, as its termination message names it."""

    nonce: str
    size: int
    sha256: str
    lines: int


def _sha256(data: bytes) -> str:
    import hashlib  # noqa: PLC0415 - only large results pay for it

    return hashlib.sha256(data).hexdigest()


def frame_result(envelope: str, inline_limit: int, nonce: str) -> tuple[str, list[str]]:
    """What the runtime writes for ``envelope`` when $FLOWCRAFT_OUT keeps ``inline_limit``
    bytes: the text for $FLOWCRAFT_OUT and the lines to print to the log (none if it fits)."""
    data = envelope.encode()
    if len(data) <= inline_limit:
        return envelope, []
    import base64  # noqa: PLC0415 - only large results pay for these imports
    import zlib  # noqa: PLC0415

    packed = base64.b64encode(zlib.compress(data, 6)).decode("ascii")
    head = {"encoding": FRAME_ENCODING, "bytes": len(data), "sha256": _sha256(data)}
    inline = json.dumps({FRAME_KEY: {**head, "data": packed}}, separators=(",", ":"))
    if len(inline) <= inline_limit:
        return inline, []
    chunks = [packed[i : i + FRAME_CHUNK] for i in range(0, len(packed), FRAME_CHUNK)]
    ref = {FRAME_KEY: {**head, "nonce": nonce, "lines": len(chunks)}}
    lines = [f"{FRAME_KEY} {nonce} {i} {chunk}" for i, chunk in enumerate(chunks)]
    return json.dumps(ref, separators=(",", ":")), lines


def _unpack(packed: str, size: int, digest: str) -> str:
    import base64  # noqa: PLC0415
    import binascii  # noqa: PLC0415
    import zlib  # noqa: PLC0415

    try:
        raw = base64.b64decode(packed, validate=True)
    except (binascii.Error, ValueError) as err:
        raise FrameError(f"result block is not valid base64: {err}") from None
    inflater = zlib.decompressobj()
    try:
        # At most size + 1 bytes: a block claiming less than it holds is caught, not inflated.
        data = inflater.decompress(raw, size + 1)
    except zlib.error as err:
        raise FrameError(f"result block is not a valid zlib stream: {err}") from None
    if len(data) != size or not inflater.eof:
        got = f"{len(data)}" + ("" if inflater.eof else "+ (stream cut or longer)")
        raise FrameError(f"result block holds {got} bytes, its reference says {size}")
    if _sha256(data) != digest:
        raise FrameError("result block does not match its SHA-256 (corrupt)")
    try:
        return data.decode()
    except UnicodeDecodeError as err:
        raise FrameError(f"result block is not UTF-8: {err}") from None


def _frame_head(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict) or doc.get("encoding") != FRAME_ENCODING:
        raise FrameError(f"unknown result frame {json.dumps(doc)[:200]}")
    size, digest = doc.get("bytes"), doc.get("sha256")
    if not isinstance(size, int) or size < 0 or not isinstance(digest, str):
        raise FrameError(f"result frame without a size or digest: {json.dumps(doc)[:200]}")
    return doc


def read_frame(ref: FrameRef, log: str) -> str:
    """The envelope of the result block ``ref`` in the pod's log text ``log``.

    Raises FrameError naming what is wrong: lines missing (the log was rotated or cut), not
    base64, not zlib, wrong size or digest."""
    prefix = f"{FRAME_KEY} {ref.nonce} "
    chunks: dict[int, str] = {}
    for line in log.splitlines():
        start = line.find(prefix)  # tolerate a prefix the log pipeline may add
        if start < 0:
            continue
        index, _, chunk = line[start + len(prefix) :].partition(" ")
        if index.isdigit() and int(index) < ref.lines:
            chunks.setdefault(int(index), chunk.strip())
    if len(chunks) != ref.lines:
        raise FrameError(
            f"result block incomplete in the pod's log: {len(chunks)} of {ref.lines} lines "
            "(the log was rotated, cut or deleted)"
        )
    return _unpack("".join(chunks[i] for i in range(ref.lines)), ref.size, ref.sha256)


def _parse_frame(doc: Any) -> NodeResult:
    try:
        head = _frame_head(doc)
        if isinstance(head.get("data"), str):
            envelope = _unpack(head["data"], head["bytes"], head["sha256"])
            result = parse_result(envelope)
            return result if result.frame is None else NodeResult(error="nested result frame")
        nonce, lines = head.get("nonce"), head.get("lines")
        if not isinstance(nonce, str) or not nonce or not isinstance(lines, int) or lines < 1:
            raise FrameError(f"result frame without data or lines: {json.dumps(doc)[:200]}")
        return NodeResult(frame=FrameRef(nonce, head["bytes"], head["sha256"], lines))
    except FrameError as err:
        return NodeResult(error=f"CorruptResult: {err}")
