"""A safe interpreter for the JavaScript expressions flowcraft blueprints carry.

Why it exists: flowcraft (the library whose blueprint format we run) evaluates edge `condition`
and `transform` strings either as dotted property paths (its default evaluator) or as arbitrary
JavaScript handed to `new Function` (its "unsafe" evaluator). Blueprints written for it use
comparisons, `&&`/`||`, arithmetic, `context["key"]`, `Math.round(...)` and bare context keys,
so to run them unchanged we must give those expressions the same values flowcraft gives them.
Running a JavaScript engine or Python's eval on user text is not an option inside the
operator, so this module implements the subset people actually write: a tokenizer, a Pratt
parser to a small AST, and a tree-walking interpreter with JavaScript's value semantics
(undefined vs null, `==` vs `===`, truthiness, `+` concatenation, number coercion, IEEE
division) over JSON-shaped Python values. Nothing reaches Python attributes or builtins: the
only callables are the whitelisted ones defined here, evaluation is bounded in steps and the
parse is bounded in length and depth.

What flowcraft does around the expression is replicated too, because blueprints rely on it:
  - the scope's keys that are valid identifiers become variables, and `context` is the scope's
    "context" entry when there is one (else the scope itself, minus keys that are not names);
  - hyphenated keys in scope (`route-by-total`) are rewritten textually to `context["..."]`
    before parsing, with flowcraft's exact regular expression and replacement string;
  - any runtime error (ReferenceError, TypeError reading a property of undefined, calling a
    non-function, a reserved word as a scope key) makes the whole evaluation `undefined`;
  - a source that is not JavaScript but is a dotted path (`items.0`, `123start`) is read the
    way flowcraft's default PropertyEvaluator reads it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn

__all__ = [
    "DEFAULT_MAX_STEPS",
    "MAX_DEPTH",
    "MAX_SOURCE_LENGTH",
    "UNDEFINED",
    "JSExpressionError",
    "Program",
    "compile_js",
    "rewrite_hyphenated",
]

# Limits. Expressions have no loops, so every AST node is evaluated at most once and the step
# budget mostly guards against pathological sources; depth keeps Python's recursion bounded
# (the parser and the interpreter recurse once or twice per AST level).
DEFAULT_MAX_STEPS: Final = 10_000
MAX_SOURCE_LENGTH: Final = 10_000
MAX_DEPTH: Final = 100

# JavaScript numbers are IEEE doubles: integers beyond 2**53 lose precision, so we switch to
# float there instead of letting Python's exact ints diverge (or grow without bound).
_SAFE_INT: Final = 2**53


class _Undefined:
    """JavaScript's `undefined`: distinct from null (None), falsy, a process-wide singleton."""

    __slots__ = ()
    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNDEFINED"

    def __copy__(self) -> _Undefined:
        return self

    def __deepcopy__(self, memo: object) -> _Undefined:
        return self


UNDEFINED: Final = _Undefined()


