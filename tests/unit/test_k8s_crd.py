"""The CRD is generated from the model, structural, and checked in without drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flowcraft.drivers.kubernetes import crd

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _walk(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = []
    if isinstance(schema, dict):
        out.append((path, schema))
        for key in ("properties",):
            for name, sub in (schema.get(key) or {}).items():
                out.extend(_walk(sub, f"{path}.{name}"))
        if isinstance(schema.get("items"), dict):
            out.extend(_walk(schema["items"], f"{path}[]"))
        if isinstance(schema.get("additionalProperties"), dict):
            out.extend(_walk(schema["additionalProperties"], f"{path}{{}}"))
    return out


def _root() -> dict[str, Any]:
    version = crd.flow_crd()["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def test_checked_in_crd_matches_the_generator() -> None:
    assert (ROOT / "crds" / "flow.yaml").read_text(encoding="utf-8") == crd.render_yaml()


def test_schema_is_structural() -> None:
    for path, node in _walk(_root()):
        assert "$ref" not in node, path
        assert "anyOf" not in node, path
        assert "title" not in node, path
        assert node.get("additionalProperties") is not False, path
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path


def test_free_form_fields_preserve_unknown_fields() -> None:
    node = _root()["properties"]["spec"]["properties"]["nodes"]["items"]["properties"]
    assert node["params"]["x-kubernetes-preserve-unknown-fields"] is True
    assert node["inputs"]["x-kubernetes-preserve-unknown-fields"] is True


def test_optional_fields_are_nullable() -> None:
    edge = _root()["properties"]["spec"]["properties"]["edges"]["items"]
    assert edge["properties"]["action"] == {"type": "string", "nullable": True}
    assert edge["required"] == ["source", "target"]


def test_node_ids_are_unique_by_list_map_and_bounded() -> None:
    nodes = _root()["properties"]["spec"]["properties"]["nodes"]
    assert nodes["x-kubernetes-list-type"] == "map"
    assert nodes["x-kubernetes-list-map-keys"] == ["id"]
    assert nodes["maxItems"] >= 1100
    node_id = nodes["items"]["properties"]["id"]
    # Any id flowcraft accepts (camelCase, "_", spaces...) except "/"; names are derived.
    assert node_id["maxLength"] == 253
    assert node_id["pattern"] == "^[^/]+$"


def test_cel_rules_have_messages() -> None:
    rules = _root()["properties"]["spec"]["x-kubernetes-validations"]
    assert rules
    for rule in rules:
        assert rule["message"]


def test_printer_columns_and_status_subresource() -> None:
    version = crd.flow_crd()["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    cols = [c["name"] for c in version["additionalPrinterColumns"]]
    assert cols == ["Phase", "Done", "Duration", "Age"]
    status = _root()["properties"]["status"]["properties"]
    for col in version["additionalPrinterColumns"][:3]:
        assert col["jsonPath"].removeprefix(".status.") in status


def test_unknown_constructs_are_refused() -> None:
    with pytest.raises(crd.SchemaError):
        crd.structural({"properties": {}}, {})
    with pytest.raises(crd.SchemaError):
        crd.structural({"$ref": "#/$defs/Nope"}, {})


def test_yaml_is_parseable_and_names_the_crd() -> None:
    doc = yaml.safe_load(crd.render_yaml())
    assert doc["metadata"]["name"] == "flows.flowcraft.io"
    assert doc["spec"]["names"]["shortNames"] == ["fl"]


def test_status_has_the_kubernetes_conventions() -> None:
    status = _root()["properties"]["status"]["properties"]
    assert status["observedGeneration"]["type"] == "integer"
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["required"]) == {"type", "status", "lastTransitionTime", "reason", "message"}
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]


def test_the_spec_is_fixed_at_creation_except_the_runtime_controls() -> None:
    """Transition rules: ``self == oldSelf`` on every spec field but the four controls, and a
    spec-level ``has`` rule for each optional one (field rules skip an added/removed field)."""
    spec = _root()["properties"]["spec"]
    controls = {"suspend", "parallelism", "activeDeadlineSeconds", "resume"}
    fixed = set(spec["properties"]) - controls
    assert fixed == {
        "nodes", "edges", "functions", "image", "failFast", "context", "expressionLanguage",
    }  # fmt: skip
    for name in controls:
        assert "x-kubernetes-validations" not in spec["properties"][name], name
    presence = {
        rule["fieldPath"]: rule["rule"]
        for rule in spec["x-kubernetes-validations"]
        if "oldSelf" in rule["rule"]
    }
    for name in fixed:
        (rule,) = spec["properties"][name]["x-kubernetes-validations"]
        assert rule["rule"] == "self == oldSelf"
        assert rule["message"].startswith(f"spec.{name} cannot change once the Flow exists")
        assert "parallelism, activeDeadlineSeconds, suspend and resume" in rule["message"]
        assert "delete the Flow and create it again" in rule["message"]
        if name != "nodes":  # required: always present on both sides
            assert presence[f".{name}"] == f"has(self.{name}) == has(oldSelf.{name})"
    # CEL sees only typed fields: the free-form context must stay an object to be compared.
    assert spec["properties"]["context"]["type"] == "object"


def test_flow_and_blueprint_graphs_share_their_bounds() -> None:
    flow = _root()["properties"]["spec"]["properties"]
    blueprint = crd.blueprint_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    bp = blueprint["properties"]["spec"]["properties"]
    for props in (flow, bp):
        assert props["nodes"]["maxItems"] == crd.MAX_NODES
        assert props["edges"]["maxItems"] == crd.MAX_EDGES
        assert props["functions"]["maxProperties"] == crd.MAX_FUNCTIONS
        assert props["nodes"]["x-kubernetes-list-map-keys"] == ["id"]
