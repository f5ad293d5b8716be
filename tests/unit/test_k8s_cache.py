"""The watch cache groups Jobs and pods by Flow and remembers when an attempt finished."""

from __future__ import annotations

from typing import Any

import pytest

from flowcraft.drivers.kubernetes import builders
from flowcraft.drivers.kubernetes.cache import FlowKey, ObjectCache

pytestmark = pytest.mark.unit

KEY = FlowKey("ns", "flow")


def _job(name: str, conditions: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "annotations": {builders.ANN_FLOW: "flow"},
            "managedFields": [{"big": "x"}],
        },
        "status": {"conditions": conditions or []},
    }


def _pod(name: str, job: str, phase: str, created: str, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "ns",
        "creationTimestamp": created,
        "annotations": {builders.ANN_FLOW: "flow"},
        "labels": {"batch.kubernetes.io/job-name": job},
    }
    if deleting:
        meta["deletionTimestamp"] = created
    return {"metadata": meta, "status": {"phase": phase}}


def test_jobs_are_grouped_by_flow_and_slimmed() -> None:
    cache = ObjectCache()
    assert cache.put_job(_job("flow-a-1"), deleted=False, seen_at=1.0) == KEY
    job = cache.job(KEY, "flow-a-1")
    assert job is not None
    assert "managedFields" not in job["metadata"]
    assert cache.finished_seen(KEY, "flow-a-1") is None


def test_cached_objects_drop_what_the_reconcile_never_reads() -> None:
    cache = ObjectCache()
    job = _job("flow-a-1")
    job["metadata"]["annotations"].update(
        {builders.ANN_FUNCTION: "{...}", builders.ANN_PARAMS: "{}", builders.ANN_INPUT: "1"}
    )
    job["spec"] = {"suspend": True, "template": {"spec": {"containers": [{"name": "node"}]}}}
    cache.put_job(job, deleted=False, seen_at=1.0)
    kept = cache.job(KEY, "flow-a-1")
    assert kept is not None
    assert kept["spec"] == {"suspend": True}
    assert kept["metadata"]["annotations"] == {builders.ANN_FLOW: "flow"}
    assert kept["status"] == job["status"]
    assert builders.ANN_INPUT in job["metadata"]["annotations"]  # the event is not mutated
    pod = _pod("flow-a-1-x", "flow-a-1", "Running", "2024-01-01T00:00:00Z")
    pod["spec"] = {"nodeName": "n1", "containers": [{"name": "node", "env": []}]}
    cache.put_pod(pod, deleted=False, seen_at=1.0)
    cached_pod = cache.pod(KEY, "flow-a-1")
    assert cached_pod is not None
    assert cached_pod["spec"] == {"nodeName": "n1"}
    assert cached_pod["metadata"]["labels"] == pod["metadata"]["labels"]


def test_objects_without_the_flow_annotation_are_ignored() -> None:
    cache = ObjectCache()
    assert (
        cache.put_job({"metadata": {"name": "x", "namespace": "ns"}}, deleted=False, seen_at=0)
        is None
    )


def test_first_finish_time_is_kept() -> None:
    cache = ObjectCache()
    cache.put_pod(_pod("p1", "flow-a-1", "Succeeded", "t1"), deleted=False, seen_at=5.0)
    done = [{"type": "Complete", "status": "True"}]
    cache.put_job(_job("flow-a-1", done), deleted=False, seen_at=7.0)
    assert cache.finished_seen(KEY, "flow-a-1") == 5.0


def test_newest_live_pod_wins_and_deleting_pods_are_ignored() -> None:
    cache = ObjectCache()
    cache.put_pod(
        _pod("old", "j", "Failed", "2026-01-01T00:00:01Z", deleting=True), deleted=False, seen_at=1
    )
    assert cache.pod(KEY, "j") is None
    cache.put_pod(_pod("new", "j", "Running", "2026-01-01T00:00:05Z"), deleted=False, seen_at=2)
    pod = cache.pod(KEY, "j")
    assert pod is not None
    assert pod["metadata"]["name"] == "new"
    cache.put_pod(_pod("new", "j", "Running", "x"), deleted=True, seen_at=3)
    assert cache.pod(KEY, "j") is None


def test_deleting_a_job_drops_its_pods_and_forget_drops_the_flow() -> None:
    cache = ObjectCache()
    cache.put_job(_job("j"), deleted=False, seen_at=0)
    cache.put_pod(_pod("p", "j", "Running", "t"), deleted=False, seen_at=0)
    cache.put_job(_job("j"), deleted=True, seen_at=1)
    assert cache.job(KEY, "j") is None
    assert cache.pod(KEY, "j") is None
    cache.put_job(_job("k"), deleted=False, seen_at=0)
    cache.forget(KEY)
    assert cache.jobs(KEY) == []


def test_a_terminated_container_starts_the_clock_before_the_pod_phase_changes() -> None:
    cache = ObjectCache()
    pod = _pod("p1", "j", "Running", "t")
    pod["status"]["containerStatuses"] = [{"name": "node", "state": {"terminated": {}}}]
    cache.put_pod(pod, deleted=False, seen_at=3.0)
    assert cache.finished_seen(KEY, "j") == 3.0
