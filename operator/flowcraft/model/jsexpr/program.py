"""Program: a compiled flowcraft expression, the entry point of this package.

Why a module of its own: it ties the stages together the way flowcraft does, which is more
than parsing and evaluating JavaScript: a source that is not JavaScript but a dotted path is
read as flowcraft's PropertyEvaluator reads it, a source that is JavaScript only after the
hyphenated-key rewrite is parsed per scope, and a runtime error makes the value `undefined`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flowcraft.model.jsexpr.budget import DEFAULT_MAX_UNITS, metered
from flowcraft.model.jsexpr.builtins import get_property
from flowcraft.model.jsexpr.errors import JSExpressionError, JSThrow
from flowcraft.model.jsexpr.interpreter import DEFAULT_MAX_STEPS, Interpreter
from flowcraft.model.jsexpr.nodes import Node
from flowcraft.model.jsexpr.parser import parse
from flowcraft.model.jsexpr.scope import hyphenated_keys, optimistic_rewrite, rewrite_hyphenated
from flowcraft.model.jsexpr.values import UNDEFINED, export_result

# The dotted paths flowcraft's PropertyEvaluator accepts.
_PROPERTY_PATH = re.compile(r"[a-zA-Z0-9_$.]+\Z", re.ASCII)


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
        self._cache: dict[str, tuple[Node, bool] | None] = {}
        self._tree: Node | None = None
        self._leading_newline = False
        try:
            self._tree, identifiers, self._leading_newline = parse(source)
            self.mode = "js"
        except JSExpressionError as error:
            if _PROPERTY_PATH.match(source):
                self.mode = "path"
                identifiers = frozenset({source.split(".", maxsplit=1)[0]})
            elif "-" in source:
                try:
                    _, identifiers, _ = parse(optimistic_rewrite(source))
                except JSExpressionError:
                    raise error from None
                self.mode = "deferred"
            else:
                raise
        # Free names the expression may read; `context` included. A hyphen may be a hyphenated
        # key rewritten to context["..."] at evaluation time, so it reads the context too.
        self.variables: frozenset[str] = identifiers
        self.needs_context = bool(identifiers - {"result", "input"}) or "-" in source

    def evaluate(
        self,
        scope: Mapping[str, Any],
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        max_units: int = DEFAULT_MAX_UNITS,
    ) -> Any:
        """The expression's value in `scope`, UNDEFINED on a JavaScript runtime error.

        Raises JSExpressionError when the step budget or the memory budget (`budget`) runs
        out.
        """
        if self.mode == "path":
            return export_result(self._evaluate_path(scope))
        # flowcraft passes every identifier-like key as a parameter of `new Function`, so a
        # reserved word among them (a node called `default`) turns every expression into
        # undefined there. Deliberately not copied: such a key is simply not a variable here.
        tree = self._tree_for(scope)
        if tree is None:
            return UNDEFINED
        try:
            with metered(max_units):
                return export_result(Interpreter(scope, max_steps).eval(tree))
        except JSThrow:
            return UNDEFINED
        except RecursionError:  # pragma: no cover - depth is bounded at parse time
            raise JSExpressionError("expression nests too deeply") from None

    def _tree_for(self, scope: Mapping[str, Any]) -> Node | None:
        text = self.source
        if "-" in text:
            keys = hyphenated_keys(scope)
            if keys:
                text = rewrite_hyphenated(text, keys)
        if text == self.source and self._tree is not None:
            return None if self._leading_newline else self._tree
        if text not in self._cache:
            try:
                tree, _, leading_newline = parse(text)
                entry: tuple[Node, bool] | None = (tree, leading_newline)
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
            current = get_property(current, part)
        return current


def compile_js(source: str) -> Program:
    """Parse `source` once; raises JSExpressionError (with a position) if it is not supported."""
    return Program(source)
