"""Reading flows from text or files: Flow manifests and flowcraft blueprints.

Why: users arrive with either a `kind: Flow` manifest (YAML/JSON) or the plain blueprint JSON
that flowcraft's `toBlueprint()` emits (`{id, nodes, edges, metadata}`) plus a functions file
mapping each `uses` key to what runs it. Both become the same validated `Flow`, and every
failure (unreadable file, bad YAML, wrong shape, graph problems) surfaces as one
FlowValidationError with paths, so the CLI can print it without a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from flowcraft.model.errors import FlowValidationError, Problem, problems_from_pydantic
from flowcraft.model.flow import API_VERSION, KIND, Flow, FunctionSpec
from flowcraft.model.validation import validate_flow

BLUEPRINT_ID_ANNOTATION = "flowcraft.io/blueprint-id"
BLUEPRINT_VERSION_ANNOTATION = "flowcraft.io/blueprint-version"

Source = str | Path | Mapping[str, Any]


def _read(source: str | Path, what: str) -> tuple[Any, str | None]:
    """Parse YAML (a superset of JSON) from a path or from the text itself."""
    label: str | None = None
    text: str
    if isinstance(source, Path) or ("\n" not in source and _looks_like_path(source)):
        path = Path(source)
        label = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise FlowValidationError(
                [Problem("", f"cannot read {what} file {str(path)!r}: {exc.strerror or exc}")]
            ) from exc
    else:
        text = source
    try:
        return yaml.safe_load(text), label
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise FlowValidationError(
            [Problem("", f"{what} is not valid YAML/JSON{where}: {problem}")], source=label
        ) from exc


def _looks_like_path(text: str) -> bool:
    # Single-line text: a path if it names a manifest file or an existing file; `{...}` is JSON.
    stripped = text.strip()
    if not stripped or stripped[0] in "{[":
        return False
    return stripped.endswith((".yaml", ".yml", ".json")) or Path(stripped).is_file()


def _mapping(data: Any, what: str, label: str | None) -> dict[str, Any]:
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "nothing"
        raise FlowValidationError(
            [Problem("", f"{what} must be a mapping (YAML/JSON object), got {kind}")],
            source=label,
        )
    return data


def load_functions(source: Source) -> dict[str, FunctionSpec]:
    """A functions file: a mapping `uses` key -> FunctionSpec."""
    if isinstance(source, Mapping):
        data: Any = dict(source)
        label: str | None = None
    else:
        data, label = _read(source, "functions")
    mapping = _mapping(data, "functions", label)
    functions: dict[str, FunctionSpec] = {}
    problems: list[Problem] = []
    for key, value in mapping.items():
        try:
            functions[str(key)] = FunctionSpec.model_validate(value)
        except ValidationError as exc:
            problems.extend(problems_from_pydantic(exc, ("functions", str(key))))
    if problems:
        raise FlowValidationError(problems, source=label)
    return functions


def is_blueprint(data: Mapping[str, Any]) -> bool:
    """A flowcraft blueprint has top-level `nodes` and no Kubernetes `spec`/`kind`."""
    return "nodes" in data and "spec" not in data and "kind" not in data


def sanitize_name(raw: str) -> str:
    """Turn a blueprint id into a Kubernetes name: lowercase, other characters become '-'.

    `"My_Flow v2"` -> `"my-flow-v2"`. Raises FlowValidationError when nothing usable remains.
    """
    name = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")[:63].rstrip("-")
    if not name:
        raise FlowValidationError(
            [
                Problem(
                    "id",
                    f"blueprint id {raw!r} cannot become a Kubernetes name "
                    "(needs at least one letter or digit)",
                )
            ]
        )
    return name


def _drop_private(value: Any) -> Any:
    # toBlueprint() may attach debugging keys such as `_sourceLocation`: not part of the format.
    if isinstance(value, dict):
        return {k: _drop_private(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list):
        return [_drop_private(v) for v in value]
    return value


def blueprint_to_manifest(
    blueprint: Mapping[str, Any], functions: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The Flow manifest (as a dict) equivalent to a flowcraft blueprint plus functions."""
    raw_id = blueprint.get("id")
    if not isinstance(raw_id, str) or not raw_id:
        raise FlowValidationError([Problem("id", "blueprint needs a string `id` (the flow name)")])
    name = sanitize_name(raw_id)
    annotations: dict[str, str] = {}
    if name != raw_id:
        annotations[BLUEPRINT_ID_ANNOTATION] = raw_id
    meta = blueprint.get("metadata")
    if isinstance(meta, dict) and meta.get("version") is not None:
        annotations[BLUEPRINT_VERSION_ANNOTATION] = str(meta["version"])
    metadata: dict[str, Any] = {"name": name}
    if annotations:
        metadata["annotations"] = annotations
    nodes = [_drop_private(node) for node in blueprint.get("nodes") or []]
    for node in nodes:
        # flowcraft omits `params`/`config` when empty and may emit explicit nulls.
        if isinstance(node, dict):
            for key in ("params", "config", "inputs"):
                if node.get(key) is None:
                    node.pop(key, None)
    spec: dict[str, Any] = {
        "nodes": nodes,
        "edges": [_drop_private(edge) for edge in blueprint.get("edges") or []],
        "functions": dict(functions or {}),
    }
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def parse_flow(data: Mapping[str, Any], *, source: str | None = None) -> Flow:
    """Validate a manifest dict (shape, then graph) into a Flow; raise FlowValidationError."""
    try:
        flow = Flow.model_validate(dict(data))
    except ValidationError as exc:
        raise FlowValidationError(problems_from_pydantic(exc), source=source) from exc
    try:
        return validate_flow(flow)
    except FlowValidationError as exc:
        raise FlowValidationError(exc.problems, source=source) from exc


def load_flow(source: Source, *, functions: Source | None = None) -> Flow:
    """Load a Flow from a manifest or a blueprint (path, text, or already-parsed mapping).

    `functions` (path, text or mapping: `uses` key -> FunctionSpec) is required for a
    blueprint, which carries no function registry; with a manifest it adds to
    `spec.functions` (a key defined in both places is an error).
    """
    if isinstance(source, Mapping):
        data: Any = dict(source)
        label = None
    else:
        data, label = _read(source, "flow")
    document = _mapping(data, "flow", label)
    extra: dict[str, FunctionSpec] = {} if functions is None else load_functions(functions)
    extra_dump = {key: spec.to_dict() for key, spec in extra.items()}

    if is_blueprint(document):
        if functions is None:
            raise FlowValidationError(
                [
                    Problem(
                        "",
                        "this is a flowcraft blueprint (top-level id/nodes/edges): pass a "
                        "functions file mapping each `uses` key to a script, python or image",
                    )
                ],
                source=label,
            )
        return parse_flow(blueprint_to_manifest(document, extra_dump), source=label)

    if extra_dump:
        spec = document.get("spec")
        if isinstance(spec, dict):
            existing = spec.get("functions") or {}
            clash = sorted(set(existing) & set(extra_dump)) if isinstance(existing, dict) else []
            if clash:
                raise FlowValidationError(
                    [
                        Problem(
                            "spec.functions",
                            f"function {key!r} is defined both in the flow and in the "
                            "functions file",
                        )
                        for key in clash
                    ],
                    source=label,
                )
            if isinstance(existing, dict):
                document = {**document, "spec": {**spec, "functions": {**existing, **extra_dump}}}
    return parse_flow(document, source=label)


def dump_flow(flow: Flow, *, fmt: str = "yaml") -> str:
    """Serialize a Flow as YAML or JSON with camelCase keys (the inverse of load_flow)."""
    data = flow.to_dict()
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False)
