"""The compat cases on disk (tests/compat/cases/<name>/) and how a run is compared with them.

Shared by test_compat_local.py (local runner) and test_compat_cluster.py (operator).

Comparison rules (the only normalisations): flowcraft's expected.json is `JSON.stringify` of its
`result.context`, which drops keys whose value is `undefined`. A key whose value is null in our
final context may therefore be absent from expected.json. `_executionId` (a random uuid per run,
which flowcraft also puts into a subflow's final context, i.e. into the output of a subflow node
with an `outputs` mapping) is not compared at any depth. A case may name keys whose value
depends on timing (which of several parallel branches finishes last: flowcraft itself runs at
most `navigator.hardwareConcurrency` nodes at once, so its order depends on the machine) in
case.json's "timingDependent" with the reason: those keys must exist, their values are not
compared. UUIDs are normalised: flowcraft draws a random batch id per batch-scatter (in the
`_batch.<scatter>_<batchId>_item_<i>` keys and the worker ids `<uses>_<batchId>_<i>`), this
engine a deterministic one; every UUID in a key or a value (at any depth, also inside a longer
string) is replaced by `<uuid-N>`, N numbering the distinct UUIDs in order of first
appearance (keys in context order, a key before its value), in each context separately, so two
batches stay two. Everything else must be equal. When flowcraft threw (status "threw", no
context: its traversal limit on an endless loop), the run must fail and the context is not
compared.

Pauses: flowcraft's run() stops at a sleep (status awaiting, reason timer) and its scheduler
resumes it later; a sleep here wakes up by itself, so a case whose run stopped only at sleeps
is compared with expected.json's "resumed" section (flowcraft's result after resuming them).
A wait stops both (compared as it stands); when case.json has "resume" data for the wait,
the run is then resumed with it (spec.resume) and compared with "resumed" too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowcraft.model import Flow
from flowcraft.model.blueprint import Blueprint, load_blueprints
from flowcraft.model.blueprint_json import blueprint_to_manifest
from flowcraft.model.loader import load_functions, parse_flow

CASES_DIR = Path(__file__).resolve().parent / "cases"

# flowcraft's result.status -> our Flow phase.
STATUS_TO_PHASE = {
    "completed": "Succeeded",
    "failed": "Failed",
    "threw": "Failed",
    "awaiting": "Awaiting",
}


@dataclass(frozen=True)
class Case:
    name: str
    dir: Path
    meta: dict[str, Any]  # case.json
    expected: dict[str, Any]  # expected.json

    @property
    def pending(self) -> str | None:
        return self.meta.get("pending")

    @property
    def resume(self) -> dict[str, Any] | None:
        """Resume data per wait node (case.json "resume"), what flowcraft was resumed with."""
        return self.meta.get("resume")

    @property
    def sleeps_only(self) -> bool:
        """flowcraft's run stopped only at sleep nodes (its scheduler resumes those)."""
        if self.expected["status"] != "awaiting":
            return False
        details = (self.expected["context"] or {}).get("_awaitingDetails") or {}
        return bool(details) and all(d.get("reason") == "timer" for d in details.values())

    def target(self) -> dict[str, Any]:
        """What a run here must end with: flowcraft's result, after the sleeps it stopped at
        when it stopped only at sleeps (a sleep here wakes up by itself)."""
        resumed: dict[str, Any] | None = self.expected.get("resumed")
        if self.sleeps_only and resumed is not None:
            return resumed
        return self.expected

    @property
    def initial_context(self) -> dict[str, Any] | None:
        path = self.dir / "initial-context.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def manifest(self, name: str | None = None) -> dict[str, Any]:
        """The Flow manifest our tools build from blueprint.json + functions.yaml (+ context)."""
        blueprint = json.loads((self.dir / "blueprint.json").read_text())
        functions = load_functions(self.dir / "functions.yaml")
        manifest = blueprint_to_manifest(
            blueprint, {key: spec.to_dict() for key, spec in functions.items()}
        )
        if name is not None:
            manifest["metadata"]["name"] = name
        context = self.initial_context
        if context is not None:
            manifest["spec"]["context"] = context
        return manifest

    def flow(self, name: str | None = None) -> Flow:
        return parse_flow(self.manifest(name), source=str(self.dir / "blueprint.json"))

    def blueprints(self) -> dict[str, Blueprint] | None:
        """The sub-blueprints its subflow nodes run (subflow-<id>.json), by id; None if none."""
        files = sorted(self.dir.glob("subflow-*.json"))
        return load_blueprints(files).blueprints if files else None


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(CASES_DIR.iterdir()):
        if (path / "case.json").is_file():
            cases.append(
                Case(
                    name=path.name,
                    dir=path,
                    meta=json.loads((path / "case.json").read_text()),
                    expected=json.loads((path / "expected.json").read_text()),
                )
            )
    return cases


def runnable_cases() -> list[Case]:
    return [case for case in load_cases() if not case.pending]


def normalise(ours: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """Our context minus the null-valued keys flowcraft leaves undefined (absent in JSON)."""
    return {k: v for k, v in ours.items() if not (v is None and k not in expected)}


def without_execution_id(value: Any) -> Any:
    """`value` without `_executionId` keys at any depth."""
    if isinstance(value, dict):
        return {k: without_execution_id(v) for k, v in value.items() if k != "_executionId"}
    if isinstance(value, list):
        return [without_execution_id(v) for v in value]
    return value


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def without_uuids(context: dict[str, Any]) -> dict[str, Any]:
    """`context` with each distinct UUID replaced by `<uuid-N>` (order of first appearance)."""
    names: dict[str, str] = {}

    def text(value: str) -> str:
        def name(found: re.Match[str]) -> str:
            uuid = found.group(0).lower()
            return names.setdefault(uuid, f"<uuid-{len(names) + 1}>")

        return _UUID.sub(name, value)

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return text(value)
        if isinstance(value, dict):
            return {text(k): walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return {text(k): walk(v) for k, v in context.items()}


def first_difference(
    ours: dict[str, Any], expected: dict[str, Any], timing: frozenset[str] = frozenset()
) -> str | None:
    """A short description of the first difference (key order: expected's, then ours)."""
    expected = without_uuids(without_execution_id(expected))
    ours = normalise(without_uuids(ours), expected)
    for key, value in expected.items():
        if key not in ours:
            return f"missing key {key!r} (flowcraft: {_short(value)})"
        if key in timing:
            continue
        if ours[key] != value:
            return f"key {key!r}: ours {_short(ours[key])}, flowcraft {_short(value)}"
    for key, value in ours.items():
        if key not in expected:
            return f"extra key {key!r} = {_short(value)}"
    return None


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check(
    case: Case, phase: str, context: dict[str, Any], expected: dict[str, Any] | None = None
) -> list[str]:
    """Problems with one run of `case` against `expected` (default: `case.target()`): status
    first, then the context's first difference."""
    expected = case.target() if expected is None else expected
    problems = []
    want_phase = STATUS_TO_PHASE.get(expected["status"], expected["status"])
    if phase != want_phase:
        problems.append(f"phase {phase}, flowcraft {expected['status']} ({want_phase})")
    if expected["context"] is None:
        return problems  # flowcraft threw: nothing to compare but the failure
    timing = frozenset(case.meta.get("timingDependent", {}))
    diff = first_difference(context, expected["context"], timing)
    if diff is not None:
        problems.append(f"context: {diff}")
    return problems
