"""The engine's vocabulary: events in, actions out, and the Step that carries them.

Why frozen dataclasses: drivers (the local runner, the operator) build events from what they
observe and execute actions; immutable values make replays and tests straightforward.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flowcraft.contract import Write
from flowcraft.model import FlowStatus


@dataclass(frozen=True)
class NodeStarted:
    """The driver saw attempt `attempt` of `node` actually start (informational)."""

    node: str
    attempt: int
    at: datetime
    iteration: int = 0
    item: int | None = None  # a batch item of scatter `node` (StartNode.item)


@dataclass(frozen=True)
class NodeSucceeded:
    """Attempt `attempt` of `node` finished; `output` is carried once, the snapshot keeps
    only `output_ref` (where the driver stored it)."""

    node: str
    attempt: int
    at: datetime
    output: Any = None
    action: str | None = None
    output_ref: str | None = None
    # The attempt's context writes, applied (in order) only because it succeeded.
    writes: tuple[Write, ...] = ()
    iteration: int = 0  # the loop iteration the attempt belongs to (StartNode.iteration)
    item: int | None = None  # a batch item of scatter `node`: its output and writes


@dataclass(frozen=True)
class NodeFailed:
    node: str
    attempt: int
    at: datetime
    message: str
    timed_out: bool = False
    iteration: int = 0
    item: int | None = None


@dataclass(frozen=True)
class CancelFlow:
    reason: str


Event = NodeStarted | NodeSucceeded | NodeFailed | CancelFlow


@dataclass(frozen=True)
class StartNode:
    """Run attempt `attempt` of `node` with `input`; drivers enforce `timeout_seconds`.

    A batch item (`item` set) is attempt `attempt` of item `item` of scatter `node`: run the
    function `uses` (the scatter's workerUsesKey) with the item as `input`, and store its
    result under contract.item_key(node, iteration, item)."""

    node: str
    attempt: int
    input: Any
    timeout_seconds: float | None
    # Loop iteration (0: the first run). Drivers name attempts by (node, iteration, attempt)
    # and store results under contract.result_key(node, iteration).
    iteration: int = 0
    item: int | None = None
    uses: str | None = None


@dataclass(frozen=True)
class CancelNode:
    """Stop attempt `attempt` of `node` (kill the process / delete the Job)."""

    node: str
    attempt: int
    reason: str
    iteration: int = 0
    item: int | None = None  # stop that batch item's attempt (not the scatter)


Action = StartNode | CancelNode


@dataclass(frozen=True)
class Step:
    """A new snapshot, what to do now, and when to call `advance` again without events."""

    status: FlowStatus
    actions: tuple[Action, ...]
    wake_at: datetime | None


class EngineError(Exception):
    """A caller broke the engine's contract (e.g. an output the engine needs is missing)."""


class MissingOutputError(EngineError, KeyError):
    """`outputs` lacks the output of a succeeded node that routing or an input needs."""

    def __init__(self, node: str) -> None:
        super().__init__(node)
        self.node = node

    def __str__(self) -> str:
        return (
            f"output of node {self.node!r} is needed but missing from `outputs` "
            "(pass every succeeded node's output, keyed by node id)"
        )


# Machine-readable NodeStatus.reason values the engine writes.
REASON_ERROR = "Error"
REASON_TIMEOUT = "Timeout"
REASON_ROUTING = "RoutingError"
REASON_INPUT = "InputError"
REASON_NOT_ROUTED = "NotRouted"
REASON_UPSTREAM_FAILED = "UpstreamFailed"
REASON_FALLBACK_NOT_NEEDED = "FallbackNotNeeded"
REASON_RECOVERED = "Recovered"
REASON_FLOW_FAILED = "FlowFailed"
REASON_FLOW_CANCELLED = "FlowCancelled"
REASON_DEADLINE = "DeadlineExceeded"
REASON_NOT_REACHED = "NotReached"
REASON_LOOP_LIMIT = "MaxIterations"
