"""Tokens: JavaScript source text to a list of tokens, or a syntax error with a position.

Why a module of its own: what counts as an identifier, a number literal, a string escape or a
punctuator, and where a line break stands, is JavaScript's lexical grammar, independent of what
the parser makes of the tokens (the white-space characters are in `values`, which ToNumber
shares). Every punctuator is recognised (longest first) so that sources outside the supported
subset fail where JavaScript would read them differently, not silently.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from flowcraft.model.jsexpr.errors import JSExpressionError
from flowcraft.model.jsexpr.values import LINE_TERMINATORS, WHITESPACE, from_int

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
KEYWORDS: Final = frozenset(
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
class Token:
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


def syntax_error(source: str, pos: int, message: str) -> NoReturn:
    raise JSExpressionError(f"syntax error at {_position(source, pos)}: {message}")


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(source)
    newline = False
    while True:
        # Whitespace and comments; remember whether a line terminator was crossed (ASI).
        while i < n:
            ch = source[i]
            if ch in LINE_TERMINATORS:
                newline = True
                i += 1
            elif ch in WHITESPACE or (ord(ch) > 127 and unicodedata.category(ch) == "Zs"):
                i += 1
            elif source.startswith("//", i):
                while i < n and source[i] not in LINE_TERMINATORS:
                    i += 1
            elif source.startswith("/*", i):
                end = source.find("*/", i + 2)
                if end < 0:
                    syntax_error(source, i, "unterminated comment")
                if any(c in LINE_TERMINATORS for c in source[i:end]):
                    newline = True
                i = end + 2
            else:
                break
        if i >= n:
            tokens.append(Token("eof", None, i, "", newline))
            return tokens
        start, ch = i, source[i]
        value: Any
        if (ch.isdigit() and ch.isascii()) or (ch == "." and i + 1 < n and source[i + 1].isdigit()):
            value, i = _scan_number(source, i)
            if i < n and (_is_id_start(source[i]) or source[i].isdigit()):
                syntax_error(source, i, f"unexpected character {source[i]!r} after number")
            tokens.append(Token("num", value, start, source[start:i], newline))
        elif ch in "'\"":
            value, i = _scan_string(source, i)
            tokens.append(Token("str", value, start, source[start:i], newline))
        elif _is_id_start(ch):
            i += 1
            while i < n and _is_id_part(source[i]):
                i += 1
            tokens.append(Token("name", source[start:i], start, source[start:i], newline))
        else:
            for punct in _PUNCTUATORS:
                if source.startswith(punct, i):
                    # `a?.5:b` is a conditional, not optional chaining.
                    if punct == "?." and i + 2 < n and source[i + 2].isdigit():
                        continue
                    tokens.append(Token("punct", punct, start, punct, newline))
                    i += len(punct)
                    break
            else:
                syntax_error(source, i, f"unexpected character {ch!r}")
        newline = False


def _scan_number(source: str, i: int) -> tuple[int | float, int]:
    radix = _RADIX.match(source, i)
    if radix is not None:
        text = radix.group().replace("_", "")
        return from_int(int(text[2:], {"x": 16, "o": 8, "b": 2}[text[1].lower()])), radix.end()
    legacy = _LEGACY.match(source, i)
    if legacy is not None:
        text = legacy.group()
        digits = re.match(r"0\d+", text)
        assert digits is not None
        if all(c in "01234567" for c in digits.group()):
            # Sloppy-mode legacy octal (`010` is 8); it cannot take a fraction or exponent.
            return from_int(int(digits.group(), 8)), i + len(digits.group())
        return _decimal_value(text), legacy.end()  # `08`, `09.5`: decimal after all
    decimal = _DECIMAL.match(source, i)
    assert decimal is not None
    text = decimal.group()
    if text.startswith("0_"):
        syntax_error(source, i + 1, "numeric separator after a leading 0")
    return _decimal_value(text.replace("_", "")), decimal.end()


def _decimal_value(text: str) -> int | float:
    if any(c in text for c in ".eE"):
        return float(text)
    return from_int(int(text))


def _scan_string(source: str, i: int) -> tuple[str, int]:
    quote, start = source[i], i
    i += 1
    out: list[str] = []
    n = len(source)
    while True:
        if i >= n or source[i] in "\n\r":
            syntax_error(source, start, "unterminated string")
        ch = source[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        i += 1
        if i >= n:
            syntax_error(source, start, "unterminated string")
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
                syntax_error(source, i - 1, "invalid hexadecimal escape")
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
                syntax_error(source, i - 1, "invalid unicode escape")
        elif esc in "\r\n\u2028\u2029":
            # Line continuation: the backslash and the line break vanish.
            i += 2 if source.startswith("\r\n", i) else 1
        elif esc.isdigit():
            syntax_error(source, i - 1, "octal escapes are not supported")
        else:
            out.append(esc)
            i += 1