class JSExpressionError(Exception):
    """The source is outside the supported subset, too large, or ran out of steps.

    `reason` is the human message; syntax errors start with "syntax error at LINE:COL:".
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _JSThrow(Exception):
    """A JavaScript runtime error (ReferenceError, TypeError); flowcraft turns it into undefined."""


class _ShortCircuit(Exception):
    """`a?.b` met a nullish `a`: unwinds to the end of the optional chain."""


# --------------------------------------------------------------------------------------------
# Tokens

_LINE_TERMINATORS: Final = "\n\r\u2028\u2029"
# JavaScript WhiteSpace: ASCII ones, NBSP, BOM and the Zs category.
_WHITESPACE: Final = "\t\v\f \u00a0\ufeff\u1680\u202f\u205f\u3000" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
)

# Every JavaScript punctuator, longest first, so that e.g. `a<<b` or `a--b` tokenize as JS
# does (and then fail to parse) instead of being misread as `a < <b`.
_PUNCTUATORS: Final = sorted(
    [
        ">>>=",
        "...",
        "===",
        "!==",
        "**=",
        "<<=",
        ">>=",
        ">>>",
        "&&=",
        "||=",
        "??=",
        "=>",
        "==",
        "!=",
        "<=",
        ">=",
        "&&",
        "||",
        "??",
        "?.",
        "++",
        "--",
        "**",
        "<<",
        ">>",
        "+=",
        "-=",
        "*=",
        "/=",
        "%=",
        "&=",
        "|=",
        "^=",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        ";",
        ",",
        "<",
        ">",
        "+",
        "-",
        "*",
        "/",
        "%",
        "&",
        "|",
        "^",
        "!",
        "~",
        "?",
        ":",
        "=",
        ".",
        "@",
        "#",
    ],
    key=len,
    reverse=True,
)

# Reserved words: never identifiers, and never parameter names (see Program.evaluate).
_KEYWORDS: Final = frozenset(
    {
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "debugger",
        "default",
        "delete",
        "do",
        "else",
        "enum",
        "export",
        "extends",
        "false",
        "finally",
        "for",
        "function",
        "if",
        "import",
        "in",
        "instanceof",
        "new",
        "null",
        "return",
        "super",
        "switch",
        "this",
        "throw",
        "true",
        "try",
        "typeof",
        "var",
        "void",
        "while",
        "with",
    }
)

_DECIMAL = re.compile(
    r"(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?", re.ASCII
)
_RADIX = re.compile(
    r"0(?:[xX][0-9a-fA-F](?:_?[0-9a-fA-F])*|[oO][0-7](?:_?[0-7])*|[bB][01](?:_?[01])*)"
)
_LEGACY = re.compile(r"0\d+(?:\.\d*)?(?:[eE][+-]?\d+)?", re.ASCII)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "num" | "str" | "name" | "punct" | "eof"
    value: Any
    pos: int
    text: str
    newline_before: bool


def _is_id_start(ch: str) -> bool:
    return ch in "$_" or ch.isalpha() or (ord(ch) > 127 and ch.isidentifier())


def _is_id_part(ch: str) -> bool:
    return ch in "$_\u200c\u200d" or ch.isalnum() or (ord(ch) > 127 and ("a" + ch).isidentifier())


def _position(source: str, pos: int) -> str:
    line = source.count("\n", 0, pos) + 1
    column = pos - (source.rfind("\n", 0, pos) + 1) + 1
    return f"{line}:{column}"


def _syntax_error(source: str, pos: int, message: str) -> NoReturn:
    raise JSExpressionError(f"syntax error at {_position(source, pos)}: {message}")


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(source)
    newline = False
    while True:
        # Whitespace and comments; remember whether a line terminator was crossed (ASI).
        while i < n:
            ch = source[i]
            if ch in _LINE_TERMINATORS:
                newline = True
                i += 1
            elif ch in _WHITESPACE or (ord(ch) > 127 and unicodedata.category(ch) == "Zs"):
                i += 1
            elif source.startswith("//", i):
                while i < n and source[i] not in _LINE_TERMINATORS:
                    i += 1
            elif source.startswith("/*", i):
                end = source.find("*/", i + 2)
                if end < 0:
                    _syntax_error(source, i, "unterminated comment")
                if any(c in _LINE_TERMINATORS for c in source[i:end]):
                    newline = True
                i = end + 2
            else:
                break
        if i >= n:
            tokens.append(_Token("eof", None, i, "", newline))
            return tokens
        start, ch = i, source[i]
        value: Any
        if (ch.isdigit() and ch.isascii()) or (ch == "." and i + 1 < n and source[i + 1].isdigit()):
            value, i = _scan_number(source, i)
            if i < n and (_is_id_start(source[i]) or source[i].isdigit()):
                _syntax_error(source, i, f"unexpected character {source[i]!r} after number")
            tokens.append(_Token("num", value, start, source[start:i], newline))
        elif ch in "'\"":
            value, i = _scan_string(source, i)
            tokens.append(_Token("str", value, start, source[start:i], newline))
        elif _is_id_start(ch):
            i += 1
            while i < n and _is_id_part(source[i]):
                i += 1
            tokens.append(_Token("name", source[start:i], start, source[start:i], newline))
        else:
            for punct in _PUNCTUATORS:
                if source.startswith(punct, i):
                    # `a?.5:b` is a conditional, not optional chaining.
                    if punct == "?." and i + 2 < n and source[i + 2].isdigit():
                        continue
                    tokens.append(_Token("punct", punct, start, punct, newline))
                    i += len(punct)
                    break
            else:
                _syntax_error(source, i, f"unexpected character {ch!r}")
        newline = False


def _scan_number(source: str, i: int) -> tuple[int | float, int]:
    radix = _RADIX.match(source, i)
    if radix is not None:
        text = radix.group().replace("_", "")
        return _from_int(int(text[2:], {"x": 16, "o": 8, "b": 2}[text[1].lower()])), radix.end()
    legacy = _LEGACY.match(source, i)
    if legacy is not None:
        text = legacy.group()
        digits = re.match(r"0\d+", text)
        assert digits is not None
        if all(c in "01234567" for c in digits.group()):
            # Sloppy-mode legacy octal (`010` is 8); it cannot take a fraction or exponent.
            return _from_int(int(digits.group(), 8)), i + len(digits.group())
        return _decimal_value(text), legacy.end()  # `08`, `09.5`: decimal after all
    decimal = _DECIMAL.match(source, i)
    assert decimal is not None
    text = decimal.group()
    if text.startswith("0_"):
        _syntax_error(source, i + 1, "numeric separator after a leading 0")
    return _decimal_value(text.replace("_", "")), decimal.end()


def _decimal_value(text: str) -> int | float:
    if any(c in text for c in ".eE"):
        return float(text)
    return _from_int(int(text))


def _scan_string(source: str, i: int) -> tuple[str, int]:
    quote, start = source[i], i
    i += 1
    out: list[str] = []
    n = len(source)
    while True:
        if i >= n or source[i] in "\n\r":
            _syntax_error(source, start, "unterminated string")
        ch = source[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        i += 1
        if i >= n:
            _syntax_error(source, start, "unterminated string")
        esc = source[i]
        simple = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v"}
        if esc in simple:
            out.append(simple[esc])
            i += 1
        elif esc == "0" and not (i + 1 < n and source[i + 1].isdigit()):
            out.append("\0")
            i += 1
        elif esc == "x":
            hexits = source[i + 1 : i + 3]
            if not re.fullmatch(r"[0-9a-fA-F]{2}", hexits):
                _syntax_error(source, i - 1, "invalid hexadecimal escape")
            out.append(chr(int(hexits, 16)))
            i += 3
        elif esc == "u":
            braced = re.match(r"\{([0-9a-fA-F]+)\}", source[i + 1 :])
            if braced is not None and int(braced.group(1), 16) <= 0x10FFFF:
                out.append(chr(int(braced.group(1), 16)))
                i += 1 + braced.end()
            elif re.fullmatch(r"[0-9a-fA-F]{4}", source[i + 1 : i + 5]):
                out.append(chr(int(source[i + 1 : i + 5], 16)))
                i += 5
            else:
                _syntax_error(source, i - 1, "invalid unicode escape")
        elif esc in "\r\n\u2028\u2029":
            # Line continuation: the backslash and the line break vanish.
            i += 2 if source.startswith("\r\n", i) else 1
        elif esc.isdigit():
            _syntax_error(source, i - 1, "octal escapes are not supported")
        else:
            out.append(esc)
            i += 1


# --------------------------------------------------------------------------------------------
# AST


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class _Ident:
    name: str


@dataclass(frozen=True, slots=True)
class _ArrayLit:
    items: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _ObjectLit:
    # A str key is a plain property name; a node key is computed (`[expr]: value`).
    entries: tuple[tuple[str | _Node, _Node], ...]


@dataclass(frozen=True, slots=True)
class _Member:
    obj: _Node
    prop: _Node  # a _Literal(str) for `.name`
    optional: bool


@dataclass(frozen=True, slots=True)
class _Call:
    callee: _Node
    args: tuple[_Node, ...]
    optional: bool


@dataclass(frozen=True, slots=True)
class _Chain:
    """The end of an optional chain: where `a?.b.c` yields undefined if `a` is nullish."""

    expr: _Node


@dataclass(frozen=True, slots=True)
class _Unary:
    op: str
    operand: _Node


@dataclass(frozen=True, slots=True)
class _Binary:
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True, slots=True)
class _Logical:
    op: str  # && || ??
    left: _Node
    right: _Node


@dataclass(frozen=True, slots=True)
class _Conditional:
    test: _Node
    then: _Node
    other: _Node


_Node = (
    _Literal
    | _Ident
    | _ArrayLit
    | _ObjectLit
    | _Member
    | _Call
    | _Chain
    | _Unary
    | _Binary
    | _Logical
    | _Conditional
)

# Binding powers (JavaScript precedence). `??` shares ||'s level but may not be mixed with
# && or || without parentheses; `**` is right-associative and rejects a unary left operand.
_BINARY_POWER: Final = {
    "||": 3,
    "??": 3,
    "&&": 4,
    "==": 8,
    "!=": 8,
    "===": 8,
    "!==": 8,
    "<": 9,
    ">": 9,
    "<=": 9,
    ">=": 9,
    "+": 11,
    "-": 11,
    "*": 12,
    "/": 12,
    "%": 12,
    "**": 13,
}
_CONDITIONAL_POWER: Final = 2
_UNARY_POWER: Final = 14
_ABOVE_AND: Final = 5  # operands of `??` are tighter than `&&`


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.index = 0
        self.depth = 0
        self.parenthesized: set[int] = set()
        self.identifiers: set[str] = set()

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def at(self, punct: str) -> bool:
        return self.token.kind == "punct" and self.token.value == punct

    def expect(self, punct: str) -> None:
        if not self.at(punct):
            self.unexpected()
        self.advance()

    def unexpected(self, token: _Token | None = None) -> NoReturn:
        token = token or self.token
        if token.kind == "eof":
            _syntax_error(self.source, token.pos, "unexpected end of expression")
        _syntax_error(self.source, token.pos, f"unexpected token {token.text!r}")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            _syntax_error(
                self.source, self.token.pos, f"expression nests deeper than {MAX_DEPTH} levels"
            )

    def parse(self) -> _Node:
        node = self.expression(0)
        # flowcraft runs `return <source>`: what follows a `;` (or a line break where JavaScript
        # inserts one) is further statements, never reached. We accept expression statements.
        while self.token.kind != "eof":
            if self.at(";"):
                self.advance()
            elif not self.token.newline_before:
                self.unexpected()
            if self.token.kind != "eof" and not self.at(";"):
                self.expression(0)
        if _ast_depth(node) > MAX_DEPTH:
            _syntax_error(self.source, 0, f"expression nests deeper than {MAX_DEPTH} levels")
        return node

    def expression(self, min_power: int) -> _Node:
        self.enter()
        left = self.unary()
        while True:
            token = self.token
            if token.kind != "punct":
                break
            op = token.value
            if op == "?" and min_power <= _CONDITIONAL_POWER:
                self.advance()
                then = self.expression(0)
                self.expect(":")
                other = self.expression(0)
                left = _Conditional(left, then, other)
                continue
            power = _BINARY_POWER.get(op)
            if power is None or power < min_power:
                break
            mixed = (op == "??" and isinstance(left, _Logical) and left.op != "??") or (
                op in ("&&", "||") and isinstance(left, _Logical) and left.op == "??"
            )
            if mixed and id(left) not in self.parenthesized:
                _syntax_error(
                    self.source, token.pos, f"cannot mix '??' and '{op}' without parentheses"
                )
            if op == "**" and isinstance(left, _Unary) and id(left) not in self.parenthesized:
                _syntax_error(
                    self.source, token.pos, "unary operator before '**' needs parentheses"
                )
            self.advance()
            if op == "**":
                right = self.expression(power)  # right-associative
            elif op == "??":
                right = self.expression(_ABOVE_AND)
            else:
                right = self.expression(power + 1)
            if op in ("&&", "||", "??"):
                left = _Logical(op, left, right)
            else:
                left = _Binary(op, left, right)
        self.depth -= 1
        return left

    def unary(self) -> _Node:
        token = self.token
        if (token.kind == "punct" and token.value in ("!", "-", "+")) or (
            token.kind == "name" and token.value in ("typeof", "void")
        ):
            self.advance()
            self.enter()
            operand = self.unary()
            self.depth -= 1
            return _Unary(token.value, operand)
        return self.postfix(self.primary())

    def postfix(self, node: _Node) -> _Node:
        optional_chain = False
        while True:
            if self.at("."):
                self.advance()
                node = _Member(node, _Literal(self.property_name()), False)
            elif self.at("?."):
                self.advance()
                optional_chain = True
                if self.at("["):
                    node = _Member(node, self.bracket(), True)
                elif self.at("("):
                    node = _Call(node, self.arguments(), True)
                else:
                    node = _Member(node, _Literal(self.property_name()), True)
            elif self.at("["):
                node = _Member(node, self.bracket(), False)
            elif self.at("("):
                node = _Call(node, self.arguments(), False)
            else:
                break
        return _Chain(node) if optional_chain else node

    def property_name(self) -> str:
        token = self.advance()
        if token.kind != "name":  # any IdentifierName, reserved words included (`a.class`)
            self.unexpected(token)
        return str(token.value)

    def bracket(self) -> _Node:
        self.expect("[")
        node = self.expression(0)
        self.expect("]")
        return node

    def arguments(self) -> tuple[_Node, ...]:
        self.expect("(")
        args: list[_Node] = []
        while not self.at(")"):
            args.append(self.expression(0))
            if not self.at(")"):
                self.expect(",")
        self.advance()
        return tuple(args)

    def primary(self) -> _Node:
        token = self.advance()
        if token.kind in ("num", "str"):
            return _Literal(token.value)
        if token.kind == "name":
            name = token.value
            if name == "true":
                return _Literal(True)
            if name == "false":
                return _Literal(False)
            if name == "null":
                return _Literal(None)
            if name in _KEYWORDS:
                self.unexpected(token)
            self.identifiers.add(name)
            return _Ident(name)
        if token.kind == "punct":
            if token.value == "(":
                self.enter()
                node = self.expression(0)
                self.depth -= 1
                self.expect(")")
                self.parenthesized.add(id(node))
                return node
            if token.value == "[":
                return self.array()
            if token.value == "{":
                return self.object()
        self.unexpected(token)

    def array(self) -> _Node:
        items: list[_Node] = []
        while not self.at("]"):
            items.append(self.expression(0))  # holes (`[1,,2]`) are not supported
            if not self.at("]"):
                self.expect(",")
        self.advance()
        return _ArrayLit(tuple(items))

    def object(self) -> _Node:
        entries: list[tuple[str | _Node, _Node]] = []
        while not self.at("}"):
            token = self.token
            key: str | _Node
            if self.at("["):
                key = self.bracket()
            elif token.kind == "name":
                self.advance()
                key = str(token.value)
                if not self.at(":"):  # shorthand `{a}` reads the variable a
                    if key in _KEYWORDS:
                        self.unexpected(token)
                    self.identifiers.add(key)
                    entries.append((key, _Ident(key)))
                    if not self.at("}"):
                        self.expect(",")
                    continue
            elif token.kind == "str":
                self.advance()
                key = str(token.value)
            elif token.kind == "num":
                self.advance()
                key = _to_string(token.value)
            else:
                self.unexpected()
            self.expect(":")
            entries.append((key, self.expression(0)))
            if not self.at("}"):
                self.expect(",")
        self.advance()
        return _ObjectLit(tuple(entries))


def _children(node: _Node) -> Iterator[_Node]:
    if isinstance(node, _ArrayLit):
        yield from node.items
    elif isinstance(node, _ObjectLit):
        for key, value in node.entries:
            if not isinstance(key, str):
                yield key
            yield value
    elif isinstance(node, _Member):
        yield node.obj
        yield node.prop
    elif isinstance(node, _Call):
        yield node.callee
        yield from node.args
    elif isinstance(node, _Chain):
        yield node.expr
    elif isinstance(node, _Unary):
        yield node.operand
    elif isinstance(node, _Binary | _Logical):
        yield node.left
        yield node.right
    elif isinstance(node, _Conditional):
        yield node.test
        yield node.then
        yield node.other


def _ast_depth(root: _Node) -> int:
    # Iterative: a left-leaning chain like `a+b+c+...` is deep but parsed without recursion.
    deepest = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in _children(node))
    return deepest


# --------------------------------------------------------------------------------------------
# Values: JSON-shaped Python values stand for JavaScript values.
#   undefined -> UNDEFINED, null -> None, boolean -> bool, number -> int | float,
#   string -> str, array -> list, object -> dict, plus the whitelisted functions below.


class _Function:
    """A whitelisted builtin (Math.round, "s".includes bound to s, ...)."""

    __slots__ = ("impl", "name", "props")

    def __init__(
        self,
        name: str,
        impl: Callable[[Sequence[Any]], Any],
        props: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.impl = impl
        self.props: Mapping[str, Any] = props or {}

    def __repr__(self) -> str:
        return f"function {self.name}() {{ [native code] }}"


class _Namespace:
    """A builtin object such as Math: properties only, serialises as `{}` like in JSON."""

    __slots__ = ("name", "props")

    def __init__(self, name: str, props: Mapping[str, Any]) -> None:
        self.name = name
        self.props = props


class _JSArray(list[Any]):
    """An array built by a literal: may hold UNDEFINED until the result is exported."""


class _JSObject(dict[str, Any]):
    """An object built by a literal: may hold UNDEFINED until the result is exported."""


def _from_int(value: int) -> int | float:
    if -_SAFE_INT <= value <= _SAFE_INT:
        return value
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    """JavaScript's type of a value, with null separate from object."""
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, _Function):
        return "function"
    return "object"


