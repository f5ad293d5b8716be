"""Reading flows from text or files: Flow manifests and flowcraft blueprints.

Why: users arrive with either a `kind: Flow` manifest (YAML/JSON) or the plain blueprint JSON
that flowcraft's `toBlueprint()` emits (`{id, nodes, edges, metadata}`) plus a functions file
mapping each `uses` key to what runs it. Both become the same validated `Flow`, and every
failure (unreadable file, bad YAML, wrong shape, graph problems) surfaces as one
FlowValidationError with paths, so the CLI can print it without a traceback.

YAML is read the way the cluster will see it. `kubectl apply` converts YAML to JSON with
sigs.k8s.io/yaml, i.e. go-yaml v2 (YAML 1.1): an unquoted `y`, `n`, `yes`, `off`, ... is a
boolean, a boolean mapping key becomes the string "true"/"false", `12:30` stays a string and
`1e3` is a number. PyYAML's defaults differ on each of these, so a manifest that ran locally
could mean something else on the cluster; `read_yaml` resolves plain scalars as go-yaml v2
does and warns (path, line, "quote it") wherever a word silently became a boolean.

The two formats differ in strictness on purpose: a manifest rejects unknown keys (a typo must
not pass), while a blueprint ignores keys flowcraft does not know, as flowcraft itself does,
with one warning per dropped key. Warnings travel next to the Flow (`load_flow_with_warnings`)
so callers decide how to show them; `load_flow` keeps returning just the Flow.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from pydantic import ValidationError

from flowcraft.model.errors import FlowValidationError, Problem, format_path, problems_from_pydantic
from flowcraft.model.flow import (
    API_VERSION,
    KIND,
    EdgeSpec,
    Flow,
    FunctionSpec,
    NodeConfig,
    NodeSpec,
)
from flowcraft.model.validation import validate_flow

BLUEPRINT_ID_ANNOTATION = "flowcraft.io/blueprint-id"
BLUEPRINT_VERSION_ANNOTATION = "flowcraft.io/blueprint-version"

Source = str | Path | Mapping[str, Any]


class LoadResult(NamedTuple):
    """A loaded Flow and what the loader noticed but did not reject (unpacks as a pair)."""

    flow: Flow
    warnings: list[Problem]


# ------------------------------------------------------------ YAML as kubectl reads it

_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"

# go-yaml v2's table of plain words: every spelling it accepts, nothing more.
_BOOL_WORDS: dict[str, bool] = {
    **dict.fromkeys(["y", "Y", "yes", "Yes", "YES", "on", "On", "ON"], True),
    **dict.fromkeys(["true", "True", "TRUE"], True),
    **dict.fromkeys(["n", "N", "no", "No", "NO", "off", "Off", "OFF"], False),
    **dict.fromkeys(["false", "False", "FALSE"], False),
}
# Booleans in every YAML version: writing them unquoted is never a surprise.
_LITERAL_BOOLS = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})
_NULL_WORDS = frozenset({"", "~", "null", "Null", "NULL"})
_SPECIAL_FLOATS: dict[str, float] = {
    **dict.fromkeys([".nan", ".NaN", ".NAN"], math.nan),
    **dict.fromkeys([".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"], math.inf),
    **dict.fromkeys(["-.inf", "-.Inf", "-.INF"], -math.inf),
}
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_INT_BASES = {"0x": 16, "0X": 16, "0o": 8, "0O": 8, "0b": 2, "0B": 2}
_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def _go_int(text: str) -> int | None:
    """Go's strconv.ParseInt(text, 0, 64), falling back to ParseUint, as go-yaml v2 tries."""
    sign, body = (text[0], text[1:]) if text[:1] in "+-" else ("", text)
    base = _INT_BASES.get(body[:2], 8 if len(body) > 1 and body[0] == "0" else 10)
    digits = body[2:] if body[:2] in _INT_BASES else body
    if not digits or any(c not in _DIGITS[base] for c in digits):
        return None
    value = int(digits, base) * (-1 if sign == "-" else 1)
    if -(2**63) <= value < 2**63 or (not sign and value < 2**64):
        return value
    return None


