"""The whitelisted builtins and property access: the only callables an expression can reach.

Why a module of its own: this is the security boundary of the interpreter. Globals (Math,
Number, String, Boolean, Array.isArray, isNaN, isFinite), the String and Array methods people
use in conditions, and `get_property` (obj[key] with JavaScript's rules) are all defined here;
nothing reaches a Python attribute or builtin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from flowcraft.model.jsexpr.budget import charge, charge_scan
from flowcraft.model.jsexpr.errors import throw
from flowcraft.model.jsexpr.operators import power, same_value_zero, strict_equals
from flowcraft.model.jsexpr.values import (
    JS_SPACE,
    UNDEFINED,
    JSFunction,
    JSNamespace,
    from_int,
    from_utf16,
    join_items,
    to_integer,
    to_key,
    to_number,
    to_string,
    to_utf16,
    truthy,
)


def _arg(args: Sequence[Any], index: int) -> Any:
    return args[index] if index < len(args) else UNDEFINED


def _integral(value: float) -> int | float:
    """Math.round & co.: an integral result is an int unless it is -0, infinite or NaN."""
    if math.isnan(value) or math.isinf(value) or (value == 0 and math.copysign(1.0, value) < 0):
        return value
    return from_int(int(value))


def _math_round(args: Sequence[Any]) -> int | float:
    x = to_number(_arg(args, 0))
    if isinstance(x, int) or math.isnan(x) or math.isinf(x):
        return x
    floor = math.floor(x)
    result = floor + 1 if x - floor >= 0.5 else floor
    if result == 0 and (x < 0 or math.copysign(1.0, x) < 0):
        return -0.0  # Math.round(-0.4) is -0
    return from_int(result)


def _math_unary(fn: Callable[[float], float], integral: bool) -> Callable[[Sequence[Any]], Any]:
    def impl(args: Sequence[Any]) -> Any:
        x = to_number(_arg(args, 0))
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
            return from_int(int(result))
        return result

    return impl


def _math_abs(args: Sequence[Any]) -> int | float:
    x = to_number(_arg(args, 0))
    return abs(x)


def _math_sign(args: Sequence[Any]) -> int | float:
    x = to_number(_arg(args, 0))
    if math.isnan(x) or x == 0:
        return x
    return 1 if x > 0 else -1


def _math_extreme(largest: bool) -> Callable[[Sequence[Any]], Any]:
    def impl(args: Sequence[Any]) -> Any:
        numbers = [to_number(a) for a in args]  # every argument is coerced, in order
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
    return power(to_number(_arg(args, 0)), to_number(_arg(args, 1)))


_MATH: Final = JSNamespace(
    "Math",
    {
        "PI": math.pi,
        "E": math.e,
        "abs": JSFunction("abs", _math_abs),
        "ceil": JSFunction("ceil", _math_unary(math.ceil, True)),
        "floor": JSFunction("floor", _math_unary(math.floor, True)),
        "trunc": JSFunction("trunc", _math_unary(math.trunc, True)),
        "round": JSFunction("round", _math_round),
        "sign": JSFunction("sign", _math_sign),
        "sqrt": JSFunction("sqrt", _math_unary(math.sqrt, False)),
        "pow": JSFunction("pow", _math_pow),
        "max": JSFunction("max", _math_extreme(True)),
        "min": JSFunction("min", _math_extreme(False)),
    },
)


def _is_nan(args: Sequence[Any]) -> bool:
    x = to_number(_arg(args, 0))
    return math.isnan(x)


def _is_finite(args: Sequence[Any]) -> bool:
    x = to_number(_arg(args, 0))
    return not math.isnan(x) and not math.isinf(x)


GLOBALS: Final[Mapping[str, Any]] = {
    "undefined": UNDEFINED,
    "NaN": math.nan,
    "Infinity": math.inf,
    "Math": _MATH,
    "Number": JSFunction("Number", lambda args: to_number(args[0]) if args else 0),
    "String": JSFunction("String", lambda args: to_string(args[0]) if args else ""),
    "Boolean": JSFunction("Boolean", lambda args: truthy(_arg(args, 0))),
    "Array": JSFunction(
        "Array",
        lambda args: throw("TypeError: Array() is not supported"),
        {"isArray": JSFunction("isArray", lambda args: isinstance(_arg(args, 0), list))},
    ),
    "isNaN": JSFunction("isNaN", _is_nan),
    "isFinite": JSFunction("isFinite", _is_finite),
}


def _string_method(text: str, name: str) -> JSFunction | None:
    """String.prototype methods people use in conditions; positions are UTF-16 code units."""

    def search(args: Sequence[Any]) -> tuple[str, str]:
        charge_scan(len(text))
        return to_utf16(text), to_utf16(to_string(_arg(args, 0)))

    def copy(convert: Callable[[str], str]) -> Callable[[Sequence[Any]], str]:
        def impl(args: Sequence[Any]) -> str:
            charge(len(text))
            return convert(text)

        return impl

    def clamp(args: Sequence[Any], length: int, default: int) -> int:
        value = _arg(args, 1)
        if value is UNDEFINED:
            return default
        return int(min(max(to_integer(value), 0), length))

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
        "toLowerCase": copy(str.lower),
        "toUpperCase": copy(str.upper),
        "trim": copy(lambda value: value.strip(JS_SPACE)),
    }
    impl = methods.get(name)
    return JSFunction(name, impl) if impl is not None else None


def _array_method(items: list[Any], name: str) -> JSFunction | None:
    """Array.prototype methods without callbacks: includes, indexOf, join."""

    def start(args: Sequence[Any]) -> int:
        value = _arg(args, 1)
        if value is UNDEFINED:
            return 0
        position = to_integer(value)
        if position < 0:
            position = max(len(items) + position, 0)
        return int(min(position, len(items)))

    def includes(args: Sequence[Any]) -> bool:
        needle = _arg(args, 0)
        charge(len(items))
        return any(same_value_zero(item, needle) for item in items[start(args) :])

    def index_of(args: Sequence[Any]) -> int:
        needle = _arg(args, 0)
        charge(len(items))
        offset = start(args)
        for index, item in enumerate(items[offset:], offset):
            if strict_equals(item, needle):
                return index
        return -1

    def join(args: Sequence[Any]) -> str:
        separator = _arg(args, 0)
        return join_items(items, "," if separator is UNDEFINED else to_string(separator))

    methods: dict[str, Callable[[Sequence[Any]], Any]] = {
        "includes": includes,
        "indexOf": index_of,
        "join": join,
    }
    impl = methods.get(name)
    return JSFunction(name, impl) if impl is not None else None


def _array_index(key: str) -> int | None:
    if key.isdigit() and key.isascii() and (key == "0" or not key.startswith("0")):
        return int(key)
    return None


def get_property(obj: Any, key_value: Any) -> Any:
    """obj[key] with JavaScript's rules; a missing property is UNDEFINED, nullish obj throws."""
    if obj is UNDEFINED or obj is None:
        reading = to_string(key_value)
        throw(f"TypeError: Cannot read properties of {to_string(obj)} (reading {reading!r})")
    key = to_key(key_value)
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
            return len(to_utf16(obj))
        index = _array_index(key)
        if index is not None:
            units = to_utf16(obj)
            return from_utf16(units[index]) if index < len(units) else UNDEFINED
        method = _string_method(obj, key)
        return method if method is not None else UNDEFINED
    if isinstance(obj, JSNamespace | JSFunction):
        return obj.props.get(key, UNDEFINED)
    return UNDEFINED  # numbers, booleans: no whitelisted methods
