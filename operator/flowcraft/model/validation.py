"""Graph-level checks of a FlowSpec that a schema cannot express.

Why separate from the models: these checks need the whole spec (ids vs edges vs functions vs
fallbacks), and users want every problem reported in one go with the path and the culprit,
not the first exception. The engine relies on these guarantees (a DAG, known ids, compiled
expressions), so drivers validate before they build an Engine.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from flowcraft.model.errors import FlowValidationError, Problem
from flowcraft.model.expressions import ExpressionError, compile_expression
from flowcraft.model.flow import BUILTINS, BuiltinKind, Flow, FlowSpec

MAX_LABEL = 63
_LABEL_CHARS = re.compile(r"^[a-z0-9-]*$")
MAX_NODE_ID = 253


def node_id_problem(value: str) -> str | None:
    """Why `value` cannot be a node id, or None. flowcraft allows any string; we need a
    non-empty one without "/" (ids name files in a node's input directory) of bounded size
    (ids are stored in annotations and status keys). Kubernetes names are derived from ids."""
    if not value:
        return "must not be empty"
    if "/" in value:
        return "must not contain '/'"
    if len(value) > MAX_NODE_ID:
        return f"must be at most {MAX_NODE_ID} characters (has {len(value)})"
    return None


def dns1123_label_problem(value: str) -> str | None:
    """Why `value` is not a DNS-1123 label (the rule broken), or None if it is one."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_LABEL:
        return f"must be at most {MAX_LABEL} characters (has {len(value)})"
    if not _LABEL_CHARS.match(value):
        bad = sorted({ch for ch in value if not re.match(r"[a-z0-9-]", ch)})
        shown = ", ".join(repr(ch) for ch in bad)
        return f"may contain only lowercase letters, digits and '-' (found {shown})"
    if not value[0].isalnum() or not value[-1].isalnum():
        return "must start and end with a lowercase letter or digit"
    return None


def check_spec(spec: FlowSpec, prefix: str = "spec") -> list[Problem]:
    """Every graph problem in `spec`, in document order."""
    problems: list[Problem] = []
    if not spec.nodes:
        problems.append(Problem(f"{prefix}.nodes", "the flow has no nodes; add at least one"))
        return problems

    first_index: dict[str, int] = {}
    for i, node in enumerate(spec.nodes):
        path = f"{prefix}.nodes[{i}]"
        why = node_id_problem(node.id)
        if why is not None:
            problems.append(Problem(f"{path}.id", f"node id {node.id!r} {why}"))
        if node.id in first_index:
            problems.append(
                Problem(
                    f"{path}.id",
                    f"duplicate node id {node.id!r} (first defined at "
                    f"{prefix}.nodes[{first_index[node.id]}])",
                )
            )
        else:
            first_index[node.id] = i
        kind = spec.builtin(node)
        if node.uses not in spec.functions and kind is None:
            known = ", ".join(sorted(spec.functions)) or "none defined"
            problems.append(
                Problem(
                    f"{path}.uses",
                    f"node {node.id!r} uses unknown function {node.uses!r} "
                    f"(spec.functions has: {known}; built-in node types: "
                    f"{', '.join(sorted(BUILTINS))})",
                )
            )
        elif kind is not None:
            problems.extend(_check_builtin(spec, i, kind, prefix))

    ids = set(first_index)
    has_incoming: set[str] = set()
    for j, edge in enumerate(spec.edges):
        path = f"{prefix}.edges[{j}]"
        for end in ("source", "target"):
            value = getattr(edge, end)
            if value not in ids:
                problems.append(
                    Problem(
                        f"{path}.{end}",
                        f"edge {edge.source} -> {edge.target}: unknown {end} node {value!r}",
                    )
                )
        has_incoming.add(edge.target)
        for field in ("condition", "transform"):
            source = getattr(edge, field)
            if source is None:
                continue
            try:
                compile_expression(source, spec.expression_language)
            except ExpressionError as exc:
                problems.append(
                    Problem(f"{path}.{field}", f"edge {edge.source} -> {edge.target}: {exc}")
                )

    problems.extend(_check_fallbacks(spec, prefix, ids, has_incoming))
    problems.extend(_check_cycles(spec, prefix, ids))
    return problems


DURATION = re.compile(r"^(\d+)([smhd])$")
_DURATION_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
# The longest sleep: a year (a longer one overflowed the date arithmetic and crashed the engine).
MAX_SLEEP_MS = 366 * 86_400_000


def duration_ms(duration: Any) -> float | None:
    """A sleep's `params.duration` (ms, or '5s', '10m', '1h', '2d') in milliseconds; None if
    it is not a duration."""
    if isinstance(duration, bool):
        return None
    if isinstance(duration, int | float):
        return float(duration) if duration >= 0 else None
    if isinstance(duration, str):
        found = DURATION.match(duration)
        if found is not None:
            return float(int(found.group(1)) * _DURATION_UNITS_MS[found.group(2)])
    return None


DEFAULT_MAX_ITERATIONS = 100


def _check_builtin(spec: FlowSpec, index: int, kind: BuiltinKind, prefix: str) -> list[Problem]:
    """The params each built-in node type needs, as flowcraft's builder emits them."""
    node = spec.nodes[index]
    path = f"{prefix}.nodes[{index}]"
    params = node.params
    problems: list[Problem] = []

    def need(key: str, what: str) -> None:
        problems.append(
            Problem(f"{path}.params.{key}", f"{kind} node {node.id!r} needs params.{key}: {what}")
        )

    if kind == "webhook":
        problems.append(
            Problem(
                f"{path}.uses",
                f"webhook node {node.id!r} is not supported: flowcraft's webhook needs an adapter "
                "that registers an HTTP endpoint and delivers the call; use a wait node and "
                "resume it from your webhook handler (flowcraft resume / kubectl patch)",
            )
        )
    elif kind == "loop-controller":
        condition = params.get("condition")
        if not isinstance(condition, str) or not condition.strip():
            need("condition", "the expression that keeps the loop going while true")
        else:
            try:
                compile_expression(condition, spec.expression_language)
            except ExpressionError as exc:
                problems.append(Problem(f"{path}.params.condition", f"loop {node.id!r}: {exc}"))
        if not any(e.source == node.id and e.action == "continue" for e in spec.edges):
            problems.append(
                Problem(
                    f"{path}",
                    f"loop {node.id!r} has no outgoing edge with action 'continue' to the first "
                    "node of its body",
                )
            )
        limit = params.get("maxIterations", DEFAULT_MAX_ITERATIONS)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            need("maxIterations", f"a positive integer (got {limit!r})")
    elif kind == "sleep":
        duration = params.get("duration")
        ms = duration_ms(duration)
        if ms is None:
            need(
                "duration",
                f"milliseconds (a number >= 0) or '5s', '10m', '1h', '2d' (got {duration!r})",
            )
        elif ms > MAX_SLEEP_MS:
            need("duration", f"at most 366d (got {duration!r})")
    elif kind == "batch-scatter":
        worker = params.get("workerUsesKey")
        if not isinstance(worker, str) or worker not in spec.functions:
            need(
                "workerUsesKey",
                f"the function each item runs, a key of spec.functions (got {worker!r})",
            )
        gather = params.get("gatherNodeId")
        gathers = {n.id for n in spec.nodes if spec.builtin(n) == "batch-gather"}
        if gather not in gathers:
            need("gatherNodeId", f"the id of its batch-gather node (got {gather!r})")
        chunk = params.get("chunkSize")
        if chunk is not None and (
            not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1
        ):
            need("chunkSize", f"a positive integer (got {chunk!r})")
    elif kind == "batch-gather":
        if not isinstance(params.get("outputKey"), str):
            need("outputKey", "the context key that receives the results")
    elif kind == "subflow":
        if not isinstance(params.get("blueprintId"), str) or not params.get("blueprintId"):
            need("blueprintId", "the id of the blueprint to run")
        for key in ("inputs", "outputs"):
            mapping = params.get(key)
            if mapping is not None and not (
                isinstance(mapping, dict)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())
            ):
                need(key, "a mapping of context keys (strings) to context keys")
    return problems