def _plain_scalar(text: str) -> tuple[str, Any]:
    """(tag, value) go-yaml v2 gives an unquoted scalar decoded into a JSON-like value.

    Timestamps stay strings (go-yaml v2 hands them to sigs.k8s.io/yaml as their text), base-60
    numbers such as `12:30` are strings, `1e3` and `0o17` are numbers, `=` is a string.
    """
    if text in _BOOL_WORDS:
        return _BOOL, _BOOL_WORDS[text]
    if text in _NULL_WORDS:
        return _NULL, None
    if text in _SPECIAL_FLOATS:
        return _FLOAT, _SPECIAL_FLOATS[text]
    if text == "<<":
        return _MERGE, text
    if text[0] == "." and _DOT_FLOAT.fullmatch(text):
        return _FLOAT, float(text)
    if text[0] in "+-0123456789":
        plain = text.replace("_", "")
        number = _go_int(plain)
        if number is not None:
            return _INT, number
        if _GO_FLOAT.fullmatch(plain) and not math.isinf(value := float(plain)):
            return _FLOAT, value
    return _STR, text


class KubectlLoader(yaml.SafeLoader):
    """A SafeLoader whose unquoted scalars mean what they mean to kubectl (go-yaml v2)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.explicitly_tagged: set[int] = set()  # ids of scalars written with a tag (`!!bool`)

    def compose_scalar_node(self, anchor: Any) -> Any:
        tag = self.peek_event().tag  # type: ignore[no-untyped-call]
        node = super().compose_scalar_node(anchor)
        if tag not in (None, "!"):
            self.explicitly_tagged.add(id(node))
        return node

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # implicit[0]: the scalar is plain (unquoted, untagged); quoted ones stay strings.
        if kind is yaml.ScalarNode and implicit[0]:
            return _plain_scalar(value)[0]
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def _scalar_as(self, node: Any, tags: tuple[str, ...]) -> Any:
        # Also reached by explicit tags (`!!int "12"`): re-resolve, refuse what does not fit.
        tag, value = _plain_scalar(self.construct_scalar(node))
        if tag not in tags:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid {node.tag}", node.start_mark
            )
        return float(value) if _FLOAT in tags else value

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Hashable, Any]:
        # Keys become JSON strings while the mapping is built, as sigs.k8s.io/yaml converts
        # them (true -> "true", 1 -> "1"): converting later would be too late, since Python
        # already merged True with 1 and False with 0.
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
        mapping: dict[Hashable, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            mapping[_json_key(key, key_node)] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_kubectl_bool(self, node: Any) -> Any:
        return self._scalar_as(node, (_BOOL,))

    def construct_kubectl_int(self, node: Any) -> Any:
        return self._scalar_as(node, (_INT,))

    def construct_kubectl_float(self, node: Any) -> Any:
        return self._scalar_as(node, (_FLOAT, _INT))


KubectlLoader.add_constructor(_BOOL, KubectlLoader.construct_kubectl_bool)
KubectlLoader.add_constructor(_INT, KubectlLoader.construct_kubectl_int)
KubectlLoader.add_constructor(_FLOAT, KubectlLoader.construct_kubectl_float)


def _json_key(key: Any, node: yaml.Node) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int | str):
        return str(key)
    if isinstance(key, float):
        return _go_float_key(key)
    kinds: dict[type, str] = {list: "list", dict: "mapping"}
    shown = "null" if key is None else kinds.get(type(key), "tagged")
    raise yaml.constructor.ConstructorError(
        None, None, f"a {shown} mapping key is not allowed (JSON keys are strings)", node.start_mark
    )


class KubectlDumper(yaml.SafeDumper):
    """A SafeDumper that quotes every string kubectl would read as something else.

    PyYAML writes `n`, `1e3` or `0o17` unquoted because to PyYAML they are strings; to
    go-yaml v2 they are a boolean and numbers. Deciding with go-yaml v2's rules keeps what we
    write meaning the same to kubectl and to `read_yaml`. A string that only a YAML 1.1 reader
    like PyYAML would misread (`12:30`, a date) is quoted too, for whoever reads it next.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            tag = _plain_scalar(value)[0]
            if tag != _STR:
                return tag
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]


