"""YAML as kubectl reads it: go-yaml v2 (YAML 1.1) rules for plain scalars, in both directions.

Why: `kubectl apply` converts YAML to JSON with sigs.k8s.io/yaml, i.e. go-yaml v2: an
unquoted `y`, `n`, `yes`, `off`, ... is a boolean, a boolean mapping key becomes the string
"true"/"false", `12:30` stays a string and `1e3` is a number. PyYAML's defaults differ on each
of these, so a manifest that ran locally could mean something else on the cluster.
`read_yaml` resolves plain scalars as go-yaml v2 does and warns (path, line, "quote it")
wherever a word silently became a boolean; `dump_yaml` quotes every string kubectl would read
as something else.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Hashable
from typing import Any

import yaml

from flowcraft.model.errors import Problem, format_path

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
