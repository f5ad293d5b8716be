"""The chaos run's kill schedule and its clean-run comparison (bench/chaos_checks.py).

The issue's figures rest on these: exactly N kills spread over the run, and "outputs differing
from a clean run" counting every missing, extra or changed context key except the fallback
node's own keys when a deleted pod made the fallback run.
"""

from __future__ import annotations

import itertools
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from chaos_checks import (
    MISSING,
    attempts_without_job,
    compare_outputs,
    context_diff,
    kill_thresholds,
    spread,
)

pytestmark = pytest.mark.unit


def test_spread_one_point_per_slice() -> None:
    rng = random.Random(7)
    points = spread(20, 100.0, 300.0, rng)
    assert len(points) == 20
    for i, p in enumerate(points):
        assert 100.0 + 10.0 * i <= p < 100.0 + 10.0 * (i + 1)
    assert points == sorted(points)


def test_spread_is_random_but_seeded() -> None:
    assert spread(5, 0, 1, random.Random(1)) == spread(5, 0, 1, random.Random(1))
    assert spread(5, 0, 1, random.Random(1)) != spread(5, 0, 1, random.Random(2))


def test_spread_edges() -> None:
    assert spread(0, 0, 10, random.Random(1)) == []
    with pytest.raises(ValueError, match="count >= 0"):
        spread(-1, 0, 10, random.Random(1))
    with pytest.raises(ValueError, match="end >= start"):
        spread(3, 10, 0, random.Random(1))


@pytest.mark.parametrize("seed", range(20))
def test_kill_thresholds_exact_count_inside_the_work(seed: int) -> None:
    marks = kill_thresholds(20, 2000, random.Random(seed))
    assert len(marks) == 20
    assert all(b > a for a, b in itertools.pairwise(marks))
    assert marks[0] >= 1
    assert marks[-1] <= 1800  # the last kill leaves 10 % of the Jobs to recover


def test_kill_thresholds_more_kills_than_jobs_stay_distinct() -> None:
    marks = kill_thresholds(10, 3, random.Random(1))
    assert marks == list(range(marks[0], marks[0] + 10))


def test_context_diff_missing_extra_changed() -> None:
    ref = {"a": None, "b": 1, "c": [1]}
    act = {"a": None, "b": 2, "d": 0}
    assert context_diff(ref, act) == {"b": (1, 2), "c": ([1], MISSING), "d": (MISSING, 0)}
    assert context_diff(ref, dict(ref)) == {}
    assert context_diff(ref, {"a": None, "b": 1}, ignore=["c"]) == {}


def test_null_and_missing_are_different() -> None:
    assert context_diff({"x": None}, {}) == {"x": (None, MISSING)}


def test_compare_outputs_counts() -> None:
    ref = {"_outputs.n": None, "n": None}
    contexts = {
        "same": dict(ref),
        "fell-back": {**ref, "rescue": None, "_outputs.rescue": None},
        "extra-without-fallback": {**ref, "rescue": None},
        "changed": {"_outputs.n": 1, "n": None},
        "unread": "MissingResult: output ConfigMap 'x' of 'n' is gone",
    }
    fallback_ran = {"fell-back": True}
    out = compare_outputs(ref, contexts, fallback_ran, "rescue")
    assert out["compared"] == 5
    assert out["fallback_ran"] == 1
    assert out["differing"] == 3
    assert set(out["differences"]) == {"extra-without-fallback", "changed", "unread"}
    assert out["differences"]["changed"] == {"_outputs.n": [None, 1]}
    assert out["differences"]["unread"].startswith("MissingResult")


def test_fallback_does_not_excuse_the_guarded_node() -> None:
    ref = {"_outputs.g": None, "g": None}
    ran = {"_outputs.g": "other", "g": None, "rescue": None, "_outputs.rescue": None}
    out = compare_outputs(ref, {"f": ran}, {"f": True}, "rescue")
    assert out["differing"] == 1


def test_attempts_without_job_lists_started_attempts_no_job_was_seen_for() -> None:
    started = {("u1", "a"): 2, ("u1", "b"): 1, ("u2", "a"): 0, ("u2", "b"): 1}
    jobs = [
        ("u1", "a", "2", "0"),  # attempt 1 of u1/a never had a Job
        ("u1", "b", "1", "0"),
        ("u2", "b", "1", "1"),  # a later iteration's Job does not stand for iteration 0
    ]
    assert attempts_without_job(started, jobs) == ["u1/a/1", "u2/b/1"]


def test_attempts_without_job_none_when_every_attempt_had_a_job() -> None:
    jobs = [("u", "a", "1", "0"), ("u", "a", "2", "0"), ("u", "extra", "1", "0")]
    assert attempts_without_job({("u", "a"): 2}, jobs) == []
