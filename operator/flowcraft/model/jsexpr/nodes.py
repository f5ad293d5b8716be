"""The AST: one frozen dataclass per expression form the parser accepts.

Why a module of its own: it is the contract between the parser, which builds these nodes, and
the interpreter, which evaluates them; reading it tells a newcomer the whole supported subset.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class Ident:
    name: str


@dataclass(frozen=True, slots=True)
class ArrayLit:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class ObjectLit:
    # A str key is a plain property name; a node key is computed (`[expr]: value`).
    entries: tuple[tuple[str | Node, Node], ...]


@dataclass(frozen=True, slots=True)
class Member:
    obj: Node
    prop: Node  # a Literal(str) for `.name`
    optional: bool


@dataclass(frozen=True, slots=True)
class Call:
    callee: Node
    args: tuple[Node, ...]
    optional: bool


@dataclass(frozen=True, slots=True)
class Chain:
    """The end of an optional chain: where `a?.b.c` yields undefined if `a` is nullish."""

    expr: Node


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Logical:
    op: str  # && || ??
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Conditional:
    test: Node
    then: Node
    other: Node


Node = (
    Literal
    | Ident
    | ArrayLit
    | ObjectLit
    | Member
    | Call
    | Chain
    | Unary
    | Binary
    | Logical
    | Conditional
)


def children(node: Node) -> Iterator[Node]:
    if isinstance(node, ArrayLit):
        yield from node.items
    elif isinstance(node, ObjectLit):
        for key, value in node.entries:
            if not isinstance(key, str):
                yield key
            yield value
    elif isinstance(node, Member):
        yield node.obj
        yield node.prop
    elif isinstance(node, Call):
        yield node.callee
        yield from node.args
    elif isinstance(node, Chain):
        yield node.expr
    elif isinstance(node, Unary):
        yield node.operand
    elif isinstance(node, Binary | Logical):
        yield node.left
        yield node.right
    elif isinstance(node, Conditional):
        yield node.test
        yield node.then
        yield node.other