def dump_yaml(data: Any, **options: Any) -> str:
    """YAML text for `data` that reads back identically with kubectl and `read_yaml`.

    `options` go to yaml.dump (sort_keys defaults to False, allow_unicode to True).
    """
    options = {"sort_keys": False, "allow_unicode": True, **options}
    return str(yaml.dump(data, Dumper=KubectlDumper, **options))


def _bool_traps(
    root: yaml.Node, reader: str, source: str | None, explicit: set[int]
) -> list[Problem]:
    """A warning for every plain `y`/`no`/`on`/... (key or value) that became a boolean."""
    found: list[Problem] = []
    seen: set[int] = set()  # an alias repeats its anchor's nodes: report them once

    def trap(node: yaml.Node) -> bool:
        # style None = plain (unquoted); an explicit `!!bool yes` was asked for, not a trap.
        return (
            isinstance(node, yaml.ScalarNode)
            and node.style is None
            and id(node) not in explicit
            and node.tag == _BOOL
            and node.value in _BOOL_WORDS
            and node.value not in _LITERAL_BOOLS
        )

    def word(node: yaml.Node) -> str:
        return "true" if _BOOL_WORDS[node.value] else "false"

    def walk(node: yaml.Node, at: tuple[str | int, ...]) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else "<key>"
                if trap(key):
                    found.append(
                        Problem(
                            format_path([*at, name]),
                            f"unquoted key {key.value!r} is read as the boolean {word(key)} "
                            f"by {reader} and becomes the key {json.dumps(word(key))}; quote "
                            f"it: {json.dumps(key.value)}",
                            line=key.start_mark.line + 1,
                            source=source,
                        )
                    )
                walk(value, (*at, name))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*at, index))
        elif trap(node):
            found.append(
                Problem(
                    format_path(at),
                    f"unquoted {node.value!r} is read as the boolean {word(node)} by {reader}; "
                    f"quote it: {json.dumps(node.value)}",
                    line=node.start_mark.line + 1,
                    source=source,
                )
            )

    walk(root, ())
    return found


