"""flowcraft's SubflowNode rules as pure functions: what a child flow starts with, and what
its parent gets back.

Why here, and pure: a `subflow` node runs a whole flow (a blueprint referenced by id) as one
node of its parent. The engine treats it like any function node (StartNode in, NodeSucceeded
or NodeFailed out); the *driver* runs the child (a nested local runner, or a child Flow on the
cluster). Both drivers must map data across the boundary exactly as flowcraft 2.10.1's
SubflowNode does, so those rules live once, here, with no I/O:

* ``initial_context``: with ``params.inputs`` ({child key: parent key}), each child key gets
  the parent context's ``<parent key>``, else ``_outputs.<parent key>`` (a key absent in both
  is left out, as flowcraft leaves it undefined); without ``params.inputs`` and with a
  non-null node input, ``_inputs.<start>`` = the input for every start node of the child
  (flowcraft's analyzeBlueprint: every node without incoming edges).
* ``result``: with ``params.outputs`` ({parent key: child key}), a context write
  ``set <parent key> = child['_outputs.<child key>'] ?? child['<child key>']`` per entry and
  the whole final child context as the output; without, the output is the ``_outputs`` value
  of the child's single terminal node (no outgoing edges), or {terminal id: value} for
  several.
* ``failure_message``: a child that did not succeed fails the node with flowcraft's message.

The parent context a node "sees" is ``Engine.node_context`` plus ``_inputs.<own id>``
(``parent_context``), exactly what a function node's runtime shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from flowcraft.contract import Write
from flowcraft.model import EdgeSpec, FlowStatus, NodeSpec

# How deep subflows may nest (a subflow of a subflow of ...). flowcraft has no bound (a
# recursive blueprint recurses until the stack runs out); a driver creating processes or
# Flow objects needs one.
MAX_DEPTH: Final = 10


class Graph(Protocol):
    """What the rules read of a blueprint: its nodes and edges (FlowSpec and Blueprint)."""

    @property
    def nodes(self) -> Sequence[NodeSpec]: ...

    @property
    def edges(self) -> Sequence[EdgeSpec]: ...


class SubflowError(ValueError):
    """A subflow node's params cannot be used (validation normally catches this first)."""


@dataclass(frozen=True)
class SubflowParams:
    """A subflow node's params: ``blueprintId``, optional ``inputs`` and ``outputs``."""

    blueprint_id: str
    inputs: Mapping[str, str] | None = None
    outputs: Mapping[str, str] | None = None

    @classmethod
    def of(cls, node: NodeSpec) -> SubflowParams:
        params = node.params
        blueprint_id = params.get("blueprintId")
        if not isinstance(blueprint_id, str) or not blueprint_id:
            raise SubflowError(f"subflow node {node.id!r} is missing params.blueprintId")
        maps: list[Mapping[str, str] | None] = []
        for key in ("inputs", "outputs"):
            value = params.get(key)
            if value is not None and not (
                isinstance(value, dict)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
            ):
                raise SubflowError(
                    f"subflow node {node.id!r}: params.{key} must map context keys to "
                    f"context keys, got {value!r}"
                )
            maps.append(value)
        return cls(blueprint_id, maps[0], maps[1])


@dataclass(frozen=True)
class SubflowResult:
    """What the parent's subflow node reports: NodeSucceeded(output, action=None, writes)."""

    output: Any
    writes: tuple[Write, ...] = ()


def start_nodes(graph: Graph) -> list[str]:
    """flowcraft's start nodes: every node without an incoming edge, in node order (a
    fallback node counts too: flowcraft's analysis does not tell them apart)."""
    targets = {edge.target for edge in graph.edges}
    return [node.id for node in graph.nodes if node.id not in targets]


def terminal_nodes(graph: Graph) -> list[str]:
    """flowcraft's terminal nodes: every node without an outgoing edge, in node order."""
    sources = {edge.source for edge in graph.edges}
    return [node.id for node in graph.nodes if node.id not in sources]


def parent_context(node_context: Mapping[str, Any], node: str, input_value: Any) -> dict[str, Any]:
    """The parent context as the subflow node sees it: ``Engine.node_context`` plus
    ``_inputs.<node>`` when the node has an input (what a function's ``ctx.get`` shows)."""
    context = dict(node_context)
    if input_value is not None:
        context[f"_inputs.{node}"] = input_value
    return context


def initial_context(
    params: SubflowParams, parent: Mapping[str, Any], input_value: Any, child: Graph
) -> dict[str, Any]:
    """The child flow's initial context (see the module docstring)."""
    context: dict[str, Any] = {}
    if params.inputs is not None:
        for target, source in params.inputs.items():
            if source in parent:
                context[target] = parent[source]
            elif f"_outputs.{source}" in parent:
                context[target] = parent[f"_outputs.{source}"]
        return context
    if input_value is not None:
        for start in start_nodes(child):
            context[f"_inputs.{start}"] = input_value
    return context


def result(params: SubflowParams, child: Graph, final_context: Mapping[str, Any]) -> SubflowResult:
    """The parent node's output and context writes, from the child's final context."""
    if params.outputs is not None:
        writes: list[Write] = []
        for parent_key, child_key in params.outputs.items():
            value = final_context.get(f"_outputs.{child_key}")
            if value is None:  # JavaScript's `??`: null and undefined both fall through
                value = final_context.get(child_key)
            writes.append({"op": "set", "key": parent_key, "value": value})
        return SubflowResult(dict(final_context), tuple(writes))
    terminals = terminal_nodes(child)
    if len(terminals) == 1:
        return SubflowResult(final_context.get(f"_outputs.{terminals[0]}"))
    return SubflowResult({t: final_context.get(f"_outputs.{t}") for t in terminals})


def failure_message(blueprint_id: str, status: FlowStatus) -> str:
    """flowcraft's message for a child that did not complete, with our phase and the first
    error the child recorded."""
    first = status.errors[0] if status.errors else (status.message or "Unknown error")
    return (
        f"sub-workflow {blueprint_id!r} did not complete successfully. "
        f"Status: {status.phase}. Error: {first}"
    )


def depth_problem(chain: Sequence[str]) -> str | None:
    """Why a subflow cannot start one level below ``chain`` (the flow, then the blueprint id
    of each enclosing subflow, then the one about to start), or None."""
    depth = len(chain) - 1
    if depth <= MAX_DEPTH:
        return None
    return (
        f"subflows nest at most {MAX_DEPTH} levels deep; this one would be level {depth}: "
        + " -> ".join(chain)
    )
