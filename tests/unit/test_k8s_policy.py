"""The operator's policy for shared clusters: image allowlist, node resources, parallelism."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from flowcraft.drivers.kubernetes.policy import (
    Policy,
    PolicyError,
    apply,
    check,
    parse_images,
    parse_quantity,
    parse_resources,
)
from flowcraft.model import FlowSpec, parse_flow

pytestmark = pytest.mark.unit


def spec(functions: dict[str, Any], nodes: list[dict[str, Any]], **extra: Any) -> FlowSpec:
    return parse_flow(
        {
            "apiVersion": "flowcraft.io/v1alpha1",
            "kind": "Flow",
            "metadata": {"name": "p"},
            "spec": {"nodes": nodes, "functions": functions, **extra},
        }
    ).spec


SCRIPT = {"script": "def run(ctx): return 1"}


def test_the_default_policy_allows_everything_and_changes_nothing() -> None:
    flow = spec({"c": {"image": "evil:latest"}}, [{"id": "a", "uses": "c"}])
    assert check(flow, Policy()) == []
    assert apply(flow, Policy()) is flow


def test_an_image_outside_the_allowlist_is_named_with_its_node() -> None:
    policy = Policy(allowed_images=("registry.example.com/*", "python:3.*"))
    flow = spec(
        {
            "ok": {"image": "registry.example.com/team/tool:1"},
            "py": {"image": "python:3.12"},
            "bad": {"image": "docker.io/evil:latest"},
            "s": SCRIPT,
        },
        [
            {"id": "a", "uses": "ok"},
            {"id": "b", "uses": "py"},
            {"id": "c", "uses": "bad"},
            {"id": "d", "uses": "s"},
        ],
    )
    assert check(flow, policy) == [
        "node 'c' (function 'bad') uses image 'docker.io/evil:latest', which the operator's "
        "image allowlist does not allow (registry.example.com/*, python:3.*)"
    ]


def test_spec_image_is_checked_but_the_operators_runner_image_is_always_allowed() -> None:
    policy = Policy(allowed_images=("registry.example.com/*",))
    assert check(spec({"s": SCRIPT}, [{"id": "a", "uses": "s"}]), policy) == []
    flow = spec({"s": SCRIPT}, [{"id": "a", "uses": "s"}], image="my-runner:dev")
    [problem] = check(flow, policy)
    assert "'my-runner:dev'" in problem


def test_a_batch_worker_image_is_checked_under_the_scatter() -> None:
    policy = Policy(allowed_images=("ok:*",))
    scatter = {"workerUsesKey": "w", "outputKey": "out", "gatherNodeId": "g"}
    flow = spec(
        {"w": {"image": "bad:1"}},
        [
            {"id": "fan", "uses": "batch-scatter", "params": scatter},
            {
                "id": "g",
                "uses": "batch-gather",
                "params": {"outputKey": "out", "gatherNodeId": "g"},
            },
        ],
        edges=[{"source": "fan", "target": "g"}],
    )
    [problem] = check(flow, policy)
    assert problem.startswith("node 'fan' (function 'w') uses image 'bad:1'")


def test_resources_above_the_maximum_are_named() -> None:
    policy = Policy(max_resources={"cpu": "2", "memory": "4Gi"})
    flow = spec(
        {
            "big": {
                "image": "x",
                "resources": {
                    "requests": {"cpu": "2500m"},
                    "limits": {"memory": "8Gi", "cpu": "2"},
                },
            }
        },
        [{"id": "a", "uses": "big"}],
    )
    assert check(flow, policy) == [
        "node 'a' (function 'big') requests cpu=2500m, more than the operator's maximum cpu=2",
        "node 'a' (function 'big') limits memory=8Gi, more than the operator's maximum memory=4Gi",
    ]


def test_defaults_fill_missing_resources_and_never_make_a_pod_invalid() -> None:
    policy = Policy(
        default_requests={"cpu": "100m", "memory": "128Mi"},
        default_limits={"memory": "512Mi"},
        max_resources={"memory": "4Gi"},
    )
    flow = spec(
        {
            "none": SCRIPT,
            "own": {**SCRIPT, "resources": {"requests": {"memory": "1Gi"}}},
            "low": {**SCRIPT, "resources": {"limits": {"cpu": "50m"}}},
        },
        [{"id": n, "uses": n} for n in ("none", "own", "low")],
    )
    applied = apply(flow, policy)
    res = {name: fn.resources for name, fn in applied.functions.items()}
    assert res["none"] is not None
    assert res["none"].requests == {"cpu": "100m", "memory": "128Mi"}
    assert res["none"].limits == {"memory": "512Mi"}
    assert res["own"] is not None
    assert res["own"].requests == {"cpu": "100m", "memory": "1Gi"}
    assert res["own"].limits == {"memory": "1Gi"}  # not the 512Mi default below its request
    assert res["low"] is not None
    assert res["low"].requests == {"cpu": "50m", "memory": "128Mi"}  # request <= own limit
    assert res["low"].limits == {"cpu": "50m", "memory": "512Mi"}


def test_parallelism_is_capped() -> None:
    policy = Policy(max_parallelism=4)
    nodes = [{"id": "a", "uses": "s"}]
    assert apply(spec({"s": SCRIPT}, nodes), policy).parallelism == 4
    assert apply(spec({"s": SCRIPT}, nodes, parallelism=10), policy).parallelism == 4
    assert apply(spec({"s": SCRIPT}, nodes, parallelism=2), policy).parallelism == 2


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", "0.5"),
        ("2", "2"),
        ("1Ki", "1024"),
        ("1.5Gi", str(1.5 * 1024**3)),
        ("1e3", "1000"),
        ("128M", "128000000"),
        ("100n", "0.0000001"),
    ],
)
def test_quantities(text: str, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)


def test_flag_syntax_and_bad_values() -> None:
    assert parse_resources("cpu=2, memory=4Gi") == {"cpu": "2", "memory": "4Gi"}
    assert parse_images("a/*, b:1,") == ("a/*", "b:1")
    with pytest.raises(PolicyError, match="RESOURCE=QUANTITY"):
        parse_resources("cpu")
    with pytest.raises(PolicyError, match="invalid quantity"):
        parse_resources("cpu=lots")
    with pytest.raises(PolicyError, match="above the maximum"):
        Policy(default_limits={"memory": "8Gi"}, max_resources={"memory": "4Gi"})
    flow = spec(
        {"c": {"image": "x", "resources": {"limits": {"cpu": "many"}}}}, [{"id": "a", "uses": "c"}]
    )
    [problem] = check(flow, Policy(max_resources={"cpu": "1"}))
    assert "invalid quantity 'many'" in problem


def test_the_operator_refuses_a_flow_that_breaks_the_policy_and_applies_it_otherwise() -> None:
    from flowcraft.drivers.kubernetes import status as flow_status  # noqa: PLC0415

    def body(image: str) -> dict[str, Any]:
        return {
            "apiVersion": "flowcraft.io/v1alpha1",
            "kind": "Flow",
            "metadata": {"name": "p", "namespace": "team-a"},
            "spec": {"nodes": [{"id": "a", "uses": "c"}], "functions": {"c": {"image": image}}},
        }

    policy = Policy(allowed_images=("ok/*",), default_requests={"cpu": "10m"})
    flow, problem = flow_status.parse_flow(body("evil:1"), policy)
    assert flow is None
    assert problem == (
        "refused by the operator's policy: node 'a' (function 'c') uses image 'evil:1', which "
        "the operator's image allowlist does not allow (ok/*)"
    )
    flow, problem = flow_status.parse_flow(body("ok/tool:1"), policy)
    assert problem == ""
    assert flow is not None
    resources = flow.spec.functions["c"].resources
    assert resources is not None
    assert resources.requests == {"cpu": "10m"}
    unrestricted, _ = flow_status.parse_flow(body("evil:1"))
    assert unrestricted is not None
    assert unrestricted.spec.functions["c"].resources is None
