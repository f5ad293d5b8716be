"""A cost bound for CEL expressions, checked before they run.

Why this module: CEL edge expressions run synchronously on the operator's only event loop, and
the CEL library we use has no evaluation cost or step limit. Its comprehensions are also slower
than they look: `list.map(x, ...)` and `list.filter(...)` copy their accumulator on every
iteration (a `map` over 10,000 numbers takes ~10 s, quadratic in the list), and a reference to
a list or a string inside a comprehension copies it. One tenant's `map()` over a large output
would stall every Flow. CEL has no loops besides comprehensions, so the work an expression can
do is bounded by its comprehension nesting and the size of the data it reads; this module
estimates that bound, the way Kubernetes estimates the cost of CEL rules, and the caller
refuses to evaluate an expression whose estimate exceeds `MAX_COST`.

The estimate, in units of roughly one element copied (~50-100 ns):
  - `N`: the longest list/map the expression can iterate: the largest collection in the
    variables it reads or a list literal in it, times (1 + the number of `+` in the source),
    since concatenation is the only way to grow a collection;
  - `C`: the cost of copying the largest value it reads (elements + characters / 1,000),
    scaled the same way;
  - a comprehension nested `d` deep runs at most `N**d` iterations; an iteration costs 1, plus
    `C` for each copy it may make: each reference to a variable other than the iteration
    variables, each `+`, `in`, and `==`/`!=` between two non-literals; `map` and `filter`
    also copy their accumulator, `N` elements as large as their body can build;
  - each `+` outside comprehensions may copy `C`.
It is conservative (an estimate can only be too high), static in the source and dynamic only in
the sizes, which are known when the expression runs. The source is scanned by a small tokenizer
(strings, numbers, identifiers, operators); it never needs to understand more of CEL than that.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

MAX_COST: Final = 1_000_000
MAX_SOURCE_LENGTH: Final = 10_000
CHARS_PER_UNIT: Final = 1_000

# Comprehension macros; map and filter build a list (and copy it per iteration).
_ACCUMULATING: Final = frozenset({"map", "filter"})
_COMPREHENSIONS: Final = _ACCUMULATING | {"all", "exists", "exists_one"}
_LITERAL_WORDS: Final = frozenset({"true", "false", "null"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<string>(?:[rR][bB]?|[bB][rR]?)?(?:\"\"\"(?:\\.|[^\\])*?\"\"\"|'''(?:\\.|[^\\])*?'''
        |"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))
  | (?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[uU]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%<>!?:.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # string, number, ident, op
    text: str


def tokenize(source: str) -> list[_Token]:
    """The tokens of a CEL source; anything unrecognised is skipped (cel reports it)."""
    tokens: list[_Token] = []
    position = 0
    while position < len(source):
        found = _TOKEN.match(source, position)
        if found is None:
            position += 1
            continue
        position = found.end()
        kind = found.lastgroup or "space"
        if kind != "space":
            tokens.append(_Token(kind, found.group()))
    return tokens


@dataclass
class Comprehension:
    macro: str
    depth: int
    parent: Comprehension | None = None
    copies: int = 0  # per iteration, beyond the accumulator
    plus: int = 0
    variables: set[str] = field(default_factory=set)
    # Over this comprehension and those nested in it (what one element of its result holds):
    inner_copies: int = 0
    height: int = 0  # nesting levels below this one

    @property
    def accumulates(self) -> bool:
        return self.macro in _ACCUMULATING


@dataclass
class _Frame:
    closer: str
    comprehension: Comprehension | None = None
    items: int = 0


@dataclass(frozen=True)
class Shape:
    """What the cost of a CEL source depends on, found once at compile time."""

    comprehensions: tuple[Comprehension, ...]
    plus: int  # `+` anywhere
    plus_outside: int  # `+` outside comprehensions
    longest_literal: int  # items of the longest list/map literal

    @property
    def trivial(self) -> bool:
        """No comprehension and no concatenation: the cost is linear in the source."""
        return not self.comprehensions and not self.plus


def _is_literal(token: _Token | None) -> bool:
    return token is not None and (
        token.kind in ("string", "number") or token.text in _LITERAL_WORDS
    )


def analyse(source: str) -> Shape:
    tokens = tokenize(source)
    stack: list[_Frame] = []
    found: list[Comprehension] = []
    plus = plus_outside = longest = 0

    def innermost() -> Comprehension | None:
        for frame in reversed(stack):
            if frame.comprehension is not None:
                return frame.comprehension
        return None

    def bound_names() -> set[str]:
        names: set[str] = set()
        for frame in stack:
            if frame.comprehension is not None:
                names |= frame.comprehension.variables
        return names

    for i, token in enumerate(tokens):
        before = tokens[i - 1] if i else None
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        text = token.text
        current = innermost()
        if token.kind == "op" and text in "([{":
            comprehension = None
            if (
                text == "("
                and before is not None
                and before.kind == "ident"
                and before.text in _COMPREHENSIONS
                and i >= 2
                and tokens[i - 2].text == "."
            ):
                depth = 1 + sum(1 for f in stack if f.comprehension is not None)
                comprehension = Comprehension(before.text, depth, parent=current)
                found.append(comprehension)
            stack.append(_Frame({"(": ")", "[": "]", "{": "}"}[text], comprehension))
            if text in "[{" and after is not None and after.text not in "]}":
                stack[-1].items = 1
        elif token.kind == "op" and text in ")]}":
            if stack:
                frame = stack.pop()
                if frame.closer in "]}":
                    longest = max(longest, frame.items)
        elif text == "," and stack:
            stack[-1].items += 1
        elif token.kind == "ident" and current is not None:
            frame = stack[-1]
            if (
                frame.comprehension is current
                and before is not None
                and before.text in ("(", ",")
                and after is not None
                and after.text == ","
            ):
                current.variables.add(text)  # an iteration variable: an element, not a copy
            elif text == "in":
                current.copies += 1
            elif (
                text not in _LITERAL_WORDS
                and text not in bound_names()
                and (before is None or before.text != ".")
                and (after is None or after.text != "(")
            ):
                current.copies += 1  # a variable of the scope: referencing it copies it
        elif text == "+":
            plus += 1
            if current is None:
                plus_outside += 1
            else:
                current.plus += 1
        elif (
            text in ("==", "!=")
            and current is not None
            and not (_is_literal(before) or _is_literal(after))
        ):
            current.copies += 1  # comparing two collections walks them
    for comp in found:
        ancestor: Comprehension | None = comp
        while ancestor is not None:
            ancestor.inner_copies += comp.copies + comp.plus
            ancestor.height = max(ancestor.height, comp.depth - ancestor.depth)
            ancestor = ancestor.parent
    return Shape(tuple(found), plus, plus_outside, longest)


@dataclass(frozen=True)
class Sizes:
    longest: int  # elements of the longest list/map
    largest: int  # copy cost of the largest value, in units


def measure(values: Iterable[Any]) -> Sizes:
    """The sizes of the values an expression reads (a walk over them, no copies)."""
    longest = largest = 0
    for value in values:
        elements = chars = 0
        pending = [value]
        while pending:
            item = pending.pop()
            if isinstance(item, str):
                chars += len(item)
            elif isinstance(item, Mapping):
                elements += len(item)
                longest = max(longest, len(item))
                pending.extend(item.values())
                chars += sum(len(k) for k in item if isinstance(k, str))
            elif isinstance(item, list | tuple):
                elements += len(item)
                longest = max(longest, len(item))
                pending.extend(item)
            elif isinstance(item, bytes):
                chars += len(item)
        largest = max(largest, 1 + elements + chars // CHARS_PER_UNIT)
    return Sizes(longest, largest)


def estimate(shape: Shape, sizes: Sizes) -> int:
    """The estimated cost (see the module docstring); stops counting past MAX_COST."""
    growth = 1 + shape.plus
    n = max(sizes.longest, shape.longest_literal, 1) * growth
    c = max(sizes.largest, shape.longest_literal, 1) * growth
    total = shape.plus_outside * c
    for comp in shape.comprehensions:
        iterations = n**comp.depth
        per_iteration = 1 + (comp.copies + comp.plus) * c
        if comp.accumulates:
            # The accumulator is copied each iteration: up to n elements, each as large as
            # what the body can build (its copies, and the lists nested comprehensions make).
            element = (1 + comp.inner_copies * c) * n**comp.height
            per_iteration += n * element
        total += iterations * per_iteration
        if total > MAX_COST:
            break
    return total


def describe(shape: Shape, sizes: Sizes) -> str:
    deepest = max((c.depth for c in shape.comprehensions), default=0)
    return (
        f"{len(shape.comprehensions)} comprehension(s) nested {deepest} deep over collections "
        f"of up to {max(sizes.longest, shape.longest_literal):,} items, largest value "
        f"~{sizes.largest:,} units"
    )
