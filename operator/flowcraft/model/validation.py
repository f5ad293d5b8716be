"""Graph-level checks of a FlowSpec that a schema cannot express.

Why separate from the models: these checks need the whole spec (ids vs edges vs functions vs
fallbacks), and users want every problem reported in one go with the path and the culprit,
not the first exception. The engine relies on these guarantees (a DAG, known ids, compiled
expressions), so drivers validate before they build an Engine.
"""

from __future__ import annotations

import re
from collections import defaultdict

from flowcraft.model.errors import FlowValidationError, Problem
from flowcraft.model.expressions import ExpressionError, compile_expression
from flowcraft.model.flow import Flow, FlowSpec

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
        if node.uses not in spec.functions:
            known = ", ".join(sorted(spec.functions)) or "none defined"
            problems.append(
                Problem(
                    f"{path}.uses",
                    f"node {node.id!r} uses unknown function {node.uses!r} "
                    f"(spec.functions has: {known})",
                )
            )

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