def _truthy(value: Any) -> bool:
    if value is UNDEFINED or value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return not math.isnan(value) and value != 0  # NaN and ±0 are falsy
    if isinstance(value, str):
        return value != ""
    return True  # arrays and objects, even empty ones


def _number_to_string(value: int | float) -> str:
    """Number::toString: shortest round-trip digits, JavaScript's exponent thresholds."""
    if isinstance(value, int) and abs(value) < 10**21:
        return str(value)
    x = float(value)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    mantissa, _, exp_text = repr(abs(x)).partition("e")
    int_part, _, frac = mantissa.partition(".")
    frac = frac.rstrip("0") if frac != "0" else ""
    digits = (int_part + frac).lstrip("0")
    exponent = int(exp_text or 0) - len(frac)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    k = len(digits)
    n = k + exponent  # value = 0.<digits> * 10**n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    e_text = ("+" if e >= 0 else "-") + str(abs(e))
    if k == 1:
        return f"{sign}{digits}e{e_text}"
    return f"{sign}{digits[0]}.{digits[1:]}e{e_text}"


def _to_primitive(value: Any) -> Any:
    """ToPrimitive with the default hint, for the values we model: objects become strings."""
    if isinstance(value, list):
        return _join(value, ",")
    if isinstance(value, _Function):
        return repr(value)
    if isinstance(value, _Namespace):
        return f"[object {value.name}]"
    if isinstance(value, dict) or _kind(value) == "object":
        return "[object Object]"
    return value


