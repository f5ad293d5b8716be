"""A local run's resumable state: what ``flowcraft resume RUN_DIR NODE`` continues from.

Why a file per run and not a database: a local run already lives in its run directory (the
outputs and writes of every success are files there, see ``flowcraft.drivers.local``). When
a run stops at a wait node, only two things are not on disk yet: the Flow as it was loaded
(functions, params after ``--param``, initial context: the resumed run must not depend on
files that may have changed since) and the engine's status snapshot. ``state.json`` holds
them, plus the runner options a resumed run must reuse (python path, result limit, the
subflow blueprints). Outputs and writes are *not* copied: :func:`load_results` reads them
back from ``outputs/`` and ``writes/``, keyed by ``contract.result_key`` as the runner keeps
them, for every result the snapshot needs (``Engine.result_keys``).

What a run ends with (:class:`RunResult`, with an :class:`AttemptRecord` per attempt) is
here too, below both the runner and its subflow attempts, which return it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flowcraft.contract import OUTPUTS_DIR, WRITES_DIR, Write, file_stem
from flowcraft.model import Flow, FlowStatus, FlowValidationError
from flowcraft.model.blueprint import Blueprint
from flowcraft.model.loader import parse_flow

STATE_FILE = "state.json"
STATE_VERSION = 1


@dataclass(frozen=True)
class AttemptRecord:
    """One finished node attempt, as the driver saw it (for summaries and tests)."""

    node: str
    attempt: int
    started_at: datetime
    finished_at: datetime
    outcome: str  # "succeeded" | "failed" | "timed-out" | "cancelled"
    message: str | None
    log: Path
    item: int | None = None  # a batch item of scatter `node`


@dataclass
class RunResult:
    """The end of a run: the engine's final status, the flowcraft-style context, and records."""

    flow: Flow
    status: FlowStatus
    context: dict[str, Any]
    outputs: dict[str, Any]
    run_dir: Path
    attempts: list[AttemptRecord] = field(default_factory=list)


class StateError(Exception):
    """The run directory holds no usable state (missing, unreadable, from another version)."""


@dataclass(frozen=True)
class RunState:
    """What a resumed run starts from."""

    flow: Flow
    status: FlowStatus
    pythonpath: tuple[str, ...] = ()
    out_limit: int | None = None
    blueprints: Mapping[str, Blueprint] | None = None


def save_state(run_dir: Path, state: RunState) -> Path:
    """Write ``<run_dir>/state.json`` atomically; returns its path."""
    doc: dict[str, Any] = {
        "version": STATE_VERSION,
        "flow": state.flow.to_dict(),
        "status": state.status.model_dump(mode="json", by_alias=True, exclude_none=True),
        "options": {
            "pythonpath": list(state.pythonpath),
            "outLimit": state.out_limit,
            "blueprints": {
                key: bp.model_dump(mode="json", by_alias=True, exclude_none=True)
                for key, bp in (state.blueprints or {}).items()
            },
        },
    }
    path = run_dir / STATE_FILE
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(doc, ensure_ascii=False, indent=1))
    partial.replace(path)
    return path


def load_state(run_dir: Path) -> RunState:
    """Read ``<run_dir>/state.json``; StateError says what is wrong in one line."""
    path = run_dir / STATE_FILE
    if not path.is_file():
        raise StateError(
            f"{str(run_dir)!r} is not a resumable run directory: it has no {STATE_FILE} "
            "(flowcraft run writes one when a flow stops at a wait node)"
        )
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise StateError(f"cannot read {str(path)!r}: {err}") from None
    if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
        raise StateError(f"{str(path)!r}: not a state file of this flowcraft version")
    options = doc.get("options") or {}
    try:
        flow = parse_flow(doc["flow"], source=str(path))
        status = FlowStatus.model_validate(doc["status"])
        blueprints = {
            key: Blueprint.model_validate(value)
            for key, value in (options.get("blueprints") or {}).items()
        }
    except (KeyError, TypeError, ValidationError, FlowValidationError) as err:
        raise StateError(f"{str(path)!r} is damaged: {err}") from None
    limit = options.get("outLimit")
    return RunState(
        flow=flow,
        status=status,
        pythonpath=tuple(str(p) for p in options.get("pythonpath") or ()),
        out_limit=limit if isinstance(limit, int) else None,
        blueprints=blueprints or None,
    )


def load_results(
    run_dir: Path, keys: Iterable[str]
) -> tuple[dict[str, Any], dict[str, tuple[Write, ...]]]:
    """The runner's outputs and writes maps, rebuilt from the run directory's files for the
    result keys a snapshot needs (``Engine.result_keys``: each success by
    ``result_key(node, iteration)``, each batch item by its item key). Keys without a file
    (built-ins the engine ran itself: sleep, wait, loop-controller) are left out."""
    outputs: dict[str, Any] = {}
    writes: dict[str, tuple[Write, ...]] = {}
    for key in keys:
        stem = file_stem(key)
        output_file = run_dir / OUTPUTS_DIR / f"{stem}.json"
        if not output_file.is_file():
            continue
        outputs[key] = json.loads(output_file.read_text())
        writes_file = run_dir / WRITES_DIR / f"{stem}.json"
        if writes_file.is_file():
            stored: Sequence[Write] = json.loads(writes_file.read_text())
            writes[key] = tuple(stored)
    return outputs, writes
