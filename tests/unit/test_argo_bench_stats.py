"""The Argo comparison's statistics and DAG rendering (bench/argo_stats.py, bench/argo_flows.py).

The published table rests on these: which pod is which step, which predecessor ends a gap,
the critical path each ratio divides by, and that both systems get the same graph.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import argo_flows
import argo_stats
from argo_stats import PodTimes, Records

pytestmark = pytest.mark.unit


def _argo_pod(wf: str, task: str, phase: str | None = None, main_done: bool = False) -> dict:
    statuses = [
        {"name": "wait", "state": {"running": {}}},
        {"name": "main", "state": {"terminated": {}} if main_done else {"running": {}}},
    ]
    return {
        "metadata": {
            "labels": {"workflows.argoproj.io/workflow": wf},
            "annotations": {"workflows.argoproj.io/node-name": f"{wf}.{task}"},
        },
        "status": {"phase": phase or "Running", "containerStatuses": statuses},
    }


def _our_pod(flow: str, node: str, phase: str = "Running") -> dict:
    return {
        "metadata": {"annotations": {"flowcraft.io/flow-name": flow, "flowcraft.io/node-id": node}},
        "status": {"phase": phase, "containerStatuses": [{"name": "node", "state": {}}]},
    }


def test_pod_step_reads_both_systems_and_ignores_other_pods() -> None:
    assert argo_stats.pod_step(_argo_pod("seed-a10s-0", "task-1")) == ("seed-a10s-0", "task-1")
    assert argo_stats.pod_step(_our_pod("seed-ours-0", "gather")) == ("seed-ours-0", "gather")
    assert argo_stats.pod_step({"metadata": {"name": "coredns"}}) is None
    # A node name of another workflow is not this workflow's step.
    other = _argo_pod("a", "x")
    other["metadata"]["annotations"]["workflows.argoproj.io/node-name"] = "b.x"
    assert argo_stats.pod_step(other) is None


def test_records_keep_the_first_receipt_of_each_fact() -> None:
    rec = Records()
    rec.pod("ADDED", _argo_pod("w", "s0"), 10.0)
    rec.pod("MODIFIED", _argo_pod("w", "s0", main_done=True), 11.0)
    rec.pod("MODIFIED", _argo_pod("w", "s0", "Succeeded", main_done=True), 12.0)
    rec.pod("MODIFIED", _argo_pod("w", "s0", "Succeeded", main_done=True), 13.0)
    assert rec.pods[("w", "s0")] == PodTimes(added=10.0, main_terminated=11.0, terminated=12.0)
    # The wait container ending does not count as the step's container.
    rec.pod("ADDED", _argo_pod("w", "s1"), 20.0)
    assert rec.pods[("w", "s1")].main_terminated is None
    rec.flow("MODIFIED", {"metadata": {"name": "w"}, "status": {"phase": "Running"}}, 14.0)
    rec.flow("MODIFIED", {"metadata": {"name": "w"}, "status": {"phase": "Succeeded"}}, 15.0)
    rec.flow("MODIFIED", {"metadata": {"name": "w"}, "status": {"phase": "Succeeded"}}, 16.0)
    assert rec.phases == {"w": ("Succeeded", 15.0)}


def test_a_join_waits_for_its_last_predecessor() -> None:
    preds = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    pods = {
        "a": PodTimes(0.0, 0.9, 1.0),
        "b": PodTimes(1.5, 2.9, 3.0),
        "c": PodTimes(1.25, 3.9, 4.0),
        "d": PodTimes(4.75, 5.0, 5.0),
    }
    assert argo_stats.step_gaps(preds, pods) == pytest.approx([0.6, 0.35, 0.85])
    assert argo_stats.step_gaps(preds, pods, phase=True) == [0.5, 0.25, 0.75]
    del pods["c"]  # a step with a missing record is left out, never guessed
    assert argo_stats.step_gaps(preds, pods, phase=True) == [0.5]


def test_run_figures_and_aggregate_use_successful_runs_only() -> None:
    shape = argo_flows.chain(3)
    rec = Records()
    for i, (added, done) in enumerate(((1.0, 2.0), (2.5, 3.5), (4.5, 5.5))):
        rec.pods[("c-ours-0", f"s{i}")] = PodTimes(added, done, done)
    rec.phases["c-ours-0"] = ("Succeeded", 6.0)
    fig = argo_stats.run_figures(
        system="ours",
        shape="chain3",
        rep=0,
        created=0.0,
        name="c-ours-0",
        preds=shape.predecessors(),
        critical_s=shape.critical_path(),
        records=rec,
    )
    assert fig.wall_s == 6.0
    assert fig.ratio == pytest.approx(20.0)  # 6 s over 3 x 0.1 s
    assert fig.gaps_s == (0.5, 1.0)
    failed = argo_stats.RunFigures("ours", "chain3", 1, "Failed", 99.0, 330.0, (9.0,), (), 3)
    argo = argo_stats.RunFigures("argo", "chain3", 0, "Succeeded", 30.0, 100.0, (10.0,), (), 3)
    agg = argo_stats.aggregate([fig, failed, argo])
    assert agg["chain3"]["ours"]["runs"] == 1
    assert agg["chain3"]["ours"]["wall_s"] == 6.0
    assert agg["chain3"]["ours"]["gap_median_ms"] == 750.0
    table = argo_stats.table(agg, {"chain3": 0.3})
    row = next(line for line in table.splitlines() if "| argo |" in line)
    assert "| 13.3 |" in row  # gap 10,000 ms / 750 ms
    assert "| 5 |" in row  # wall 30 s / 6 s


def test_shapes_and_their_critical_paths() -> None:
    seed = argo_flows.seed()
    assert seed.critical_path() == pytest.approx(2.0)
    assert argo_flows.chain().critical_path() == pytest.approx(1.0)
    fan = argo_flows.fan()
    assert len(fan.steps) == 52
    assert fan.critical_path() == pytest.approx(0.3)
    assert fan.predecessors()["end"] == [f"m{i}" for i in range(50)]


@pytest.mark.parametrize("name", ["seed", "chain10", "fan50"])
def test_both_systems_get_the_same_graph(name: str) -> None:
    shape = argo_flows.SHAPES[name]()
    flow = argo_flows.flowcraft_flow(shape, "x")
    wf = argo_flows.argo_workflow(shape, "x", "img")
    ours_edges = {(e["source"], e["target"]) for e in flow["spec"]["edges"]}
    tasks = wf["spec"]["templates"][0]["dag"]["tasks"]
    argo_edges = {(d, t["name"]) for t in tasks for d in t.get("dependencies", [])}
    assert ours_edges == argo_edges == set(shape.edges)
    assert [n["id"] for n in flow["spec"]["nodes"]] == [t["name"] for t in tasks]
    seconds = {t["name"]: float(t["arguments"]["parameters"][0]["value"]) for t in tasks}
    assert seconds == dict(shape.steps)


def test_a_run_survives_the_result_file() -> None:
    run = argo_stats.RunFigures("ours", "seed", 2, "Succeeded", 5.0, 2.5, (0.0312,), (-1.1,), 5)
    back = argo_stats.RunFigures.from_dict(run.as_dict())
    assert back.gaps_s == pytest.approx(run.gaps_s)
    assert back.pod_gaps_s == pytest.approx(run.pod_gaps_s)
    assert (back.system, back.shape, back.rep, back.phase, back.pods) == (
        "ours",
        "seed",
        2,
        "Succeeded",
        5,
    )
