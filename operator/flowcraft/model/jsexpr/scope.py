"""flowcraft's scope rules: which keys are variables, and its hyphenated-key rewrite.

Why a module of its own: this is not JavaScript but what flowcraft's UnsafeEvaluator does
around the expression, and blueprints rely on it: keys that are valid identifiers become
variables (`VALID_KEY`), and hyphenated keys in scope (`route-by-total`) are rewritten
textually to `context["..."]` before parsing, with flowcraft's exact regular expression and
replacement string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from flowcraft.model.jsexpr.errors import JSExpressionError
from flowcraft.model.jsexpr.parser import MAX_SOURCE_LENGTH

# Keys flowcraft passes as parameters of `new Function`; JavaScript's /^[a-z_$][\w$]*$/i.
VALID_KEY = re.compile(r"[a-z_$][\w$]*\Z", re.IGNORECASE | re.ASCII)
_HYPHEN_KEY = re.compile(r"[a-zA-Z0-9_$-]+\Z", re.ASCII)


def hyphenated_keys(scope: Mapping[str, Any]) -> list[str]:
    return [
        key
        for key in scope
        if isinstance(key, str) and not VALID_KEY.match(key) and _HYPHEN_KEY.match(key)
    ]


def _expand_replacement(template: str, match: re.Match[str]) -> str:
    """JavaScript String.prototype.replace's `$` patterns (the regex has no groups)."""
    out: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        nxt = template[i + 1] if i + 1 < len(template) else ""
        if ch == "$" and nxt == "$":
            out.append("$")
        elif ch == "$" and nxt == "&":
            out.append(match.group())
        elif ch == "$" and nxt == "`":
            out.append(match.string[: match.start()])
        elif ch == "$" and nxt == "'":
            out.append(match.string[match.end() :])
        else:
            out.append(ch)
            i += 1
            continue
        i += 2
    return "".join(out)


def rewrite_hyphenated(source: str, keys: Sequence[str]) -> str:
    """flowcraft's textual rewrite: a hyphenated key becomes `context["key"]`.

    Longest keys first; a key matches where it is not preceded by [\\w$] nor followed by
    [\\w$-]. It is purely textual (string literals are rewritten too), as in flowcraft.
    """
    result = source
    for key in sorted(keys, key=len, reverse=True):
        if "-" not in key:
            continue
        pattern = re.compile(r"(?<![\w$])" + re.escape(key) + r"(?![\w$-])", re.ASCII)
        template = f'context["{key}"]'
        budget = [MAX_SOURCE_LENGTH * 2]

        def replace(
            match: re.Match[str], template: str = template, budget: list[int] = budget
        ) -> str:
            text = _expand_replacement(template, match)
            budget[0] -= len(text)
            if budget[0] < 0:
                raise JSExpressionError("expression too long after rewriting hyphenated keys")
            return text

        result = pattern.sub(replace, result)
        if len(result) > MAX_SOURCE_LENGTH * 2:
            raise JSExpressionError("expression too long after rewriting hyphenated keys")
    return result


# Node-id-like hyphenated names (`step-1`); keys such as "-2" or "a-" are possible in principle
# but accepting them here would hide real syntax errors like `-2 ** 2`.
_HYPHEN_RUN = re.compile(r"(?<![\w$])[A-Za-z0-9_$]+(?:-[A-Za-z0-9_$]+)+(?![\w$-])", re.ASCII)
_STRING_LITERAL = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"", re.DOTALL)


def optimistic_rewrite(source: str) -> str:
    """Stand-in for the rewrite when keys are unknown: every hyphenated name outside string
    literals becomes a context lookup. Used only to accept sources like `step-1.total`, which
    are JavaScript only once the key is in scope."""
    parts: list[str] = []
    last = 0
    for literal in _STRING_LITERAL.finditer(source):
        parts.append(_HYPHEN_RUN.sub('context["k"]', source[last : literal.start()]))
        parts.append(literal.group())
        last = literal.end()
    parts.append(_HYPHEN_RUN.sub('context["k"]', source[last:]))
    return "".join(parts)