def _check_fallbacks(
    spec: FlowSpec, prefix: str, ids: set[str], has_incoming: set[str]
) -> list[Problem]:
    problems: list[Problem] = []
    owners: dict[str, list[str]] = defaultdict(list)
    for i, node in enumerate(spec.nodes):
        fallback = node.config.fallback
        if fallback is None:
            continue
        path = f"{prefix}.nodes[{i}].config.fallback"
        if fallback == node.id:
            problems.append(Problem(path, f"node {node.id!r} names itself as its fallback"))
        elif fallback not in ids:
            problems.append(
                Problem(path, f"node {node.id!r} has unknown fallback node {fallback!r}")
            )
        else:
            owners[fallback].append(node.id)
            if fallback in has_incoming:
                problems.append(
                    Problem(
                        path,
                        f"fallback node {fallback!r} of {node.id!r} must not have incoming "
                        "edges: it runs only when its node fails",
                    )
                )
    for fallback, by in owners.items():
        if len(by) > 1:
            i = next(k for k, n in enumerate(spec.nodes) if n.id == by[1])
            problems.append(
                Problem(
                    f"{prefix}.nodes[{i}].config.fallback",
                    f"node {fallback!r} is the fallback of several nodes "
                    f"({', '.join(by)}); a fallback node serves one node",
                )
            )
    return problems