def _to_string(value: Any) -> str:
    value = _to_primitive(value)
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number_to_string(value)
    return str(value)


def _join(items: Sequence[Any], separator: str) -> str:
    return separator.join(
        "" if item is None or item is UNDEFINED else _to_string(item) for item in items
    )


_JS_SPACE: Final = _WHITESPACE + _LINE_TERMINATORS
_NUMERIC_STRING = re.compile(
    r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Infinity)", re.ASCII
)
_RADIX_STRING = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")


def _to_number(value: Any) -> int | float:
    value = _to_primitive(value)
    if value is UNDEFINED:
        return math.nan
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return _from_int(value)
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        text = value.strip(_JS_SPACE)
        if text == "":
            return 0
        if _RADIX_STRING.fullmatch(text):
            return _from_int(int(text[2:], {"x": 16, "o": 8, "b": 2}[text[1].lower()]))
        if not _NUMERIC_STRING.fullmatch(text):
            return math.nan
        if text.lstrip("+-") == "Infinity":
            return -math.inf if text.startswith("-") else math.inf
        if any(c in text for c in ".eE"):
            return float(text)
        return _from_int(int(text))
    return math.nan


def _to_integer(value: Any) -> float:
    """ToIntegerOrInfinity, used for string/array positions."""
    number = _to_number(value)
    if math.isnan(number):
        return 0
    if math.isinf(number):
        return number
    return math.trunc(number)


def _to_key(value: Any) -> str:
    return value if isinstance(value, str) else _to_string(value)


def _has_astral(text: str) -> bool:
    return not text.isascii() and any(ord(c) > 0xFFFF for c in text)


def _units(text: str) -> str:
    """The string as UTF-16 code units (astral characters split into surrogate pairs)."""
    if not _has_astral(text):
        return text
    return "".join(
        c
        if ord(c) <= 0xFFFF
        else chr(0xD800 + ((ord(c) - 0x10000) >> 10)) + chr(0xDC00 + ((ord(c) - 0x10000) & 0x3FF))
        for c in text
    )


def _from_units(units: str) -> str:
    """Re-pair surrogates into characters; a lone surrogate stays as it is."""
    return units.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


# --- equality and comparison --------------------------------------------------------------


def _strict_equals(a: Any, b: Any) -> bool:
    kind = _kind(a)
    if kind != _kind(b):
        return False
    if kind in ("undefined", "null"):
        return True
    if kind in ("number", "string", "boolean"):
        return bool(a == b)  # NaN != NaN; 0 == -0.0; 1 == 1.0
    return a is b  # objects compare by identity


def _same_value_zero(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b) and math.isnan(a) and math.isnan(b):
        return True
    return _strict_equals(a, b)


