"""Reading flows from text or files: Flow manifests and flowcraft blueprints.

Why: users arrive with either a `kind: Flow` manifest (YAML/JSON) or the plain blueprint JSON
that flowcraft's `toBlueprint()` emits (`{id, nodes, edges, metadata}`) plus a functions file
mapping each `uses` key to what runs it. Both become the same validated `Flow`, and every
failure (unreadable file, bad YAML, wrong shape, graph problems) surfaces as one
FlowValidationError with paths, so the CLI can print it without a traceback.

YAML is read the way the cluster will see it (`kubectl_yaml`: go-yaml v2's YAML 1.1, with a
warning wherever an unquoted word silently became a boolean). A blueprint becomes a manifest in
`blueprint_json`.

The two formats differ in strictness on purpose: a manifest rejects unknown keys (a typo must
not pass), while a blueprint ignores keys flowcraft does not know, as flowcraft itself does,
with one warning per dropped key. Warnings travel next to the Flow (`load_flow_with_warnings`)
so callers decide how to show them; `load_flow` keeps returning just the Flow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from pydantic import ValidationError

from flowcraft.model.blueprint_json import blueprint_to_manifest, is_blueprint
from flowcraft.model.errors import FlowValidationError, Problem, problems_from_pydantic
from flowcraft.model.flow import Flow, FunctionSpec
from flowcraft.model.kubectl_yaml import dump_yaml, read_yaml
from flowcraft.model.validation import validate_flow

Source = str | Path | Mapping[str, Any]


class LoadResult(NamedTuple):
    """A loaded Flow and what the loader noticed but did not reject (unpacks as a pair)."""

    flow: Flow
    warnings: list[Problem]


# ---------------------------------------------------------------------------- files


def _read(
    source: str | Path, what: str, *, reader: str = "kubectl (YAML 1.1)", own: bool = True
) -> tuple[Any, str | None, list[Problem]]:
    """Parse a path or the text itself; returns (data, file label, warnings).

    `own`: the flow's own file (the one the user named first), whose warnings need no file
    name; warnings from a functions or context file carry its name.
    """
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
        except UnicodeDecodeError as exc:
            raise FlowValidationError(
                [Problem("", f"{what} file {str(path)!r} is not UTF-8 text: {exc.reason}")]
            ) from exc
    else:
        text = source
    try:
        data, warnings = read_yaml(text, reader=reader, source=None if own else label or what)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise FlowValidationError(
            [Problem("", f"{what} is not valid YAML/JSON{where}: {problem}")], source=label
        ) from exc
    return data, label, warnings


def _looks_like_path(text: str) -> bool:
    # Single-line text: a path if it names a manifest file or an existing file; `{...}` is JSON.
    stripped = text.strip()
    if not stripped or stripped[0] in "{[":
        return False
    return stripped.endswith((".yaml", ".yml", ".json")) or Path(stripped).is_file()


def _kind_of(data: Any) -> str:
    if data is None:
        return "nothing"
    return {list: "a list", str: "a string", bool: "a boolean"}.get(type(data), type(data).__name__)


def _mapping(data: Any, what: str, label: str | None) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise FlowValidationError(
            [Problem("", f"{what} must be a mapping (YAML/JSON object), got {_kind_of(data)}")],
            source=label,
        )
    return data


# Functions and initial-context files never pass through kubectl, but are read the same way so
# one YAML dialect holds everywhere (a functions entry pasted into spec.functions keeps its
# meaning).
_SIDE_FILE_READER = "flowcraft (YAML 1.1, like kubectl)"


def _load_functions(source: Source) -> tuple[dict[str, FunctionSpec], list[Problem]]:
    if isinstance(source, Mapping):
        data: Any = dict(source)
        label: str | None = None
        warnings: list[Problem] = []
    else:
        data, label, warnings = _read(source, "functions", reader=_SIDE_FILE_READER, own=False)
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
    return functions, warnings


def load_functions(source: Source) -> dict[str, FunctionSpec]:
    """A functions file: a mapping `uses` key -> FunctionSpec."""
    return _load_functions(source)[0]


def _load_initial_context(source: Source) -> tuple[dict[str, Any], list[Problem]]:
    if isinstance(source, Mapping):
        return dict(source), []
    data, label, warnings = _read(source, "initial context", reader=_SIDE_FILE_READER, own=False)
    if not isinstance(data, dict):
        where = f"file {label!r}" if label else "text"
        raise FlowValidationError(
            [
                Problem(
                    "",
                    f"initial context {where} must hold a JSON/YAML object (keys to values), "
                    f"got {_kind_of(data)}",
                )
            ],
            source=label,
        )
    return data, warnings


def load_initial_context(source: Source) -> dict[str, Any]:
    """An initial-context file (JSON or YAML object), path or text: the keys `spec.context` gets.

    Raises FlowValidationError naming the file when it is unreadable or not an object.
    """
    return _load_initial_context(source)[0]


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


def load_flow_with_warnings(
    source: Source,
    *,
    functions: Source | None = None,
    initial_context: Source | None = None,
) -> LoadResult:
    """Load a Flow like `load_flow`, also returning the warnings the loader collected.

    Warnings: keys of a blueprint that flowcraft ignores (dropped), and plain YAML words such as
    `n` or `yes` that kubectl reads as booleans (in any of the files). Each is a Problem with
    a path, and a line (and the file, for the functions/context files) when it came from YAML.
    """
    if isinstance(source, Mapping):
        data: Any = dict(source)
        label = None
        warnings: list[Problem] = []
    else:
        data, label, warnings = _read(source, "flow")
    document = _mapping(data, "flow", label)
    extra: dict[str, FunctionSpec] = {}
    if functions is not None:
        extra, more = _load_functions(functions)
        warnings.extend(more)
    extra_dump = {key: spec.to_dict() for key, spec in extra.items()}
    context: dict[str, Any] | None = None
    if initial_context is not None:
        context, more = _load_initial_context(initial_context)
        warnings.extend(more)

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
        manifest = blueprint_to_manifest(document, extra_dump, warnings=warnings)
        if context is not None:
            manifest["spec"]["context"] = context
        return LoadResult(parse_flow(manifest, source=label), warnings)

    if document.get("kind") == "Blueprint":
        raise FlowValidationError(
            [
                Problem(
                    "kind",
                    "this is a Blueprint, which runs as a subflow node's graph: pass it to "
                    "the flow that runs it with --blueprints, or check it alone with "
                    "`flowcraft validate`",
                )
            ],
            source=label,
        )
    spec = document.get("spec")
    if isinstance(spec, dict) and (extra_dump or context is not None):
        spec = dict(spec)
        if extra_dump:
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
                spec["functions"] = {**existing, **extra_dump}
        current = spec.get("context")
        if context is not None and (current is None or isinstance(current, dict)):
            # The file's keys win over the manifest's (shallow merge); a malformed
            # spec.context is left for the model to report.
            spec["context"] = {**(current or {}), **context}
        document = {**document, "spec": spec}
    return LoadResult(parse_flow(document, source=label), warnings)


def load_flow(
    source: Source,
    *,
    functions: Source | None = None,
    initial_context: Source | None = None,
) -> Flow:
    """Load a Flow from a manifest or a blueprint (path, text, or already-parsed mapping).

    `functions` (path, text or mapping: `uses` key -> FunctionSpec) is required for a
    blueprint, which carries no function registry; with a manifest it adds to
    `spec.functions` (a key defined in both places is an error). `initial_context` (path, text
    or mapping of a JSON/YAML object) sets `spec.context`; its keys win over the manifest's.
    Warnings are dropped here: use `load_flow_with_warnings` to show them.
    """
    return load_flow_with_warnings(
        source, functions=functions, initial_context=initial_context
    ).flow


def dump_flow(flow: Flow, *, fmt: str = "yaml") -> str:
    """Serialize a Flow as YAML or JSON with camelCase keys (the inverse of load_flow)."""
    data = flow.to_dict()
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return dump_yaml(data)
