"""Names must be valid, bounded, deterministic and collision-free: idempotency depends on them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowcraft.drivers.kubernetes import names

pytestmark = pytest.mark.unit

_text = st.text(min_size=1, max_size=120)


def test_readable_names_are_kept() -> None:
    assert names.job_name("parallel", "task-1", 1) == "parallel-task-1-1"
    assert names.output_configmap_name("parallel", "gather", 2) == "parallel-gather-2-out"
    assert names.label_value("task_1.A") == "task_1.A"


def test_unclean_node_ids_get_a_hash_and_do_not_collide() -> None:
    a = names.job_name("f", "Task_1", 1)
    b = names.job_name("f", "task-1", 1)
    assert a != b
    assert names.is_dns_label(a)
    assert a.startswith("f-task-1-1-")


def test_long_names_are_cut_to_63_with_a_hash() -> None:
    flow = "a" * 60
    n1 = names.job_name(flow, "node", 1)
    n2 = names.job_name(flow, "node", 2)
    assert len(n1) == 63
    assert n1 != n2
    assert names.is_dns_label(n1)


@given(flow=_text, node=_text, attempt=st.integers(min_value=1, max_value=10_000))
def test_job_names_are_always_valid_and_deterministic(flow: str, node: str, attempt: int) -> None:
    name = names.job_name(flow, node, attempt)
    assert names.is_dns_label(name)
    assert name == names.job_name(flow, node, attempt)
    assert names.is_dns_label(names.output_configmap_name(flow, node, attempt))


@given(a=_text, b=_text)
def test_distinct_inputs_give_distinct_names(a: str, b: str) -> None:
    if a != b:
        assert names.job_name("f", a, 1) != names.job_name("f", b, 1)
        assert names.label_value(a) != names.label_value(b)


@given(value=_text)
def test_label_values_are_always_valid(value: str) -> None:
    assert names.is_label_value(names.label_value(value))


def test_loop_iterations_never_collide_with_another_nodes_name() -> None:
    # "f-a-i1-1" is also what node "a-i1", attempt 1 reads as: iterations are always hashed.
    later = names.job_name("f", "a", 1, iteration=1)
    assert later != names.job_name("f", "a-i1", 1)
    assert later.startswith("f-a-i1-1-")
    assert names.is_dns_label(later)
    assert names.output_configmap_name("f", "a", 1, 1) != names.output_configmap_name(
        "f", "a-i1", 1
    )


@given(node=_text, attempt=st.integers(1, 50), iteration=st.integers(1, 500))
def test_iteration_names_are_valid_and_distinct_per_iteration(
    node: str, attempt: int, iteration: int
) -> None:
    name = names.job_name("flow", node, attempt, iteration)
    assert names.is_dns_label(name)
    assert name != names.job_name("flow", node, attempt, iteration + 1)
    assert name != names.job_name("flow", node, attempt)
