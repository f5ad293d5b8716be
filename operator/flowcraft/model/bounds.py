"""Bounds on the free-form text a Flow's status holds (messages and the errors list).

Why a module of its own: a Flow's status must always fit in one API request (the server refuses
~1.5 MiB) and stay cheap to write on every pass, whatever produced its text (a pod's
termination message, an expression error quoting its input, thousands of failed batch items).
These are the rules every writer of a status applies: the engine (node messages, the flow's
errors and message) and the operator (the status of a Flow it refuses to run).
tests/unit/test_limits.py builds the worst case the spec allows and checks it.
"""

from __future__ import annotations

import re
from typing import Final

MAX_MESSAGE_CHARS: Final = 2048
MAX_STATUS_ERRORS: Final = 10
# All node messages together: a 1,500-node Flow gets 64 characters per node message (the flow's
# `errors` keep the failures in full), a 40-node one the whole MAX_MESSAGE_CHARS each.
NODE_MESSAGES_BUDGET: Final = 96 * 1024
MIN_NODE_MESSAGE_CHARS: Final = 64
_MORE_ERRORS = re.compile(r"^\.\.\. and (\d+) more failure\(s\)$")


def bound_message(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` cut to `limit` characters in the middle, saying how much was cut: the start says
    what failed, the end is often the innermost cause (a traceback's last line, the deepest
    subflow's error)."""
    if len(text) <= limit:
        return text
    keep = max(limit - len(f" ... [{len(text)} characters cut] ... "), 0)
    head = keep - keep // 2
    tail = keep // 2
    cut = len(text) - head - tail
    return f"{text[:head]} ... [{cut} characters cut] ... {text[len(text) - tail :]}"


def node_message_limit(nodes: int) -> int:
    """The longest message one node's status may hold in a Flow of `nodes` nodes."""
    share = NODE_MESSAGES_BUDGET // max(nodes, 1)
    return max(MIN_NODE_MESSAGE_CHARS, min(MAX_MESSAGE_CHARS, share))


def append_error(errors: list[str], error: str) -> None:
    """Add a failure to a status's `errors`, keeping at most MAX_STATUS_ERRORS entries: the
    first ones, then one entry counting the rest."""
    if len(errors) < MAX_STATUS_ERRORS:
        errors.append(bound_message(error))
        return
    found = _MORE_ERRORS.match(errors[-1])
    if found is None:
        errors[-1] = "... and 2 more failure(s)"
    else:
        errors[-1] = f"... and {int(found.group(1)) + 1} more failure(s)"


def error_count(errors: list[str]) -> int:
    """How many failures `errors` stands for (the counting entry included)."""
    if not errors:
        return 0
    found = _MORE_ERRORS.match(errors[-1])
    return len(errors) - 1 + int(found.group(1)) if found else len(errors)
