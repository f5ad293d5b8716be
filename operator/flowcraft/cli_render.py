"""What ``flowcraft run`` and ``resume`` print: progress lines, the summary, the result document.

Why a module of its own: the commands (``cli``) decide what happens; this module only turns
engine statuses and a run's result into text or JSON, and is pure apart from the stream it is
handed. Where things go: progress lines and errors on stderr, always (errors even with
``--quiet``, so a failing run in a script never fails silently); the summary table on stdout
with ``--output text``, on stderr otherwise; stdout then carries only the requested document:
``--output json`` the final context (as flowcraft's ``result.context``), ``--output result``
the whole result shaped like flowcraft's ``WorkflowResult`` (see :func:`result_document`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from flowcraft.drivers.local import RunResult
    from flowcraft.model import FlowStatus

# Node phase -> (progress tag, ANSI colour).
_MARKS: dict[str, tuple[str, str]] = {
    "Running": ("start", "36"),
    "Succeeded": ("ok", "32"),
    "Retrying": ("retry", "33"),
    "Failed": ("FAIL", "31"),
    "Skipped": ("skip", "2"),
    "Cancelled": ("cancel", "33"),
    "Sleeping": ("sleep", "36"),
    "Awaiting": ("await", "35"),
}


class Progress:
    """Turns successive engine statuses into one line per node transition."""

    def __init__(self, stream: TextIO, *, enabled: bool) -> None:
        self._stream = stream
        self._enabled = enabled
        self._color = enabled and stream.isatty()
        self._seen: dict[str, tuple[str, int]] = {}
        self._flow_phase = "Pending"
        self._t0: datetime | None = None

    def note(self, text: str) -> None:
        if self._enabled:
            print(text, file=self._stream, flush=True)

    def seen(self, status: FlowStatus) -> None:
        """Take ``status`` as already shown (a resumed run reports only what is new)."""
        self._t0 = status.started_at
        for node_id, node in status.nodes.items():
            self._seen[node_id] = (node.phase, node.attempts)

    def update(self, status: FlowStatus) -> None:
        if self._t0 is None:
            self._t0 = status.started_at or datetime.now(UTC)
        for node_id, node in status.nodes.items():
            state = (node.phase, node.attempts)
            if self._seen.get(node_id, ("Pending", 0)) == state:
                continue
            self._seen[node_id] = state
            if node.phase in _MARKS:
                self._line(node_id, node.phase, self._describe(node_id, status))
        if status.phase != self._flow_phase:
            self._flow_phase = status.phase

    def _describe(self, node_id: str, status: FlowStatus) -> str:
        node = status.nodes[node_id]
        if node.phase == "Running":
            return "started" + (f" (attempt {node.attempts})" if node.attempts > 1 else "")
        if node.phase == "Succeeded":
            return f"succeeded in {duration(node.started_at, node.finished_at)}" + (
                f" after {node.attempts} attempts" if node.attempts > 1 else ""
            )
        if node.phase == "Retrying":
            text = node.message or f"attempt {node.attempts} failed"
            if node.retry_at is not None:
                text += f"; retrying in {duration(datetime.now(UTC), node.retry_at)}"
            return text
        if node.phase == "Failed":
            return f"failed after {plural(node.attempts, 'attempt')}: {node.message or '?'}"
        if node.phase == "Sleeping" and node.wake_at is not None:
            return f"sleeping for {duration(datetime.now(UTC), node.wake_at)}"
        if node.phase == "Awaiting":
            return "awaiting resume data (flowcraft resume)"
        word = node.phase.lower()
        detail = node.message or node.reason
        if not detail:
            return word
        return detail if detail.startswith(word) else f"{word} ({detail})"

    def _line(self, node_id: str, phase: str, text: str) -> None:
        if not self._enabled:
            return
        mark, color = _MARKS[phase]
        tag = f"[{mark:>6}]"
        if self._color:
            tag = f"\033[{color}m{tag}\033[0m"
        elapsed = ""
        if self._t0 is not None:
            elapsed = f"{(datetime.now(UTC) - self._t0).total_seconds():6.2f}s "
        print(f"{elapsed}{tag} {node_id} {text}", file=self._stream, flush=True)

    def summary(self, result: RunResult, stream: TextIO) -> None:
        status = result.status
        took = f"in {duration(status.started_at, status.finished_at)}"
        if status.phase == "Awaiting":
            took = f"after {duration(status.started_at, datetime.now(UTC))}"
        rows = [("NODE", "PHASE", "ATTEMPTS", "DURATION", "MESSAGE")]
        for node in result.flow.spec.nodes:
            ns = status.nodes.get(node.id)
            if ns is None:
                rows.append((node.id, "Pending", "0", "-", ""))
                continue
            took_node = duration(ns.started_at, ns.finished_at) if ns.started_at else "-"
            rows.append((node.id, ns.phase, str(ns.attempts), took_node, _one_line(ns.message)))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        print(f"flow {result.flow.metadata.name}: {status.phase} {took}", file=stream)
        for row in rows:
            cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:4])]
            print("  " + "  ".join([*cells, row[4]]).rstrip(), file=stream)
        stream.flush()


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "-"
    return f"{(end - start).total_seconds():.2f} s"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _one_line(text: str | None, limit: int = 100) -> str:
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# Our flow phase -> flowcraft's WorkflowStatus.
WORKFLOW_STATUS = {
    "Succeeded": "completed",
    "Failed": "failed",
    "Cancelled": "cancelled",
    "Awaiting": "awaiting",
    "Running": "stalled",
    "Pending": "stalled",
}


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def result_document(result: RunResult) -> dict[str, Any]:
    """``--output result``: flowcraft's ``WorkflowResult`` (``status``, ``context``,
    ``serializedContext``, ``errors`` as ``WorkflowError``s with ``nodeId`` and ``timestamp``),
    plus what our status knows beyond it: the flow's ``phase`` and ``message``, its times, and
    per node its phase, attempts, times, message, reason and action."""
    status = result.status
    node_ids = [node.id for node in result.flow.spec.nodes]
    errors: list[dict[str, Any]] = []
    for text in status.errors:
        # The engine writes node failures as "node 'id' ...": name the node they concern.
        node_id = next((n for n in node_ids if text.startswith(f"node {n!r} ")), None)
        finished = status.nodes[node_id].finished_at if node_id in status.nodes else None
        error: dict[str, Any] = {"name": "FlowcraftError", "message": text, "isFatal": False}
        if node_id is not None:
            error["nodeId"] = node_id
        error["timestamp"] = _stamp(finished or status.finished_at)
        errors.append(error)
    nodes: dict[str, Any] = {}
    for node_id in node_ids:
        ns = status.nodes.get(node_id)
        if ns is None:
            nodes[node_id] = {"phase": "Pending", "attempts": 0}
            continue
        entry = ns.model_dump(
            mode="json",
            by_alias=True,
            exclude_none=True,
            include={
                "phase",
                "attempts",
                "started_at",
                "finished_at",
                "message",
                "reason",
                "action",
                "iteration",
            },
        )
        nodes[node_id] = entry
    return {
        "status": WORKFLOW_STATUS.get(status.phase, "stalled"),
        "context": result.context,
        "serializedContext": json.dumps(result.context, ensure_ascii=False, default=str),
        "errors": errors,
        "flow": result.flow.metadata.name,
        "phase": status.phase,
        "message": status.message,
        "startedAt": _stamp(status.started_at),
        "finishedAt": _stamp(status.finished_at),
        "nodes": nodes,
    }


def report_failure(result: RunResult, stream: TextIO) -> None:
    """The lines a run that did not succeed always prints on stderr (even with --quiet)."""
    status = result.status
    if status.phase in ("Succeeded", "Awaiting"):
        return
    name = result.flow.metadata.name
    if status.errors:
        print(f"flowcraft: flow {name} {status.phase}", file=stream)
        for error in status.errors:
            print(f"  error: {error}", file=stream)
    else:
        print(f"flowcraft: flow {name} {status.phase}: {status.message or '?'}", file=stream)
    stream.flush()
