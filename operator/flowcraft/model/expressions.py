"""CEL expressions for edge conditions and transforms.

Why CEL: blueprints come from users and run inside the operator, so expressions must be safe
(no eval/exec, no I/O, bounded) and familiar; CEL is what Kubernetes users already write in
ValidatingAdmissionPolicies and CRD validation rules. This module is the only place that talks
to the `cel` library: it compiles once (validation reports compile errors with the expression)
and turns the library's assorted runtime exceptions into one `ExpressionError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PARSER_DIAGNOSIS = re.compile(r"<input>:(\d+):(\d+): ([^\n]*)")

# The variables an edge expression may read: {context, result, input}.
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
    """A CEL expression failed to compile or to evaluate; the message names the expression."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{reason} in expression {source!r}")
        self.source = source
        self.reason = reason


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    if isinstance(exc, KeyError):
        return f"no such key: {text}"
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


class Expression:
    """A compiled CEL program plus the top-level variables it reads."""

    __slots__ = ("_program", "source", "variables")

    def __init__(self, source: str) -> None:
        self.source = source
        # Imported here: the package's __init__ loads its CLI (~0.1 s), which flows without
        # expressions, the common case for `flowcraft run`, should not pay for.
        import cel  # noqa: PLC0415

        try:
            self._program = cel.compile(source)
        except ValueError as exc:
            raise ExpressionError(source, _compile_reason(exc)) from exc
        # Static analysis: lets callers skip building expensive scope parts (the context).
        self.variables: frozenset[str] = frozenset(self._program.variables())

    def uses(self, name: str) -> bool:
        return name in self.variables

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        try:
            return self._program.execute(dict(scope))
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


def compile_expression(source: str) -> Expression:
    """Compile `source`; raises ExpressionError naming the expression on a syntax error."""
    if not source.strip():
        raise ExpressionError(source, "empty expression")
    return Expression(source)
