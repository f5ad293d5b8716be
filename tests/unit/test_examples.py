"""The shipped examples: valid, cluster-ready (default runner image), and the reference flow."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowcraft.model import API_VERSION, DEFAULT_RUNNER_IMAGE, KIND, load_flow

pytestmark = pytest.mark.unit

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def test_the_four_documented_examples_exist() -> None:
    names = {path.stem for path in EXAMPLES}
    assert {"parallel", "conditional", "retry-fallback", "failing-branch"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_a_valid_cluster_ready_flow(path: Path) -> None:
    flow = load_flow(path)
    assert flow.api_version == API_VERSION
    assert flow.kind == KIND
    assert flow.metadata.name == path.stem
    # Only script/python functions: they run unchanged in the default runner image.
    assert flow.spec.runner_image == DEFAULT_RUNNER_IMAGE
    kinds = {name: fn.kind for name, fn in flow.spec.functions.items()}
    assert set(kinds.values()) <= {"script", "python"}, kinds


def test_parallel_is_the_reference_flow() -> None:
    flow = load_flow(EXAMPLES[0].parent / "parallel.yaml")
    spec = flow.spec
    assert [node.id for node in spec.nodes] == [
        "start-parallel",
        "task-1",
        "task-2",
        "task-3",
        "gather",
    ]
    assert {node.id: node.params.get("seconds") for node in spec.nodes[1:4]} == {
        "task-1": 2.0,
        "task-2": 1.0,
        "task-3": 1.5,
    }
    edges = {(edge.source, edge.target) for edge in spec.edges}
    tasks = ("task-1", "task-2", "task-3")
    assert edges == {("start-parallel", t) for t in tasks} | {(t, "gather") for t in tasks}