def _loose_equals(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka == kb:
        return _strict_equals(a, b)
    nullish = ("undefined", "null")
    if ka in nullish or kb in nullish:
        return ka in nullish and kb in nullish
    if ka == "number" and kb == "string":
        return bool(a == _to_number(b))
    if ka == "string" and kb == "number":
        return bool(_to_number(a) == b)
    if ka == "boolean":
        return _loose_equals(int(a), b)
    if kb == "boolean":
        return _loose_equals(a, int(b))
    if ka in ("object", "function") and kb in ("number", "string"):
        return _loose_equals(_to_primitive(a), b)
    if kb in ("object", "function") and ka in ("number", "string"):
        return _loose_equals(a, _to_primitive(b))
    return False


def _compare(op: str, a: Any, b: Any) -> bool:
    pa, pb = _to_primitive(a), _to_primitive(b)
    if isinstance(pa, str) and isinstance(pb, str):
        if _has_astral(pa) or _has_astral(pb):  # JavaScript orders by UTF-16 code unit
            ea = pa.encode("utf-16-be", "surrogatepass")
            eb = pb.encode("utf-16-be", "surrogatepass")
            return _ORDER[op](ea, eb)
        return _ORDER[op](pa, pb)
    na, nb = _to_number(pa), _to_number(pb)
    if math.isnan(na) or math.isnan(nb):
        return False
    return _ORDER[op](na, nb)


_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": lambda x, y: bool(x < y),
    ">": lambda x, y: bool(x > y),
    "<=": lambda x, y: bool(x <= y),
    ">=": lambda x, y: bool(x >= y),
}


# --- arithmetic -----------------------------------------------------------------------------


def _neg(x: int | float) -> int | float:
    if isinstance(x, int):
        return -x if x != 0 else -0.0  # JavaScript has a negative zero
    return -x


def _add(a: Any, b: Any) -> Any:
    pa, pb = _to_primitive(a), _to_primitive(b)
    if isinstance(pa, str) or isinstance(pb, str):
        return _to_string(pa) + _to_string(pb)
    x, y = _to_number(pa), _to_number(pb)
    if isinstance(x, int) and isinstance(y, int):
        return _from_int(x + y)
    return float(x) + float(y)


def _arith(op: str, a: Any, b: Any) -> int | float:
    x, y = _to_number(a), _to_number(b)
    both_int = isinstance(x, int) and isinstance(y, int)
    if op == "-":
        if isinstance(x, int) and isinstance(y, int):
            return _from_int(x - y)
        return float(x) - float(y)
    if op == "*":
        if isinstance(x, int) and isinstance(y, int):
            product = x * y
            if product == 0 and (x < 0 or y < 0):
                return -0.0
            return _from_int(product)
        try:
            return float(x) * float(y)
        except OverflowError:  # pragma: no cover - float * float saturates to inf
            return math.inf
    if op == "/":
        return _divide(x, y, both_int)
    if op == "%":
        return _remainder(x, y)
    return _power(x, y)


