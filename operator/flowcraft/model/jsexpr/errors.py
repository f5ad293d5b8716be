"""The two ways an expression fails, kept apart because flowcraft treats them differently.

Why a module of its own: every stage raises one of them. `JSExpressionError` is ours: the
source is outside the supported subset, too long or too deep, or evaluation ran out of steps;
it reaches the caller (validation reports it with the expression). `JSThrow` is a JavaScript
runtime error (ReferenceError, TypeError) raised by the interpreter or a builtin; flowcraft
turns it into `undefined`, and so does `Program.evaluate`.
"""

from __future__ import annotations

from typing import NoReturn


class JSExpressionError(Exception):
    """The source is outside the supported subset, too large, or ran out of steps.

    `reason` is the human message; syntax errors start with "syntax error at LINE:COL:".
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JSThrow(Exception):
    """A JavaScript runtime error (ReferenceError, TypeError); flowcraft turns it into undefined."""


def throw(message: str) -> NoReturn:
    raise JSThrow(message)