def _go_float_key(value: float) -> str:
    """A float map key as sigs.k8s.io/yaml spells it: Go's FormatFloat(v, 'g', -1, 32)."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    single = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):  # the shortest decimal that reads back as the same float32
        mantissa, _, exp_text = f"{single:.{digits - 1}e}".partition("e")
        if struct.unpack("f", struct.pack("f", float(f"{mantissa}e{exp_text}")))[0] == single:
            break
    sign = "-" if mantissa.startswith("-") else ""
    shown = mantissa.lstrip("-").replace(".", "").rstrip("0") or "0"
    exp = int(exp_text)
    if exp < -4 or exp >= 6:  # where Go's shortest %g switches to an exponent
        rest = f".{shown[1:]}" if len(shown) > 1 else ""
        return f"{sign}{shown[0]}{rest}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{shown}"
    whole, frac = shown[: exp + 1].ljust(exp + 1, "0"), shown[exp + 1 :]
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


def read_yaml(
    text: str, *, reader: str = "kubectl (YAML 1.1)", source: str | None = None
) -> tuple[Any, list[Problem]]:
    """Parse YAML or JSON text as the cluster sees it; return (data, boolean-trap warnings).

    JSON (text starting with `{` or `[`) is read as JSON, as kubectl does. `reader` names who
    reads it that way in the warnings; `source` is put on each warning (None for the flow file).
    Raises yaml.YAMLError on bad syntax or a key JSON cannot hold (null, a list, ...).
    """
    if text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text), []
        except ValueError:
            pass  # YAML flow style (`{a: 1}`): read it as YAML below
    loader = KubectlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        warnings = _bool_traps(node, reader, source, loader.explicitly_tagged)
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    return data, warnings


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


# What a blueprint may say, by its wire (camelCase) names: the fields our models know. A key
# outside these is ignored, as flowcraft ignores it. Keys starting with "_" are flowcraft's own
# tooling metadata (`_sourceLocation`) and are dropped without a word.
_BLUEPRINT_KEYS = frozenset({"id", "nodes", "edges", "metadata"})


def _wire_names(model: type[NodeSpec | EdgeSpec | NodeConfig]) -> frozenset[str]:
    return frozenset(field.alias or name for name, field in model.model_fields.items())


def _known_only(
    item: Any, known: frozenset[str], at: tuple[str | int, ...], warnings: list[Problem]
) -> Any:
    """`item` without the keys outside `known` (a warning for each); non-mappings unchanged."""
    if not isinstance(item, dict):
        return item  # not an object: the model reports it with its path
    kept: dict[str, Any] = {}
    for key, value in item.items():
        if key in known:
            kept[key] = value
        elif not str(key).startswith("_"):
            warnings.append(
                Problem(format_path([*at, key]), "ignored (not part of the blueprint format)")
            )
    return kept


def blueprint_to_manifest(
    blueprint: Mapping[str, Any],
    functions: Mapping[str, Any] | None,
    *,
    warnings: list[Problem] | None = None,
) -> dict[str, Any]:
    """The Flow manifest (as a dict) equivalent to a flowcraft blueprint plus functions.

    Keys flowcraft would ignore are dropped; pass `warnings` to collect one Problem per dropped
    key, with its path in the blueprint (`nodes[2].foo`). The flow gets flowcraft's behaviour:
    `failFast: false` (independent branches keep running after a failure, the flow fails at
    the end) and `expressionLanguage: flowcraft`.
    """
    dropped: list[Problem] = [] if warnings is None else warnings
    raw_id = blueprint.get("id")
    if not isinstance(raw_id, str) or not raw_id:
        raise FlowValidationError([Problem("id", "blueprint needs a string `id` (the flow name)")])
    name = sanitize_name(raw_id)
    dropped.extend(
        Problem(str(key), "ignored (not part of the blueprint format)")
        for key in blueprint
        if key not in _BLUEPRINT_KEYS and not str(key).startswith("_")
    )
    annotations: dict[str, str] = {}
    if name != raw_id:
        annotations[BLUEPRINT_ID_ANNOTATION] = raw_id
    meta = blueprint.get("metadata")  # other metadata keys (cycleEntryPoints, ...) are ignored
    if isinstance(meta, dict) and meta.get("version") is not None:
        annotations[BLUEPRINT_VERSION_ANNOTATION] = str(meta["version"])
    metadata: dict[str, Any] = {"name": name}
    if annotations:
        metadata["annotations"] = annotations

    node_keys, config_keys = _wire_names(NodeSpec), _wire_names(NodeConfig)
    nodes: list[Any] = []
    for index, raw in enumerate(_as_list(blueprint.get("nodes"))):
        node = _known_only(raw, node_keys, ("nodes", index), dropped)
        if isinstance(node, dict):
            # flowcraft omits `params`/`config` when empty and may emit explicit nulls.
            for key in ("params", "config", "inputs"):
                if node.get(key) is None:
                    node.pop(key, None)
            if "config" in node:
                node["config"] = _known_only(
                    node["config"], config_keys, ("nodes", index, "config"), dropped
                )
        nodes.append(node)
    edge_keys = _wire_names(EdgeSpec)
    edges = [
        _known_only(raw, edge_keys, ("edges", index), dropped)
        for index, raw in enumerate(_as_list(blueprint.get("edges")))
    ]
    spec: dict[str, Any] = {
        "nodes": nodes,
        "edges": edges,
        "functions": dict(functions or {}),
        "failFast": False,
        "expressionLanguage": "flowcraft",
    }
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def _as_list(value: Any) -> Any:
    # null/absent means none; any other non-list goes through for the model to report.
    return [] if value is None else value


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
