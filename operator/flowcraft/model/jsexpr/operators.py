"""What JavaScript's operators do to values: equality, comparison, arithmetic.

Why a module of its own: `==` vs `===`, string vs number ordering, `+` concatenation, negative
zero, JavaScript's `%` and `**` are the rules conditions lean on, and each one is a pure
function of values, separate from how the interpreter walks the tree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

from flowcraft.model.jsexpr.budget import charge, charge_scan
from flowcraft.model.jsexpr.values import (
    from_int,
    has_astral,
    is_number,
    to_number,
    to_primitive,
    to_string,
    type_of,
)

# --- equality and comparison --------------------------------------------------------------


def strict_equals(a: Any, b: Any) -> bool:
    kind = type_of(a)
    if kind != type_of(b):
        return False
    if kind in ("undefined", "null"):
        return True
    if kind in ("number", "string", "boolean"):
        if kind == "string":
            charge_scan(min(len(a), len(b)))
        return bool(a == b)  # NaN != NaN; 0 == -0.0; 1 == 1.0
    return a is b  # objects compare by identity


def same_value_zero(a: Any, b: Any) -> bool:
    if is_number(a) and is_number(b) and math.isnan(a) and math.isnan(b):
        return True
    return strict_equals(a, b)


def loose_equals(a: Any, b: Any) -> bool:
    ka, kb = type_of(a), type_of(b)
    if ka == kb:
        return strict_equals(a, b)
    nullish = ("undefined", "null")
    if ka in nullish or kb in nullish:
        return ka in nullish and kb in nullish
    if ka == "number" and kb == "string":
        return bool(a == to_number(b))
    if ka == "string" and kb == "number":
        return bool(to_number(a) == b)
    if ka == "boolean":
        return loose_equals(int(a), b)
    if kb == "boolean":
        return loose_equals(a, int(b))
    if ka in ("object", "function") and kb in ("number", "string"):
        return loose_equals(to_primitive(a), b)
    if kb in ("object", "function") and ka in ("number", "string"):
        return loose_equals(a, to_primitive(b))
    return False


def compare(op: str, a: Any, b: Any) -> bool:
    pa, pb = to_primitive(a), to_primitive(b)
    if isinstance(pa, str) and isinstance(pb, str):
        charge_scan(min(len(pa), len(pb)))
        if has_astral(pa) or has_astral(pb):  # JavaScript orders by UTF-16 code unit
            ea = pa.encode("utf-16-be", "surrogatepass")
            eb = pb.encode("utf-16-be", "surrogatepass")
            return ORDER[op](ea, eb)
        return ORDER[op](pa, pb)
    na, nb = to_number(pa), to_number(pb)
    if math.isnan(na) or math.isnan(nb):
        return False
    return ORDER[op](na, nb)


ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": lambda x, y: bool(x < y),
    ">": lambda x, y: bool(x > y),
    "<=": lambda x, y: bool(x <= y),
    ">=": lambda x, y: bool(x >= y),
}


# --- arithmetic -----------------------------------------------------------------------------


def negate(x: int | float) -> int | float:
    if isinstance(x, int):
        return -x if x != 0 else -0.0  # JavaScript has a negative zero
    return -x


def add(a: Any, b: Any) -> Any:
    pa, pb = to_primitive(a), to_primitive(b)
    if isinstance(pa, str) or isinstance(pb, str):
        left, right = to_string(pa), to_string(pb)
        charge(len(left) + len(right))  # before the copy: `s + s + s ...` is quadratic
        return left + right
    x, y = to_number(pa), to_number(pb)
    if isinstance(x, int) and isinstance(y, int):
        return from_int(x + y)
    return float(x) + float(y)


def arithmetic(op: str, a: Any, b: Any) -> int | float:
    x, y = to_number(a), to_number(b)
    both_int = isinstance(x, int) and isinstance(y, int)
    if op == "-":
        if isinstance(x, int) and isinstance(y, int):
            return from_int(x - y)
        return float(x) - float(y)
    if op == "*":
        if isinstance(x, int) and isinstance(y, int):
            product = x * y
            if product == 0 and (x < 0 or y < 0):
                return -0.0
            return from_int(product)
        try:
            return float(x) * float(y)
        except OverflowError:  # pragma: no cover - float * float saturates to inf
            return math.inf
    if op == "/":
        return _divide(x, y, both_int)
    if op == "%":
        return _remainder(x, y)
    return power(x, y)


def _divide(x: int | float, y: int | float, both_int: bool) -> int | float:
    if y == 0:
        if math.isnan(x) or x == 0:
            return math.nan
        negative = (x < 0) != (math.copysign(1.0, float(y)) < 0)
        return -math.inf if negative else math.inf
    if both_int and isinstance(x, int) and isinstance(y, int) and x % y == 0:
        if x == 0 and y < 0:
            return -0.0
        return from_int(x // y)
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


def power(x: int | float, y: int | float) -> int | float:
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
