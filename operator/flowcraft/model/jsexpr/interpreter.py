"""A tree-walking interpreter over the AST, bounded by a step budget.

Why a module of its own: evaluation order, short-circuiting, optional chains, `typeof` of an
undeclared name and flowcraft's variable lookup (`context`, scope keys, then globals) are the
interpreter's; the values, operators and builtins it applies live in their own modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from flowcraft.model.jsexpr.builtins import GLOBALS, get_property
from flowcraft.model.jsexpr.errors import JSExpressionError, JSThrow, throw
from flowcraft.model.jsexpr.nodes import (
    ArrayLit,
    Binary,
    Call,
    Chain,
    Conditional,
    Ident,
    Literal,
    Logical,
    Member,
    Node,
    ObjectLit,
    Unary,
)
from flowcraft.model.jsexpr.operators import (
    ORDER,
    add,
    arithmetic,
    compare,
    loose_equals,
    negate,
    strict_equals,
)
from flowcraft.model.jsexpr.scope import VALID_KEY, hyphenated_keys
from flowcraft.model.jsexpr.values import (
    UNDEFINED,
    JSArray,
    JSFunction,
    JSObject,
    to_key,
    to_number,
    truthy,
    type_of,
)

# Expressions have no loops, so every AST node is evaluated at most once and the step budget
# mostly guards against pathological sources.
DEFAULT_MAX_STEPS: Final = 10_000


class _ShortCircuit(Exception):
    """`a?.b` met a nullish `a`: unwinds to the end of the optional chain."""


class Interpreter:
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
                keep = set(hyphenated_keys(scope))
                self.context = {
                    k: v
                    for k, v in scope.items()
                    if k in keep or (isinstance(k, str) and VALID_KEY.match(k))
                }
            return self.context
        if name in scope and VALID_KEY.match(name):
            return scope[name]
        if name in GLOBALS:
            return GLOBALS[name]
        throw(f"ReferenceError: {name} is not defined")

    def eval(self, node: Node) -> Any:
        self.steps += 1
        if self.steps > self.max_steps:
            raise JSExpressionError(f"evaluation exceeded {self.max_steps} steps")
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Ident):
            return self.lookup(node.name)
        if isinstance(node, Member):
            obj = self.eval(node.obj)
            if node.optional and (obj is None or obj is UNDEFINED):
                raise _ShortCircuit
            return get_property(obj, self.eval(node.prop))
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Logical):
            left = self.eval(node.left)
            if node.op == "&&":
                return self.eval(node.right) if truthy(left) else left
            if node.op == "||":
                return left if truthy(left) else self.eval(node.right)
            return self.eval(node.right) if left is None or left is UNDEFINED else left
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, Conditional):
            return self.eval(node.then if truthy(self.eval(node.test)) else node.other)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Chain):
            try:
                return self.eval(node.expr)
            except _ShortCircuit:
                return UNDEFINED
        if isinstance(node, ArrayLit):
            return JSArray(self.eval(item) for item in node.items)
        return self.object(node)

    def binary(self, node: Binary) -> Any:
        a = self.eval(node.left)
        b = self.eval(node.right)
        op = node.op
        if op == "===":
            return strict_equals(a, b)
        if op == "!==":
            return not strict_equals(a, b)
        if op == "==":
            return loose_equals(a, b)
        if op == "!=":
            return not loose_equals(a, b)
        if op in ORDER:
            return compare(op, a, b)
        if op == "+":
            return add(a, b)
        return arithmetic(op, a, b)

    def unary(self, node: Unary) -> Any:
        op = node.op
        if op == "typeof":
            if isinstance(node.operand, Ident):
                try:  # typeof of an undeclared name is "undefined", not a ReferenceError
                    value = self.lookup(node.operand.name)
                except JSThrow:
                    self.steps += 1
                    return "undefined"
                self.steps += 1
            else:
                value = self.eval(node.operand)
            kind = type_of(value)
            return "object" if kind == "null" else kind
        value = self.eval(node.operand)
        if op == "!":
            return not truthy(value)
        if op == "-":
            return negate(to_number(value))
        if op == "+":
            return to_number(value)
        return UNDEFINED  # void

    def call(self, node: Call) -> Any:
        callee = self.eval(node.callee)
        if node.optional and (callee is None or callee is UNDEFINED):
            raise _ShortCircuit
        args = [self.eval(arg) for arg in node.args]
        if not isinstance(callee, JSFunction):
            throw("TypeError: not a function")
        return callee.impl(args)

    def object(self, node: ObjectLit) -> Any:
        result = JSObject()
        for key, value_node in node.entries:
            name = key if isinstance(key, str) else to_key(self.eval(key))
            value = self.eval(value_node)
            if name == "__proto__" and isinstance(key, str):
                continue  # `{__proto__: x}` sets the prototype, not a property
            result[name] = value
        return result