def _check_cycles(spec: FlowSpec, prefix: str, ids: set[str]) -> list[Problem]:
    """Find cycles over edges plus node -> fallback links (a fallback runs after its node)."""
    successors: dict[str, list[tuple[str, bool]]] = {node_id: [] for node_id in ids}
    for edge in spec.edges:
        if edge.source in ids and edge.target in ids:
            successors[edge.source].append((edge.target, False))
    for node in spec.nodes:
        fallback = node.config.fallback
        if fallback in ids and fallback != node.id and node.id in successors:
            successors[node.id].append((fallback, True))

    by_id = {node.id: node for node in spec.nodes}
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(ids, white)
    problems: list[Problem] = []
    seen_cycles: set[frozenset[str]] = set()
    order = list(dict.fromkeys(n.id for n in spec.nodes))
    for root in order:
        if color[root] != white:
            continue
        # Iterative DFS keeping the current path so a back edge yields the cycle in order.
        path: list[str] = [root]
        via: list[bool] = []
        stack = [iter(successors[root])]
        color[root] = grey
        while stack:
            step = next(stack[-1], None)
            if step is None:
                stack.pop()
                color[path.pop()] = black
                if via:
                    via.pop()
                continue
            target, is_fallback = step
            if color[target] == white:
                color[target] = grey
                path.append(target)
                via.append(is_fallback)
                stack.append(iter(successors[target]))
            elif color[target] == grey:
                start = path.index(target)
                members = frozenset(path[start:])
                if members in seen_cycles:
                    continue
                seen_cycles.add(members)
                if any(spec.builtin(by_id[m]) == "loop-controller" for m in members if m in by_id):
                    continue  # a loop: cycles are allowed where they pass a loop controller
                hops = [*via[start:], is_fallback]
                text = path[start]
                for node_id, fallback_hop in zip([*path[start + 1 :], target], hops, strict=True):
                    text += (" -(fallback)-> " if fallback_hop else " -> ") + node_id
                problems.append(Problem(f"{prefix}.edges", f"cycle: {text}"))
    return problems


def validate_flow(flow: Flow) -> Flow:
    """Raise FlowValidationError listing every graph problem; return the flow when valid."""
    problems = check_spec(flow.spec)
    why = dns1123_subdomain_problem(flow.metadata.name)
    if why is not None:
        problems.insert(
            0,
            Problem(
                "metadata.name",
                f"flow name {flow.metadata.name!r} is not a valid Kubernetes name: {why}",
            ),
        )
    if problems:
        raise FlowValidationError(problems)
    return flow


MAX_SUBDOMAIN = 253
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def dns1123_subdomain_problem(value: str) -> str | None:
    if not value:
        return "must not be empty"
    if len(value) > MAX_SUBDOMAIN:
        return f"must be at most {MAX_SUBDOMAIN} characters (has {len(value)})"
    if not _SUBDOMAIN.match(value):
        return (
            "must be lowercase letters, digits, '-' and '.', starting and ending with a "
            "letter or digit"
        )
    return None