def _divide(x: int | float, y: int | float, both_int: bool) -> int | float:
    if y == 0:
        if math.isnan(x) or x == 0:
            return math.nan
        negative = (x < 0) != (math.copysign(1.0, float(y)) < 0)
        return -math.inf if negative else math.inf
    if both_int and isinstance(x, int) and isinstance(y, int) and x % y == 0:
        if x == 0 and y < 0:
            return -0.0
        return _from_int(x // y)
    return float(x) / float(y)


def _remainder(x: int | float, y: int | float) -> int | float:
    # JavaScript's % keeps the dividend's sign (math.fmod), unlike Python's %.
    if math.isnan(x) or math.isnan(y) or math.isinf(x) or y == 0:
        return math.nan
    if math.isinf(y):
        return x
    if isinstance(x, int) and isinstance(y, int):
        result = abs(x) % abs(y)
        if result == 0:
            return -0.0 if x < 0 else 0
        return -result if x < 0 else result
    return math.fmod(x, y)


def _power(x: int | float, y: int | float) -> int | float:
    if math.isnan(y):
        return math.nan
    if y == 0:
        return 1
    if math.isnan(x):
        return math.nan
    if abs(x) == 1 and math.isinf(y):
        return math.nan  # Python says 1, JavaScript says NaN
    # Exact integer power only while it stays small; beyond 2**53 JavaScript is approximate
    # anyway, and this keeps `9 ** 9 ** 9` from computing a huge Python int.
    if (
        isinstance(x, int)
        and isinstance(y, int)
        and y > 0
        and (x == 0 or abs(x) == 1 or y * math.log2(abs(x)) <= 53)
    ):
        result: int = x**y
        return result
    try:
        return math.pow(x, y)
    except OverflowError:
        negative = x < 0 and float(y).is_integer() and int(y) % 2 == 1
        return -math.inf if negative else math.inf
    except ValueError:
        if x == 0:  # 0 ** negative
            odd = float(y).is_integer() and int(y) % 2 == 1
            return -math.inf if odd and math.copysign(1.0, float(x)) < 0 else math.inf
        return math.nan  # negative base, fractional exponent


# --- builtins ---------------------------------------------------------------------------------


def _arg(args: Sequence[Any], index: int) -> Any:
    return args[index] if index < len(args) else UNDEFINED


def _integral(value: float) -> int | float:
    """Math.round & co.: an integral result is an int unless it is -0, infinite or NaN."""
    if math.isnan(value) or math.isinf(value) or (value == 0 and math.copysign(1.0, value) < 0):
        return value
    return _from_int(int(value))


def _math_round(args: Sequence[Any]) -> int | float:
    x = _to_number(_arg(args, 0))
    if isinstance(x, int) or math.isnan(x) or math.isinf(x):
        return x
    floor = math.floor(x)
    result = floor + 1 if x - floor >= 0.5 else floor
    if result == 0 and (x < 0 or math.copysign(1.0, x) < 0):
        return -0.0  # Math.round(-0.4) is -0
    return _from_int(result)


def _math_unary(fn: Callable[[float], float], integral: bool) -> Callable[[Sequence[Any]], Any]:
    def impl(args: Sequence[Any]) -> Any:
        x = _to_number(_arg(args, 0))
        if isinstance(x, int) and integral:
            return x
        if math.isnan(x):
            return math.nan
        if integral and math.isinf(x):
            return x
        if integral and x == 0:
            return x  # keeps -0
        try:
            result = fn(float(x))
        except ValueError:
            return math.nan
        if integral:
            if result == 0 and x < 0:
                return -0.0  # Math.ceil(-0.5) and Math.trunc(-0.5) are -0
            return _integral(result)
        if isinstance(x, int) and result.is_integer() and not math.isinf(result):
            return _from_int(int(result))
        return result

    return impl


def _math_abs(args: Sequence[Any]) -> int | float:
    x = _to_number(_arg(args, 0))
    return abs(x)


def _math_sign(args: Sequence[Any]) -> int | float:
    x = _to_number(_arg(args, 0))
    if math.isnan(x) or x == 0:
        return x
    return 1 if x > 0 else -1


def _math_extreme(largest: bool) -> Callable[[Sequence[Any]], Any]:
    def impl(args: Sequence[Any]) -> Any:
        numbers = [_to_number(a) for a in args]  # every argument is coerced, in order
        best: int | float = -math.inf if largest else math.inf
        for number in numbers:
            if math.isnan(number):
                return math.nan
            if largest and (
                number > best or (number == best == 0 and math.copysign(1.0, best) < 0)
            ):
                best = number
            if not largest and (
                number < best or (number == best == 0 and math.copysign(1.0, float(number)) < 0)
            ):
                best = number
        return best

    return impl


def _math_pow(args: Sequence[Any]) -> int | float:
    return _power(_to_number(_arg(args, 0)), _to_number(_arg(args, 1)))


_MATH: Final = _Namespace(
    "Math",
    {
        "PI": math.pi,
        "E": math.e,
        "abs": _Function("abs", _math_abs),
        "ceil": _Function("ceil", _math_unary(math.ceil, True)),
        "floor": _Function("floor", _math_unary(math.floor, True)),
        "trunc": _Function("trunc", _math_unary(math.trunc, True)),
        "round": _Function("round", _math_round),
        "sign": _Function("sign", _math_sign),
        "sqrt": _Function("sqrt", _math_unary(math.sqrt, False)),
        "pow": _Function("pow", _math_pow),
        "max": _Function("max", _math_extreme(True)),
        "min": _Function("min", _math_extreme(False)),
    },
)


def _is_nan(args: Sequence[Any]) -> bool:
    x = _to_number(_arg(args, 0))
    return math.isnan(x)


def _is_finite(args: Sequence[Any]) -> bool:
    x = _to_number(_arg(args, 0))
    return not math.isnan(x) and not math.isinf(x)


_GLOBALS: Final[Mapping[str, Any]] = {
    "undefined": UNDEFINED,
    "NaN": math.nan,
    "Infinity": math.inf,
    "Math": _MATH,
    "Number": _Function("Number", lambda args: _to_number(args[0]) if args else 0),
    "String": _Function("String", lambda args: _to_string(args[0]) if args else ""),
    "Boolean": _Function("Boolean", lambda args: _truthy(_arg(args, 0))),
    "Array": _Function(
        "Array",
        lambda args: _throw("TypeError: Array() is not supported"),
        {"isArray": _Function("isArray", lambda args: isinstance(_arg(args, 0), list))},
    ),
    "isNaN": _Function("isNaN", _is_nan),
    "isFinite": _Function("isFinite", _is_finite),
}


def _throw(message: str) -> NoReturn:
    raise _JSThrow(message)


def _string_method(text: str, name: str) -> _Function | None:
    """String.prototype methods people use in conditions; positions are UTF-16 code units."""

    def search(args: Sequence[Any]) -> tuple[str, str]:
        return _units(text), _units(_to_string(_arg(args, 0)))

    def clamp(args: Sequence[Any], length: int, default: int) -> int:
        value = _arg(args, 1)
        if value is UNDEFINED:
            return default
        return int(min(max(_to_integer(value), 0), length))

    def includes(args: Sequence[Any]) -> bool:
        units, needle = search(args)
        return units.find(needle, clamp(args, len(units), 0)) >= 0

    def starts_with(args: Sequence[Any]) -> bool:
        units, needle = search(args)
        return units.startswith(needle, clamp(args, len(units), 0))

    def ends_with(args: Sequence[Any]) -> bool:
        units, needle = search(args)
        end = clamp(args, len(units), len(units))
        return units[:end].endswith(needle)

    def index_of(args: Sequence[Any]) -> int:
        units, needle = search(args)
        return units.find(needle, clamp(args, len(units), 0))

    methods: dict[str, Callable[[Sequence[Any]], Any]] = {
        "includes": includes,
        "startsWith": starts_with,
        "endsWith": ends_with,
        "indexOf": index_of,
        "toLowerCase": lambda args: text.lower(),
        "toUpperCase": lambda args: text.upper(),
        "trim": lambda args: text.strip(_JS_SPACE),
    }
    impl = methods.get(name)
    return _Function(name, impl) if impl is not None else None


def _array_method(items: list[Any], name: str) -> _Function | None:
    """Array.prototype methods without callbacks: includes, indexOf, join."""

    def start(args: Sequence[Any]) -> int:
        value = _arg(args, 1)
        if value is UNDEFINED:
            return 0
        position = _to_integer(value)
        if position < 0:
            position = max(len(items) + position, 0)
        return int(min(position, len(items)))

    def includes(args: Sequence[Any]) -> bool:
        needle = _arg(args, 0)
        return any(_same_value_zero(item, needle) for item in items[start(args) :])

    def index_of(args: Sequence[Any]) -> int:
        needle = _arg(args, 0)
        offset = start(args)
        for index, item in enumerate(items[offset:], offset):
            if _strict_equals(item, needle):
                return index
        return -1

    def join(args: Sequence[Any]) -> str:
        separator = _arg(args, 0)
        return _join(items, "," if separator is UNDEFINED else _to_string(separator))

    methods: dict[str, Callable[[Sequence[Any]], Any]] = {
        "includes": includes,
        "indexOf": index_of,
        "join": join,
    }
    impl = methods.get(name)
    return _Function(name, impl) if impl is not None else None


def _array_index(key: str) -> int | None:
    if key.isdigit() and key.isascii() and (key == "0" or not key.startswith("0")):
        return int(key)
    return None


def _get(obj: Any, key_value: Any) -> Any:
    """obj[key] with JavaScript's rules; a missing property is UNDEFINED, nullish obj throws."""
    if obj is UNDEFINED or obj is None:
        reading = _to_string(key_value)
        _throw(f"TypeError: Cannot read properties of {_to_string(obj)} (reading {reading!r})")
    key = _to_key(key_value)
    if isinstance(obj, dict):
        return obj.get(key, UNDEFINED)
    if isinstance(obj, list):
        if key == "length":
            return len(obj)
        index = _array_index(key)
        if index is not None:
            return obj[index] if index < len(obj) else UNDEFINED
        method = _array_method(obj, key)
        return method if method is not None else UNDEFINED
    if isinstance(obj, str):
        if key == "length":
            return len(_units(obj))
        index = _array_index(key)
        if index is not None:
            units = _units(obj)
            return _from_units(units[index]) if index < len(units) else UNDEFINED
        method = _string_method(obj, key)
        return method if method is not None else UNDEFINED
    if isinstance(obj, _Namespace | _Function):
        return obj.props.get(key, UNDEFINED)
    return UNDEFINED  # numbers, booleans: no whitelisted methods


def _export(value: Any) -> Any:
    """The evaluation result as plain JSON-shaped Python.

    Containers built by literals lose their undefined/function members the way JSON.stringify
    drops them (null in arrays, absent in objects); -0 becomes 0. Values that came from the
    scope are returned as they are (never copied).
    """
    if isinstance(value, _Function | _Namespace):
        return UNDEFINED if isinstance(value, _Function) else {}
    if isinstance(value, float) and value == 0:
        return 0
    if isinstance(value, _JSArray):
        out: list[Any] = []
        for item in value:
            exported = _export(item)
            out.append(None if exported is UNDEFINED else exported)
        return out
    if isinstance(value, _JSObject):
        result: dict[str, Any] = {}
        for key, item in value.items():
            exported = _export(item)
            if exported is not UNDEFINED:
                result[key] = exported
        return result
    return value


# --------------------------------------------------------------------------------------------
# Scope handling, as flowcraft's UnsafeEvaluator builds it around the expression.

# Keys flowcraft passes as parameters of `new Function`; JavaScript's /^[a-z_$][\w$]*$/i.
_VALID_KEY = re.compile(r"[a-z_$][\w$]*\Z", re.IGNORECASE | re.ASCII)
_HYPHEN_KEY = re.compile(r"[a-zA-Z0-9_$-]+\Z", re.ASCII)
# The dotted paths flowcraft's PropertyEvaluator accepts.
_PROPERTY_PATH = re.compile(r"[a-zA-Z0-9_$.]+\Z", re.ASCII)


def _hyphenated_keys(scope: Mapping[str, Any]) -> list[str]:
    return [
        key
        for key in scope
        if isinstance(key, str) and not _VALID_KEY.match(key) and _HYPHEN_KEY.match(key)
    ]


def _expand_replacement(template: str, match: re.Match[str]) -> str:
    """JavaScript String.prototype.replace's `$` patterns (the regex has no groups)."""
    out: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        nxt = template[i + 1] if i + 1 < len(template) else ""
        if ch == "$" and nxt == "$":
            out.append("$")
        elif ch == "$" and nxt == "&":
            out.append(match.group())
        elif ch == "$" and nxt == "`":
            out.append(match.string[: match.start()])
        elif ch == "$" and nxt == "'":
            out.append(match.string[match.end() :])
        else:
            out.append(ch)
            i += 1
            continue
        i += 2
    return "".join(out)


def rewrite_hyphenated(source: str, keys: Sequence[str]) -> str:
    """flowcraft's textual rewrite: a hyphenated key becomes `context["key"]`.

    Longest keys first; a key matches where it is not preceded by [\\w$] nor followed by
    [\\w$-]. It is purely textual (string literals are rewritten too), as in flowcraft.
    """
    result = source
    for key in sorted(keys, key=len, reverse=True):
        if "-" not in key:
            continue
        pattern = re.compile(r"(?<![\w$])" + re.escape(key) + r"(?![\w$-])", re.ASCII)
        template = f'context["{key}"]'
        budget = [MAX_SOURCE_LENGTH * 2]

        def replace(
            match: re.Match[str], template: str = template, budget: list[int] = budget
        ) -> str:
            text = _expand_replacement(template, match)
            budget[0] -= len(text)
            if budget[0] < 0:
                raise JSExpressionError("expression too long after rewriting hyphenated keys")
            return text

        result = pattern.sub(replace, result)
        if len(result) > MAX_SOURCE_LENGTH * 2:
            raise JSExpressionError("expression too long after rewriting hyphenated keys")
    return result


# Node-id-like hyphenated names (`step-1`); keys such as "-2" or "a-" are possible in principle
# but accepting them here would hide real syntax errors like `-2 ** 2`.
_HYPHEN_RUN = re.compile(r"(?<![\w$])[A-Za-z0-9_$]+(?:-[A-Za-z0-9_$]+)+(?![\w$-])", re.ASCII)
_STRING_LITERAL = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"", re.DOTALL)


