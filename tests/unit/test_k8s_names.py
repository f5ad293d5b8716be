"""Names must be valid, bounded, deterministic and collision-free: idempotency depends on them.

They are also tied to the Flow object's UID: a Flow re-created under the same name must not
compute the names of its predecessor's Jobs and outputs.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowcraft.drivers.kubernetes import names

pytestmark = pytest.mark.unit

_text = st.text(min_size=1, max_size=120)
# Pure functions, checked for what they return: no per-example wall-clock deadline, which a
# loaded machine (CPU starvation, not slow code) breaks at random.
_no_deadline = settings(deadline=None)
UID = "0b6f3c1e-7d3a-4a8e-9c55-2f1d7a9e4b10"
OTHER_UID = "5e2d9a40-1c7b-4f3e-8a61-93b0c4d2e7f8"
FRAG = names.uid_fragment(UID)


def test_readable_names_are_kept_with_a_uid_fragment() -> None:
    assert len(FRAG) == 8
    assert names.job_name("parallel", UID, "task-1", 1) == f"parallel-task-1-1-{FRAG}"
    assert names.output_configmap_name("parallel", UID, "gather", 2) == (
        f"parallel-gather-2-{FRAG}-out"
    )
    assert names.label_value("task_1.A") == "task_1.A"


def test_a_recreated_flow_gets_names_of_its_own() -> None:
    assert names.job_name("f", UID, "a", 1) != names.job_name("f", OTHER_UID, "a", 1)
    assert names.output_configmap_name("f", UID, "a", 1) != names.output_configmap_name(
        "f", OTHER_UID, "a", 1
    )


def test_the_initial_context_configmap_is_per_flow_object() -> None:
    assert names.context_configmap_name("f", UID) == f"f-context-{FRAG}"
    assert names.context_configmap_name("f", UID) != names.context_configmap_name("f", OTHER_UID)
    assert names.is_dns_label(names.context_configmap_name("x" * 200, UID))


def test_flow_and_node_boundaries_do_not_collide_across_flows() -> None:
    # Flow "a-b" node "c" and flow "a" node "b-c" read alike; their uids keep them apart.
    assert names.job_name("a-b", UID, "c", 1) != names.job_name("a", OTHER_UID, "b-c", 1)


def test_unclean_node_ids_get_a_hash_and_do_not_collide() -> None:
    a = names.job_name("f", UID, "Task_1", 1)
    b = names.job_name("f", UID, "task-1", 1)
    assert a != b
    assert names.is_dns_label(a)
    assert a.startswith(f"f-task-1-1-{FRAG}-")


def test_long_names_are_cut_to_63_with_a_hash() -> None:
    flow = "a" * 60
    n1 = names.job_name(flow, UID, "node", 1)
    n2 = names.job_name(flow, UID, "node", 2)
    n3 = names.job_name(flow, OTHER_UID, "node", 1)
    assert len(n1) == 63
    assert len({n1, n2, n3}) == 3
    assert names.is_dns_label(n1)


@_no_deadline
@given(
    flow=_text,
    uid=st.uuids().map(str),
    node=_text,
    attempt=st.integers(min_value=1, max_value=10_000),
)
def test_job_names_are_always_valid_and_deterministic(
    flow: str, uid: str, node: str, attempt: int
) -> None:
    name = names.job_name(flow, uid, node, attempt)
    assert names.is_dns_label(name)
    assert name == names.job_name(flow, uid, node, attempt)
    assert names.is_dns_label(names.output_configmap_name(flow, uid, node, attempt))


@_no_deadline
@given(a=_text, b=_text)
def test_distinct_inputs_give_distinct_names(a: str, b: str) -> None:
    if a != b:
        assert names.job_name("f", UID, a, 1) != names.job_name("f", UID, b, 1)
        assert names.label_value(a) != names.label_value(b)


@_no_deadline
@given(a=st.uuids().map(str), b=st.uuids().map(str))
def test_distinct_uids_give_distinct_names(a: str, b: str) -> None:
    if a != b:
        assert names.job_name("f", a, "n", 1) != names.job_name("f", b, "n", 1)


@_no_deadline
@given(value=_text)
def test_label_values_are_always_valid(value: str) -> None:
    assert names.is_label_value(names.label_value(value))


def test_loop_iterations_never_collide_with_another_nodes_name() -> None:
    # "f-a-i1-1-<uid>" is also what node "a-i1", attempt 1 reads as: iterations are always
    # hashed.
    later = names.job_name("f", UID, "a", 1, iteration=1)
    assert later != names.job_name("f", UID, "a-i1", 1)
    assert later.startswith(f"f-a-i1-1-{FRAG}-")
    assert names.is_dns_label(later)
    assert names.output_configmap_name("f", UID, "a", 1, 1) != names.output_configmap_name(
        "f", UID, "a-i1", 1
    )


@_no_deadline
@given(node=_text, attempt=st.integers(1, 50), iteration=st.integers(1, 500))
def test_iteration_names_are_valid_and_distinct_per_iteration(
    node: str, attempt: int, iteration: int
) -> None:
    name = names.job_name("flow", UID, node, attempt, iteration)
    assert names.is_dns_label(name)
    assert name != names.job_name("flow", UID, node, attempt, iteration + 1)
    assert name != names.job_name("flow", UID, node, attempt)
    assert name != names.job_name("flow", OTHER_UID, node, attempt, iteration)
