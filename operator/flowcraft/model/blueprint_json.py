"""flowcraft's blueprint JSON as a Flow manifest.

flowcraft's `toBlueprint()` emits `{id, nodes, edges, metadata}` and no function registry;
`blueprint_to_manifest` turns it plus a functions mapping into the equivalent `kind: Flow`
manifest, with flowcraft's behaviour (`failFast: false`, flowcraft expressions). Unlike a
manifest, a blueprint ignores keys flowcraft does not know, as flowcraft itself does, with one
warning per dropped key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flowcraft.model.errors import FlowValidationError, Problem, format_path
from flowcraft.model.flow import API_VERSION, KIND, EdgeSpec, NodeConfig, NodeSpec

BLUEPRINT_ID_ANNOTATION = "flowcraft.io/blueprint-id"
BLUEPRINT_VERSION_ANNOTATION = "flowcraft.io/blueprint-version"


def is_blueprint(data: Mapping[str, Any]) -> bool:
    """A flowcraft blueprint has top-level `nodes` and no Kubernetes `spec`/`kind`."""
    return "nodes" in data and "spec" not in data and "kind" not in data


def sanitize_name(raw: str) -> str:
    """Turn a blueprint id into a Kubernetes name: lowercase, other characters become '-'.

    `"My_Flow v2"` -> `"my-flow-v2"`. Raises FlowValidationError when nothing usable remains.
    """
    name = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")[:63].rstrip("-")
    if not name:
        raise FlowValidationError(
            [
                Problem(
                    "id",
                    f"blueprint id {raw!r} cannot become a Kubernetes name "
                    "(needs at least one letter or digit)",
                )
            ]
        )
    return name


# What a blueprint may say, by its wire (camelCase) names: the fields our models know. A key
# outside these is ignored, as flowcraft ignores it. Keys starting with "_" are flowcraft's own
# tooling metadata (`_sourceLocation`) and are dropped without a word.
_BLUEPRINT_KEYS = frozenset({"id", "nodes", "edges", "metadata"})


def _wire_names(model: type[NodeSpec | EdgeSpec | NodeConfig]) -> frozenset[str]:
    return frozenset(field.alias or name for name, field in model.model_fields.items())


def _known_only(
    item: Any, known: frozenset[str], at: tuple[str | int, ...], warnings: list[Problem]
) -> Any:
    """`item` without the keys outside `known` (a warning for each); non-mappings unchanged."""
    if not isinstance(item, dict):
        return item  # not an object: the model reports it with its path
    kept: dict[str, Any] = {}
    for key, value in item.items():
        if key in known:
            kept[key] = value
        elif not str(key).startswith("_"):
            warnings.append(
                Problem(format_path([*at, key]), "ignored (not part of the blueprint format)")
            )
    return kept


def blueprint_to_manifest(
    blueprint: Mapping[str, Any],
    functions: Mapping[str, Any] | None,
    *,
    warnings: list[Problem] | None = None,
) -> dict[str, Any]:
    """The Flow manifest (as a dict) equivalent to a flowcraft blueprint plus functions.

    Keys flowcraft would ignore are dropped; pass `warnings` to collect one Problem per dropped
    key, with its path in the blueprint (`nodes[2].foo`). The flow gets flowcraft's behaviour:
    `failFast: false` (independent branches keep running after a failure, the flow fails at
    the end) and `expressionLanguage: flowcraft`.
    """
    dropped: list[Problem] = [] if warnings is None else warnings
    raw_id = blueprint.get("id")
    if not isinstance(raw_id, str) or not raw_id:
        raise FlowValidationError([Problem("id", "blueprint needs a string `id` (the flow name)")])
    name = sanitize_name(raw_id)
    dropped.extend(
        Problem(str(key), "ignored (not part of the blueprint format)")
        for key in blueprint
        if key not in _BLUEPRINT_KEYS and not str(key).startswith("_")
    )
    annotations: dict[str, str] = {}
    if name != raw_id:
        annotations[BLUEPRINT_ID_ANNOTATION] = raw_id
    meta = blueprint.get("metadata")  # other metadata keys (cycleEntryPoints, ...) are ignored
    if isinstance(meta, dict) and meta.get("version") is not None:
        annotations[BLUEPRINT_VERSION_ANNOTATION] = str(meta["version"])
    metadata: dict[str, Any] = {"name": name}
    if annotations:
        metadata["annotations"] = annotations

    node_keys, config_keys = _wire_names(NodeSpec), _wire_names(NodeConfig)
    nodes: list[Any] = []
    for index, raw in enumerate(_as_list(blueprint.get("nodes"))):
        node = _known_only(raw, node_keys, ("nodes", index), dropped)
        if isinstance(node, dict):
            # flowcraft omits `params`/`config` when empty and may emit explicit nulls.
            for key in ("params", "config", "inputs"):
                if node.get(key) is None:
                    node.pop(key, None)
            if "config" in node:
                node["config"] = _known_only(
                    node["config"], config_keys, ("nodes", index, "config"), dropped
                )
        nodes.append(node)
    edge_keys = _wire_names(EdgeSpec)
    edges = [
        _known_only(raw, edge_keys, ("edges", index), dropped)
        for index, raw in enumerate(_as_list(blueprint.get("edges")))
    ]
    spec: dict[str, Any] = {
        "nodes": nodes,
        "edges": edges,
        "functions": dict(functions or {}),
        "failFast": False,
        "expressionLanguage": "flowcraft",
    }
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def _as_list(value: Any) -> Any:
    # null/absent means none; any other non-list goes through for the model to report.
    return [] if value is None else value