def _optimistic_rewrite(source: str) -> str:
    """Stand-in for the rewrite when keys are unknown: every hyphenated name outside string
    literals becomes a context lookup. Used only to accept sources like `step-1.total`, which
    are JavaScript only once the key is in scope."""
    parts: list[str] = []
    last = 0
    for literal in _STRING_LITERAL.finditer(source):
        parts.append(_HYPHEN_RUN.sub('context["k"]', source[last : literal.start()]))
        parts.append(literal.group())
        last = literal.end()
    parts.append(_HYPHEN_RUN.sub('context["k"]', source[last:]))
    return "".join(parts)


def _parse(source: str) -> tuple[_Node, frozenset[str], bool]:
    """AST, free identifiers, and whether a line break precedes the first token."""
    if len(source) > MAX_SOURCE_LENGTH:
        raise JSExpressionError(
            f"expression too long ({len(source)} characters, at most {MAX_SOURCE_LENGTH})"
        )
    parser = _Parser(source)
    node = parser.parse()
    return node, frozenset(parser.identifiers), parser.tokens[0].newline_before


# --------------------------------------------------------------------------------------------
# The interpreter


class _Interpreter:
    __slots__ = ("context", "max_steps", "scope", "steps")

    def __init__(self, scope: Mapping[str, Any], max_steps: int) -> None:
        self.scope = scope
        self.max_steps = max_steps
        self.steps = 0
        self.context: Any = None

    def lookup(self, name: str) -> Any:
        scope = self.scope
        if name == "context":
            # flowcraft's first parameter is `context` (the scope minus odd keys); a scope key
            # named "context" is a later parameter of the same name, which wins.
            if "context" in scope:
                return scope["context"]
            if self.context is None:
                keep = set(_hyphenated_keys(scope))
                self.context = {
                    k: v
                    for k, v in scope.items()
                    if k in keep or (isinstance(k, str) and _VALID_KEY.match(k))
                }
            return self.context
        if name in scope and _VALID_KEY.match(name):
            return scope[name]
        if name in _GLOBALS:
            return _GLOBALS[name]
        _throw(f"ReferenceError: {name} is not defined")

    def eval(self, node: _Node) -> Any:
        self.steps += 1
        if self.steps > self.max_steps:
            raise JSExpressionError(f"evaluation exceeded {self.max_steps} steps")
        if isinstance(node, _Literal):
            return node.value
        if isinstance(node, _Ident):
            return self.lookup(node.name)
        if isinstance(node, _Member):
            obj = self.eval(node.obj)
            if node.optional and (obj is None or obj is UNDEFINED):
                raise _ShortCircuit
            return _get(obj, self.eval(node.prop))
        if isinstance(node, _Binary):
            return self.binary(node)
        if isinstance(node, _Logical):
            left = self.eval(node.left)
            if node.op == "&&":
                return self.eval(node.right) if _truthy(left) else left
            if node.op == "||":
                return left if _truthy(left) else self.eval(node.right)
            return self.eval(node.right) if left is None or left is UNDEFINED else left
        if isinstance(node, _Unary):
            return self.unary(node)
        if isinstance(node, _Conditional):
            return self.eval(node.then if _truthy(self.eval(node.test)) else node.other)
        if isinstance(node, _Call):
            return self.call(node)
        if isinstance(node, _Chain):
            try:
                return self.eval(node.expr)
            except _ShortCircuit:
                return UNDEFINED
        if isinstance(node, _ArrayLit):
            return _JSArray(self.eval(item) for item in node.items)
        return self.object(node)

    def binary(self, node: _Binary) -> Any:
        a = self.eval(node.left)
        b = self.eval(node.right)
        op = node.op
        if op == "===":
            return _strict_equals(a, b)
        if op == "!==":
            return not _strict_equals(a, b)
        if op == "==":
            return _loose_equals(a, b)
        if op == "!=":
            return not _loose_equals(a, b)
        if op in _ORDER:
            return _compare(op, a, b)
        if op == "+":
            return _add(a, b)
        return _arith(op, a, b)

    def unary(self, node: _Unary) -> Any:
        op = node.op
        if op == "typeof":
            if isinstance(node.operand, _Ident):
                try:  # typeof of an undeclared name is "undefined", not a ReferenceError
                    value = self.lookup(node.operand.name)
                except _JSThrow:
                    self.steps += 1
                    return "undefined"
                self.steps += 1
            else:
                value = self.eval(node.operand)
            kind = _kind(value)
            return "object" if kind == "null" else kind
        value = self.eval(node.operand)
        if op == "!":
            return not _truthy(value)
        if op == "-":
            return _neg(_to_number(value))
        if op == "+":
            return _to_number(value)
        return UNDEFINED  # void

    def call(self, node: _Call) -> Any:
        callee = self.eval(node.callee)
        if node.optional and (callee is None or callee is UNDEFINED):
            raise _ShortCircuit
        args = [self.eval(arg) for arg in node.args]
        if not isinstance(callee, _Function):
            _throw("TypeError: not a function")
        return callee.impl(args)

    def object(self, node: _ObjectLit) -> Any:
        result = _JSObject()
        for key, value_node in node.entries:
            name = key if isinstance(key, str) else _to_key(self.eval(key))
            value = self.eval(value_node)
            if name == "__proto__" and isinstance(key, str):
                continue  # `{__proto__: x}` sets the prototype, not a property
            result[name] = value
        return result


