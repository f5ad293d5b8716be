"""One error type for everything wrong with a Flow, listing every problem with its path.

Why: a user fixing a manifest wants all problems at once, each pointing at the field
(`spec.edges[3].target`) and naming the culprit, and the CLI prints `str(err)` as is (no
traceback). Pydantic's own errors are converted into the same shape so callers handle one type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    """One issue (an error, or a warning the loader collected) at `path`.

    `line` (1-based) and `source` (a file other than the flow's own, e.g. the functions file)
    are set when the problem was found in YAML text, so a user can jump to it.
    """

    path: str
    message: str
    line: int | None = None
    source: str | None = None

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (self.source, None if self.line is None else f"line {self.line}")
            if part
        )
        path = f"{self.path} ({where})" if where and self.path else self.path or where
        return f"{path}: {self.message}" if path else self.message


class FlowValidationError(ValueError):
    """The flow is invalid; `problems` lists each issue with the path of the offending field.
    `what` names the kind of document in the message ("flow", "blueprint")."""

    def __init__(
        self, problems: Sequence[Problem], *, source: str | None = None, what: str = "flow"
    ) -> None:
        self.problems = tuple(problems)
        self.source = source
        self.what = what
        super().__init__(self._render())

    def _render(self) -> str:
        where = f" ({self.source})" if self.source else ""
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        head = f"invalid {self.what}{where}: {count} {noun}"
        return "\n".join([head, *(f"  - {problem}" for problem in self.problems)])

    def __str__(self) -> str:
        return self._render()


def format_path(loc: Iterable[str | int]) -> str:
    """('spec', 'edges', 3, 'target') -> 'spec.edges[3].target'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def problems_from_pydantic(exc: ValidationError, prefix: Sequence[str | int] = ()) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc = [*prefix, *(part for part in error["loc"] if part != "function-after")]
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}" if loc else "unknown field"
        elif error["type"] == "missing":
            message = "required field is missing"
        elif "input" in error and error["type"] not in ("model_type", "dict_type"):
            shown = repr(error["input"])
            if len(shown) <= 60:
                message = f"{message} (got {shown})"
        problems.append(Problem(format_path(loc), message))
    return problems
