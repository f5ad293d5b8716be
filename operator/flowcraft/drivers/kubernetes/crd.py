"""The Flow and Blueprint CustomResourceDefinitions, generated from the pydantic models (pure).

Why generated: the model is the one definition of a Flow; a hand-written CRD schema would
drift from it. ``crds/flow.yaml`` and ``crds/blueprint.yaml`` are this module's output
(``make generate``), and ``make verify`` fails when the files and the generator disagree.
A Blueprint (``flowcraft.model.blueprint``) is the reusable graph a subflow node runs by id.

Pydantic emits JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema. The conversion:
``$ref`` → inlined, ``anyOf [X, null]`` → X with ``nullable``, other unions and free-form values
→ ``x-kubernetes-preserve-unknown-fields``, ``exclusiveMinimum: n`` → OpenAPI 3.0 form,
``additionalProperties: false``, titles and defaults dropped (the API server prunes unknown
fields, and defaults stay the model's business so a stored Flow reads as the user wrote it).

Admission checks added on top, all linear so they fit the API server's CEL cost budget:
- node ids: any non-empty string without "/" (as flowcraft allows; Kubernetes names are
  derived from them, see ``names``), at most 253 characters, and uniqueness through
  ``x-kubernetes-list-type: map`` keyed by ``id`` (native; no O(n^2) CEL);
- ``uses`` must name a function or a built-in node type: a CEL map lookup per node.
Edge endpoints and fallback references are *not* CEL rules: with lists as long as the
1 -> 1000 -> 1 benchmark needs (``maxItems`` below), ``edges.all(e, nodes.exists(...))`` costs
nodes x edges, and kube-apiserver 1.35 refused it (estimated cost 15.3x over the per-rule
budget at 1500 nodes x 3000 edges). Those checks, cycles and expression syntax are done by the
operator with the model's validation: the Flow goes Failed with every problem in
``status.message`` and a Warning Event; with the chart's admission webhook enabled
(``webhook``) ``kubectl apply`` gets the same problems back and nothing is created.

Transition rules make the spec fixed from creation except the fields the model lists in
``MUTABLE_SPEC_FIELDS`` (``suspend``, ``parallelism``, ``activeDeadlineSeconds``, ``resume``):
the run's status refers into the spec (``takenEdges`` are indexes into ``spec.edges``), so a
graph edited under a running Flow would silently route differently or break it.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from flowcraft.model import BUILTIN_ALIASES, BUILTINS, FlowSpec, FlowStatus
from flowcraft.model.blueprint import BlueprintSpec
from flowcraft.model.flow import MUTABLE_SPEC_FIELDS, mutable_fields_text, spec_field_alias

GROUP = "flowcraft.io"
VERSION = "v1alpha1"
KIND = "Flow"
PLURAL = "flows"
SINGULAR = "flow"
SHORT_NAMES = ["fl"]

# Bounds that keep CEL cost estimates finite (see the module docstring).
MAX_NODES = 1500
MAX_EDGES = 3000
MAX_ID = 253
MAX_FUNCTIONS = 256
_NODE_ID = "^[^/]+$"

Schema = dict[str, Any]

# A constant list literal: the membership test stays linear in the node count.
_BUILTIN_LIST = "[" + ", ".join(f"'{u}'" for u in sorted(BUILTINS | set(BUILTIN_ALIASES))) + "]"

_DROP = {"title", "default", "examples", "$defs", "discriminator"}
_PRESERVE = "x-kubernetes-preserve-unknown-fields"


class SchemaError(ValueError):
    """The model uses a JSON Schema construct the generator cannot map."""


def _resolve(ref: str, defs: dict[str, Schema]) -> Schema:
    prefix = "#/$defs/"
    if not ref.startswith(prefix) or ref[len(prefix) :] not in defs:
        raise SchemaError(f"unresolvable $ref {ref!r}")
    return defs[ref[len(prefix) :]]


def structural(schema: Schema, defs: dict[str, Schema]) -> Schema:
    """Convert one pydantic JSON Schema node into a structural OpenAPI v3 schema node."""
    if "$ref" in schema:
        merged = {
            **_resolve(schema["$ref"], defs),
            **{k: v for k, v in schema.items() if k != "$ref"},
        }
        return structural(merged, defs)
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o != {"type": "null"}]
        nullable = len(options) < len(schema["anyOf"])
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        if len(options) == 1:
            # Optional free-form objects keep their type, so CEL rules can see them.
            union = structural({**options[0], **rest}, defs)
        else:
            # A union a structural schema cannot express: accept any value, the model checks it.
            union = {_PRESERVE: True}
            if "description" in rest:
                union["description"] = rest["description"]
        if nullable:
            union["nullable"] = True
        return union

    out: Schema = {}
    for key, value in schema.items():
        if key in _DROP:
            continue
        if key == "properties":
            out["properties"] = {name: structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out["items"] = structural(value, defs)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out["additionalProperties"] = structural(value, defs)
            # bool: false → pruning does it; true → preserve-unknown-fields does it.
        elif key == "exclusiveMinimum":
            out["minimum"] = value
            out["exclusiveMinimum"] = True
        elif key == "exclusiveMaximum":
            out["maximum"] = value
            out["exclusiveMaximum"] = True
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = copy.deepcopy(value)
    if out.get(_PRESERVE):
        # Free-form: keep only what structural schemas allow next to preserve-unknown-fields.
        out.pop("additionalProperties", None)
        out.pop("properties", None)
    elif "type" not in out:
        raise SchemaError(f"schema node without a type: {schema!r}")
    return out


def _model_schema(model: type[FlowSpec] | type[FlowStatus] | type[BlueprintSpec]) -> Schema:
    raw = model.model_json_schema(by_alias=True, mode="serialization")
    return structural(raw, raw.get("$defs", {}))


def _bound_graph(props: Schema) -> None:
    """Bounds shared by a Flow's and a Blueprint's graph: list sizes and id lengths keep CEL
    cost estimates finite, and node ids are unique through a list map."""
    nodes = props["nodes"]
    nodes.update(
        {
            "maxItems": MAX_NODES,
            "minItems": 1,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["id"],
        }
    )
    node_props = nodes["items"]["properties"]
    node_props["id"].update(maxLength=MAX_ID, pattern=_NODE_ID)
    node_props["uses"]["maxLength"] = 253
    node_props["config"]["properties"]["fallback"]["maxLength"] = MAX_ID
    edges = props["edges"]
    edges["maxItems"] = MAX_EDGES
    for end in ("source", "target"):
        edges["items"]["properties"][end]["maxLength"] = MAX_ID
    props["functions"]["maxProperties"] = MAX_FUNCTIONS


def immutable_message(field: str) -> str:
    """The admission message for an edit of ``spec.<field>`` (wire name)."""
    return (
        f"spec.{field} cannot change once the Flow exists: only {mutable_fields_text()} may; "
        "to run a changed flow, delete the Flow and create it again, or create it under a "
        "new name"
    )


def _immutable_rules(spec: Schema) -> None:
    """CEL transition rules fixing every spec field outside ``MUTABLE_SPEC_FIELDS``.

    ``self == oldSelf`` sits on each field (its cost is checked per field, and a spec-level
    comparison of nodes and edges blew the budget); it only runs when the old and the new
    object both have the field, so a spec-level ``has`` rule per optional field catches a
    field being added or removed. Transition rules see the old and the new object, never the
    status: the spec is fixed from creation, not from the moment the run started.
    """
    required = set(spec.get("required", []))
    presence: list[Schema] = []
    for field in FlowSpec.model_fields:
        if field in MUTABLE_SPEC_FIELDS:
            continue
        name = spec_field_alias(field)
        message = immutable_message(name)
        rules = spec["properties"][name].setdefault("x-kubernetes-validations", [])
        rules.append({"rule": "self == oldSelf", "message": message})
        if name not in required:
            presence.append(
                {
                    "rule": f"has(self.{name}) == has(oldSelf.{name})",
                    "message": message,
                    "fieldPath": f".{name}",
                }
            )
    spec["x-kubernetes-validations"].extend(presence)


def spec_schema() -> Schema:
    spec = _model_schema(FlowSpec)
    _bound_graph(spec["properties"])
    spec["x-kubernetes-validations"] = [
        {
            # A map lookup per node: linear, far inside the CEL cost budget.
            "rule": "self.nodes.all(n, n.uses in self.functions || n.uses in "
            + _BUILTIN_LIST
            + ")",
            "message": "every node's uses must name an entry of spec.functions or a built-in "
            "node type (" + ", ".join(sorted(BUILTINS)) + ")",
            "fieldPath": ".nodes",
        },
    ]
    _immutable_rules(spec)
    return spec


BLUEPRINT_KIND = "Blueprint"
BLUEPRINT_PLURAL = "blueprints"
BLUEPRINT_SINGULAR = "blueprint"
BLUEPRINT_SHORT_NAMES = ["fbp"]


def blueprint_spec_schema() -> Schema:
    spec = _model_schema(BlueprintSpec)
    props = spec["properties"]
    _bound_graph(props)
    props["id"].update(minLength=1, maxLength=MAX_ID)
    # No `uses` rule: a blueprint's nodes may use the functions of the flow that runs it.
    return spec


def blueprint_crd() -> Schema:
    """The Blueprint CustomResourceDefinition (no status: nothing reconciles a Blueprint)."""
    root: Schema = {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": blueprint_spec_schema(),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{BLUEPRINT_PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": BLUEPRINT_KIND,
                "listKind": f"{BLUEPRINT_KIND}List",
                "plural": BLUEPRINT_PLURAL,
                "singular": BLUEPRINT_SINGULAR,
                "shortNames": BLUEPRINT_SHORT_NAMES,
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": [
                        {
                            "name": "Id",
                            "type": "string",
                            "jsonPath": ".spec.id",
                            "description": "The id subflow nodes use (default: the name).",
                        },
                        {"name": "Nodes", "type": "string", "jsonPath": ".spec.nodes[*].id"},
                        {
                            "name": "Age",
                            "type": "date",
                            "jsonPath": ".metadata.creationTimestamp",
                        },
                    ],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


# metav1.Condition, as controller-gen renders it.
_CONDITION: Schema = {
    "type": "object",
    "required": ["type", "status", "lastTransitionTime", "reason", "message"],
    "properties": {
        "type": {"type": "string", "maxLength": 316},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
        "lastTransitionTime": {"type": "string", "format": "date-time"},
        "reason": {
            "type": "string",
            "minLength": 1,
            "maxLength": 1024,
            "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        },
        "message": {"type": "string", "maxLength": 32768},
    },
}


def status_schema() -> Schema:
    status = _model_schema(FlowStatus)
    # Fields only the operator maintains, for `kubectl get` columns.
    status["properties"]["progress"] = {
        "type": "string",
        "description": "Finished nodes and batch items / all of them, e.g. 3/5 or "
        "9954/10004 (maintained by the operator).",
    }
    status["properties"]["duration"] = {
        "type": "string",
        "description": "Wall time from start to end once the flow finished, e.g. 2.4s.",
    }
    # The Kubernetes status conventions (see drivers/kubernetes/status.py).
    status["properties"]["observedGeneration"] = {
        "type": "integer",
        "format": "int64",
        "minimum": 0,
        "description": "The metadata.generation this status was computed for.",
    }
    status["properties"]["conditions"] = {
        "type": "array",
        "description": "Succeeded (True/False/Unknown) and Failed, as metav1.Condition: "
        "`kubectl wait --for=condition=Succeeded flow/NAME`.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "maxItems": 8,
        "items": _CONDITION,
    }
    return status


def flow_crd() -> Schema:
    """The whole CustomResourceDefinition manifest."""
    root: Schema = {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": status_schema(),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": SHORT_NAMES,
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Done", "type": "string", "jsonPath": ".status.progress"},
                        {"name": "Duration", "type": "string", "jsonPath": ".status.duration"},
                        {
                            "name": "Age",
                            "type": "date",
                            "jsonPath": ".metadata.creationTimestamp",
                        },
                    ],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def render_yaml(kind: str = "flow") -> str:
    """crds/<kind>.yaml as written by ``make generate`` (stable key order, a header)."""
    header = (
        "# GENERATED by `make generate` from flowcraft.model (flowcraft.drivers.kubernetes.crd)."
        "\n# Do not edit: `make verify` fails when this file drifts from the generator.\n"
    )
    crd = blueprint_crd() if kind == "blueprint" else flow_crd()
    return header + yaml.safe_dump(crd, sort_keys=False, width=100)


def main() -> None:
    """``python -m flowcraft.drivers.kubernetes.crd [--check] [--kind blueprint] PATH``."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--check", action="store_true", help="fail if PATH differs")
    parser.add_argument("--kind", choices=("flow", "blueprint"), default="flow")
    args = parser.parse_args()
    text = render_yaml(args.kind)
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.exists() else ""
        if current != text:
            sys.stderr.write(f"{args.path} is out of date: run `make generate`\n")
            raise SystemExit(1)
        return
    args.path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
