"""The operator's subflow pieces that need no cluster: child Flow names and manifests,
lineage, Blueprint lookup, watch bookkeeping, the Blueprint CRD and the final-context helper.
(The cluster behaviour itself is tests/e2e/test_subflows_e2e.py, on real pods.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowcraft.drivers.kubernetes import builders, crd, names, results, subflows
from flowcraft.drivers.kubernetes.cache import FlowKey
from flowcraft.engine import StartNode
from flowcraft.model import FlowSpec

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
REF = builders.FlowRef(name="parent", namespace="ns", uid="uid-1")


def test_child_names_are_deterministic_hashed_short_and_per_parent_object() -> None:
    name = subflows.child_name("parent", "uid-1", "run-math", 1)
    assert name == subflows.child_name("parent", "uid-1", "run-math", 1)
    assert name.startswith(f"parent-run-math-1-{names.uid_fragment('uid-1')}-")
    assert names.is_dns_label(name)
    others = {
        subflows.child_name("parent", "uid-1", "run-math", 2),
        subflows.child_name("parent", "uid-1", "run-math", 1, iteration=3),
        subflows.child_name("parent-run", "uid-1", "math", 1),
        subflows.child_name("parent", "uid-1", "Run_Math", 1),
        subflows.child_name("parent", "uid-2", "run-math", 1),  # a re-created parent
    }
    assert name not in others
    assert len(others) == 5
    long = subflows.child_name("p" * 253, "uid-1", "Ñode " * 50, 12)
    assert names.is_dns_label(long)
    assert len(long) <= 63
    assert f"-12-{names.uid_fragment('uid-1')}-" in long


def test_child_manifest_links_to_its_parent() -> None:
    spec = FlowSpec.model_validate(
        {"nodes": [{"id": "add", "uses": "f"}], "functions": {"f": {"script": "x"}}}
    )
    spec = spec.model_copy(update={"context": {"a": 1}})
    action = StartNode("run-math", 2, None, 7.5)
    body = subflows.child_manifest(REF, action, "math", spec, depth=1, chain=("parent", "math"))
    meta = body["metadata"]
    assert meta["name"] == subflows.child_name("parent", "uid-1", "run-math", 2)
    assert meta["ownerReferences"] == [builders.owner_reference(REF)]
    assert meta["labels"][subflows.LABEL_PARENT_UID] == "uid-1"
    assert meta["labels"][subflows.LABEL_DEPTH] == "1"
    assert meta["annotations"][subflows.ANN_PARENT_NODE] == "run-math"
    assert json.loads(meta["annotations"][subflows.ANN_CHAIN]) == ["parent", "math"]
    assert body["spec"]["context"] == {"a": 1}
    assert body["spec"]["activeDeadlineSeconds"] == 8  # the node's timeout, rounded up
    assert subflows.parent_key(body) == FlowKey("ns", "parent")
    assert subflows.lineage(body) == (1, ("parent", "math"))
    assert subflows.lineage({"metadata": {"name": "top"}}) == (0, ("top",))


def test_find_blueprint_by_spec_id_else_name() -> None:
    items = [
        {"metadata": {"name": "math-subflow"}, "spec": {"id": "math_subflow"}},
        {"metadata": {"name": "plain"}, "spec": {}},
    ]
    assert subflows.find_blueprint(items, "math_subflow") is items[0]
    assert subflows.find_blueprint(items, "plain") is items[1]
    assert subflows.find_blueprint(items, "math-subflow") is None


def test_watch_events_trigger_the_parent_only_when_a_child_ends() -> None:
    tracker = subflows.Subflows(client=None)  # type: ignore[arg-type]  # no request is made
    child: dict[str, Any] = {
        "metadata": {
            "name": "c",
            "namespace": "ns",
            "uid": "u",
            "annotations": {subflows.ANN_PARENT_FLOW: "parent"},
        },
        "status": {"phase": "Running"},
    }
    assert tracker.child_changed(child, deleted=False) is None
    child["status"]["phase"] = "Succeeded"
    assert tracker.child_changed(child, deleted=False) == FlowKey("ns", "parent")
    assert tracker.child_changed(child, deleted=True) == FlowKey("ns", "parent")
    other = {"metadata": {"name": "x", "namespace": "ns"}, "status": {"phase": "Failed"}}
    assert tracker.child_changed(other, deleted=False) is None


def test_blueprint_crd_is_generated_checked_in_and_copied_to_the_chart() -> None:
    text = crd.render_yaml("blueprint")
    assert (ROOT / "crds" / "blueprint.yaml").read_text(encoding="utf-8") == text
    assert (ROOT / "charts" / "flowcraft" / "crds" / "blueprint.yaml").read_text() == text
    doc = yaml.safe_load(text)
    assert doc["metadata"]["name"] == "blueprints.flowcraft.io"
    version = doc["spec"]["versions"][0]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns == {
        "Id": ".spec.id",
        "Nodes": ".spec.nodes[*].id",
        "Age": ".metadata.creationTimestamp",
    }
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["nodes"]["x-kubernetes-list-map-keys"] == ["id"]
    assert "status" not in version.get("subresources", {})


def test_final_context_from_status_and_configmaps() -> None:
    body = {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": "c", "namespace": "ns", "uid": "u"},
        "spec": {
            "nodes": [{"id": "add", "uses": "f"}],
            "functions": {"f": {"script": "x"}},
            "context": {"a": 10},
        },
        "status": {
            "phase": "Succeeded",
            "seq": 1,
            "nodes": {"add": {"phase": "Succeeded", "seq": 1, "outputRef": "cm-add", "writes": 1}},
        },
    }
    ref = builders.FlowRef("c", "ns", "u")
    cm = builders.output_configmap(ref, "add", 1, 30, ({"op": "set", "key": "k", "value": 1},))
    context = results.final_context(body, {"cm-add": cm})
    assert context == {"a": 10, "k": 1, "_outputs.add": 30, "add": 30}
    with pytest.raises(results.MissingResult, match="'cm-add'"):
        results.final_context(body, {})
    # An output ConfigMap under that name made for another Flow object is never read.
    stale = builders.output_configmap(builders.FlowRef("c", "ns", "old"), "add", 1, 99)
    with pytest.raises(results.MissingResult, match="not this Flow's"):
        results.final_context(body, {"cm-add": stale})
