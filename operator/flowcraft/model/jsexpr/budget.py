"""The memory budget of one evaluation: how much an expression may build, not just how long.

Why a module of its own: the step budget (`interpreter`) counts AST nodes, but a single step
can do work proportional to its operands: `a + a` copies two strings, `items.join(sep)` builds
`len(items) * len(sep)` characters, and nesting joins multiplies them (three nested joins over
a 1,600-element array literal would build 4 billion characters in under 5,000 steps). Every
operation that allocates or scans in proportion to its operands charges this budget first,
before it allocates, so an adversarial expression fails fast with a clear error instead of
exhausting the operator's memory or its only event loop.

Units: one per character built or copied and one per array item visited; scans that run at C
speed (`str.find`, the astral-character check) charge one per 64 characters. The budget is
carried in a context variable set by `Program.evaluate`, so the value helpers deep in
`values`/`operators`/`builtins` need no extra parameter; outside an evaluation nothing is
charged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

from flowcraft.model.jsexpr.errors import JSExpressionError

# 2 Mi units: a 1 MiB context value can still be copied once (`input + ""`), while the worst
# expression costs well under a second of interpreter time and a few MiB of memory.
DEFAULT_MAX_UNITS: Final = 2 * 1024 * 1024
# C-speed scans: one unit per this many characters.
SCAN_CHARS_PER_UNIT: Final = 64


class _Meter:
    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit


_METER: ContextVar[_Meter | None] = ContextVar("flowcraft_jsexpr_meter", default=None)


@contextmanager
def metered(limit: int = DEFAULT_MAX_UNITS) -> Iterator[None]:
    """Charge everything evaluated inside the block to a fresh budget of `limit` units."""
    token = _METER.set(_Meter(limit))
    try:
        yield
    finally:
        _METER.reset(token)


def charge(units: int) -> None:
    """Spend `units`; raise JSExpressionError when the evaluation's budget runs out."""
    meter = _METER.get()
    if meter is None:
        return
    meter.left -= units
    if meter.left < 0:
        raise JSExpressionError(
            f"evaluation exceeded its memory budget ({meter.limit:,} characters or array "
            "items built or scanned)"
        )


def charge_scan(chars: int) -> None:
    """Spend the cost of a C-speed scan over `chars` characters."""
    charge(chars // SCAN_CHARS_PER_UNIT + 1)
