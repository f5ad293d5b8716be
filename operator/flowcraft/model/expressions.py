"""Edge conditions and transforms: one entry point for both expression languages.

Why this module: the engine and validation should not care which language a flow's
expressions are written in. `compile_expression(source, language)` returns an object with the
same surface (`source`, `language`, `needs_context`, `variables`, `evaluate(scope)`) for
  - "flowcraft" (the default): the JavaScript expressions flowcraft blueprints carry, with
    flowcraft's own semantics (runtime errors give `UNDEFINED`), interpreted safely by
    `flowcraft.model.jsexpr`;
  - "cel": CEL, safe and familiar to Kubernetes users (ValidatingAdmissionPolicies, CRD rules).
Both compile once, so validation reports syntax errors with the expression and a position,
and both raise the one `ExpressionError`. This is the only module that talks to the `cel`
library (imported lazily: flows without CEL expressions should not pay for it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, Protocol

from flowcraft.model import celcost
from flowcraft.model.jsexpr import UNDEFINED, JSExpressionError, Program, compile_js

__all__ = [
    "LANGUAGES",
    "SCOPE_VARIABLES",
    "UNDEFINED",
    "CompiledExpression",
    "Expression",
    "ExpressionError",
    "FlowcraftExpression",
    "compile_expression",
]

LANGUAGES: Final = ("flowcraft", "cel")

# Names an expression reads that are not context keys: the node's result (conditions) and the
# value an edge carries (transforms). Anything else may be a context key.
_NON_CONTEXT_NAMES: Final = frozenset({"result", "input"})

_PARSER_DIAGNOSIS = re.compile(r"<input>:(\d+):(\d+): ([^\n]*)")

# The variables a CEL edge expression may read: {context, result, input}.
SCOPE_VARIABLES = ("context", "result", "input")

# The exceptions the Rust-backed library raises at evaluation time: undefined variables
# (RuntimeError), missing map keys (KeyError), type mismatches (TypeError), conversion
# problems (ValueError), division by zero / overflow (ArithmeticError), list indexes.
_EVAL_ERRORS: tuple[type[BaseException], ...] = (
    RuntimeError,
    KeyError,
    TypeError,
    ValueError,
    ArithmeticError,
    IndexError,
)


class ExpressionError(Exception):
    """An expression failed to compile or to evaluate; the message names the expression."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{reason} in expression {source!r}")
        self.source = source
        self.reason = reason


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    if isinstance(exc, KeyError):
        return f"no such key: {text}"
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


class CompiledExpression(Protocol):
    """What `compile_expression` returns, whatever the language."""

    @property
    def source(self) -> str: ...

    @property
    def language(self) -> str: ...

    @property
    def needs_context(self) -> bool:
        """True if the expression may read a context key (anything beyond result/input)."""
        ...

    @property
    def variables(self) -> frozenset[str]:
        """Top-level names the expression reads (`context` included)."""
        ...

    def uses(self, name: str) -> bool: ...

    def evaluate(self, scope: Mapping[str, Any]) -> Any: ...


class Expression:
    """A compiled CEL program plus the top-level variables it reads."""

    __slots__ = ("_program", "_shape", "needs_context", "source", "variables")

    language = "cel"

    def __init__(self, source: str) -> None:
        self.source = source
        # Imported here: the package's __init__ loads its CLI (~0.1 s), which flows without
        # expressions, the common case for `flowcraft run`, should not pay for.
        import cel  # noqa: PLC0415

        if len(source) > celcost.MAX_SOURCE_LENGTH:
            raise ExpressionError(
                source[:80] + "...",
                f"expression too long ({len(source):,} characters, at most "
                f"{celcost.MAX_SOURCE_LENGTH:,})",
            )
        try:
            self._program = cel.compile(source)
        except ValueError as exc:
            raise ExpressionError(source, _compile_reason(exc)) from exc
        # Static analysis: lets callers skip building expensive scope parts (the context).
        self.variables: frozenset[str] = frozenset(self._program.variables())
        self.needs_context = bool(self.variables - _NON_CONTEXT_NAMES)
        self._shape = celcost.analyse(source)

    def uses(self, name: str) -> bool:
        return name in self.variables

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        # Only the names the program reads: the flowcraft-style condition scope spreads the
        # context at top level, and cel may reject odd names such as "_outputs.a".
        variables = {name: scope[name] for name in self.variables if name in scope}
        if not self._shape.trivial:
            # The cel library has no cost limit: bound the work before it starts (celcost).
            sizes = celcost.measure(variables.values())
            cost = celcost.estimate(self._shape, sizes)
            if cost > celcost.MAX_COST:
                raise ExpressionError(
                    self.source,
                    f"estimated evaluation cost {cost:,} exceeds the CEL budget of "
                    f"{celcost.MAX_COST:,} ({celcost.describe(self._shape, sizes)}); "
                    "do heavy work in a node, not in an edge expression",
                )
        try:
            return self._program.execute(variables)
        except _EVAL_ERRORS as exc:
            raise ExpressionError(self.source, f"evaluation failed: {_first_line(exc)}") from exc

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def _compile_reason(exc: ValueError) -> str:
    # The library's message repeats the expression; keep the parser's diagnosis lines.
    text = str(exc)
    found = _PARSER_DIAGNOSIS.search(text)
    if found is None:
        return "syntax error"
    line, column, message = found.groups()
    message = message.removeprefix("Syntax error: ")
    return f"syntax error at {line}:{column}: {message.strip()}"


class FlowcraftExpression:
    """A flowcraft (JavaScript subset) expression, evaluated with flowcraft's semantics.

    `evaluate` returns `UNDEFINED` where flowcraft's evaluator returns undefined (a missing
    property, a ReferenceError or TypeError at run time); it raises ExpressionError only when
    the step budget runs out.
    """

    __slots__ = ("_program",)

    language = "flowcraft"

    def __init__(self, source: str) -> None:
        try:
            self._program: Program = compile_js(source)
        except JSExpressionError as exc:
            raise ExpressionError(source, exc.reason) from None

    @property
    def source(self) -> str:
        return self._program.source

    @property
    def needs_context(self) -> bool:
        return self._program.needs_context

    @property
    def variables(self) -> frozenset[str]:
        return self._program.variables

    def uses(self, name: str) -> bool:
        return name in self._program.variables

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        try:
            return self._program.evaluate(scope)
        except JSExpressionError as exc:
            raise ExpressionError(self.source, exc.reason) from None

    def __repr__(self) -> str:
        return f"FlowcraftExpression({self.source!r})"


def compile_expression(
    source: str, language: str = "flowcraft"
) -> Expression | FlowcraftExpression:
    """Compile `source` in `language` ("flowcraft" or "cel").

    Raises ExpressionError naming the expression on a syntax error (with its position) or an
    unknown language.
    """
    if not source.strip():
        raise ExpressionError(source, "empty expression")
    if language == "flowcraft":
        return FlowcraftExpression(source)
    if language == "cel":
        return Expression(source)
    raise ExpressionError(
        source, f"unknown expression language {language!r} (expected one of {', '.join(LANGUAGES)})"
    )
