"""JavaScript values over JSON-shaped Python, and JavaScript's conversions between them.

Why a module of its own: every other stage agrees on this one representation, and the
conversions (ToPrimitive, ToString, ToNumber, truthiness, Number::toString) are where
JavaScript differs most from Python. The representation:
  undefined -> UNDEFINED, null -> None, boolean -> bool, number -> int | float (beyond 2**53 a
  float, like an IEEE double), string -> str, array -> list, object -> dict, plus the
  whitelisted builtins (JSFunction, JSNamespace). Arrays and objects built by literals are
  JSArray/JSObject, which may hold UNDEFINED until `export_result` turns the value into plain
  JSON-shaped Python for the caller.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from flowcraft.model.jsexpr.budget import charge, charge_scan

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


class JSFunction:
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


class JSNamespace:
    """A builtin object such as Math: properties only, serialises as `{}` like in JSON."""

    __slots__ = ("name", "props")

    def __init__(self, name: str, props: Mapping[str, Any]) -> None:
        self.name = name
        self.props = props


class JSArray(list[Any]):
    """An array built by a literal: may hold UNDEFINED until the result is exported."""


class JSObject(dict[str, Any]):
    """An object built by a literal: may hold UNDEFINED until the result is exported."""


def from_int(value: int) -> int | float:
    if -_SAFE_INT <= value <= _SAFE_INT:
        return value
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def type_of(value: Any) -> str:
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
    if isinstance(value, JSFunction):
        return "function"
    return "object"


def truthy(value: Any) -> bool:
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


def to_primitive(value: Any) -> Any:
    """ToPrimitive with the default hint, for the values we model: objects become strings."""
    if isinstance(value, list):
        return join_items(value, ",")
    if isinstance(value, JSFunction):
        return repr(value)
    if isinstance(value, JSNamespace):
        return f"[object {value.name}]"
    if isinstance(value, dict) or type_of(value) == "object":
        return "[object Object]"
    return value


def to_string(value: Any) -> str:
    value = to_primitive(value)
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number_to_string(value)
    return str(value)


def join_items(items: Sequence[Any], separator: str) -> str:
    # Charged part by part, before the result exists: a join is where a small expression can
    # build a huge string (`a.join(a.join(a.join(",")))`).
    parts: list[str] = []
    for index, item in enumerate(items):
        part = "" if item is None or item is UNDEFINED else to_string(item)
        charge(1 + len(part) + (len(separator) if index else 0))
        parts.append(part)
    return separator.join(parts)


# JavaScript's line terminators and white space: the lexer skips them between tokens,
# ToNumber and String.prototype.trim strip them.
LINE_TERMINATORS: Final = "\n\r\u2028\u2029"
# JavaScript WhiteSpace: ASCII ones, NBSP, BOM and the Zs category.
WHITESPACE: Final = "\t\v\f \u00a0\ufeff\u1680\u202f\u205f\u3000" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
)
JS_SPACE: Final = WHITESPACE + LINE_TERMINATORS
_NUMERIC_STRING = re.compile(
    r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Infinity)", re.ASCII
)
_RADIX_STRING = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")


def to_number(value: Any) -> int | float:
    value = to_primitive(value)
    if value is UNDEFINED:
        return math.nan
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return from_int(value)
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        text = value.strip(JS_SPACE)
        if text == "":
            return 0
        if _RADIX_STRING.fullmatch(text):
            return from_int(int(text[2:], {"x": 16, "o": 8, "b": 2}[text[1].lower()]))
        if not _NUMERIC_STRING.fullmatch(text):
            return math.nan
        if text.lstrip("+-") == "Infinity":
            return -math.inf if text.startswith("-") else math.inf
        if any(c in text for c in ".eE"):
            return float(text)
        return from_int(int(text))
    return math.nan


def to_integer(value: Any) -> float:
    """ToIntegerOrInfinity, used for string/array positions."""
    number = to_number(value)
    if math.isnan(number):
        return 0
    if math.isinf(number):
        return number
    return math.trunc(number)


def to_key(value: Any) -> str:
    return value if isinstance(value, str) else to_string(value)


def has_astral(text: str) -> bool:
    # Not a Python loop over the characters: `s.length` on a 1 MiB non-ASCII context value
    # took ~50 ms per evaluation step that way; the codec takes ~2 ms (a character outside
    # the BMP is the only one that takes 4 bytes in UTF-16).
    if text.isascii():
        return False
    charge_scan(len(text))
    return len(text.encode("utf-16-le", "surrogatepass")) != 2 * len(text)


def to_utf16(text: str) -> str:
    """The string as UTF-16 code units (astral characters split into surrogate pairs)."""
    if not has_astral(text):
        return text
    charge(2 * len(text))
    return "".join(
        c
        if ord(c) <= 0xFFFF
        else chr(0xD800 + ((ord(c) - 0x10000) >> 10)) + chr(0xDC00 + ((ord(c) - 0x10000) & 0x3FF))
        for c in text
    )


def from_utf16(units: str) -> str:
    """Re-pair surrogates into characters; a lone surrogate stays as it is."""
    return units.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def export_result(value: Any) -> Any:
    """The evaluation result as plain JSON-shaped Python.

    Containers built by literals lose their undefined/function members the way JSON.stringify
    drops them (null in arrays, absent in objects); -0 becomes 0. Values that came from the
    scope are returned as they are (never copied).
    """
    if isinstance(value, JSFunction | JSNamespace):
        return UNDEFINED if isinstance(value, JSFunction) else {}
    if isinstance(value, float) and value == 0:
        return 0
    if isinstance(value, JSArray):
        out: list[Any] = []
        for item in value:
            exported = export_result(item)
            out.append(None if exported is UNDEFINED else exported)
        return out
    if isinstance(value, JSObject):
        result: dict[str, Any] = {}
        for key, item in value.items():
            exported = export_result(item)
            if exported is not UNDEFINED:
                result[key] = exported
        return result
    return value