# --------------------------------------------------------------------------------------------
# Compiled programs


class Program:
    """A parsed flowcraft expression, ready to evaluate against many scopes.

    Modes: "js" (parsed JavaScript), "path" (not JavaScript but a dotted path: flowcraft's
    PropertyEvaluator reads it), "deferred" (JavaScript only after the hyphenated-key rewrite,
    e.g. `step-1.total`; parsed per scope).
    """

    __slots__ = (
        "_cache",
        "_leading_newline",
        "_tree",
        "mode",
        "needs_context",
        "source",
        "variables",
    )

    def __init__(self, source: str) -> None:
        self.source = source
        self._cache: dict[str, tuple[_Node, bool] | None] = {}
        self._tree: _Node | None = None
        self._leading_newline = False
        try:
            self._tree, identifiers, self._leading_newline = _parse(source)
            self.mode = "js"
        except JSExpressionError as error:
            if _PROPERTY_PATH.match(source):
                self.mode = "path"
                identifiers = frozenset({source.split(".", maxsplit=1)[0]})
            elif "-" in source:
                try:
                    _, identifiers, _ = _parse(_optimistic_rewrite(source))
                except JSExpressionError:
                    raise error from None
                self.mode = "deferred"
            else:
                raise
        # Free names the expression may read; `context` included. A hyphen may be a hyphenated
        # key rewritten to context["..."] at evaluation time, so it reads the context too.
        self.variables: frozenset[str] = identifiers
        self.needs_context = bool(identifiers - {"result", "input"}) or "-" in source

    def evaluate(self, scope: Mapping[str, Any], *, max_steps: int = DEFAULT_MAX_STEPS) -> Any:
        """The expression's value in `scope`, UNDEFINED on a JavaScript runtime error.

        Raises JSExpressionError when the step budget runs out.
        """
        if self.mode == "path":
            return _export(self._evaluate_path(scope))
        # flowcraft passes every identifier-like key as a parameter of `new Function`, so a
        # reserved word among them (a node called `default`) turns every expression into
        # undefined there. Deliberately not copied: such a key is simply not a variable here.
        tree = self._tree_for(scope)
        if tree is None:
            return UNDEFINED
        try:
            return _export(_Interpreter(scope, max_steps).eval(tree))
        except _JSThrow:
            return UNDEFINED
        except RecursionError:  # pragma: no cover - depth is bounded at parse time
            raise JSExpressionError("expression nests too deeply") from None

    def _tree_for(self, scope: Mapping[str, Any]) -> _Node | None:
        text = self.source
        if "-" in text:
            keys = _hyphenated_keys(scope)
            if keys:
                text = rewrite_hyphenated(text, keys)
        if text == self.source and self._tree is not None:
            return None if self._leading_newline else self._tree
        if text not in self._cache:
            try:
                tree, _, leading_newline = _parse(text)
                entry: tuple[_Node, bool] | None = (tree, leading_newline)
            except JSExpressionError:
                entry = None  # flowcraft: a SyntaxError from new Function -> undefined
            if len(self._cache) >= 16:
                self._cache.clear()
            self._cache[text] = entry
        cached = self._cache[text]
        if cached is None or cached[1]:
            # `return` followed by a line break returns undefined (automatic semicolon).
            return None
        return cached[0]

    def _evaluate_path(self, scope: Mapping[str, Any]) -> Any:
        parts = self.source.split(".")
        if parts[0] not in scope:
            return UNDEFINED
        current = scope[parts[0]]
        for part in parts[1:]:
            if current is None or current is UNDEFINED:
                return UNDEFINED
            current = _get(current, part)
        return current


def compile_js(source: str) -> Program:
    """Parse `source` once; raises JSExpressionError (with a position) if it is not supported."""
    return Program(source)
