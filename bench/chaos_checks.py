"""The chaos run's pure parts: when to strike, and whether a Flow's outputs match a clean run.

Why separate from bench/chaos.py: these decide the figures the issue asks for (how many kills,
and "outputs differing from a clean run"), so they are unit-tested without a cluster.

When to strike: the moments are measured in *progress* (node Jobs created so far), not in
seconds. The machine's speed varies several-fold with its load, so a schedule in seconds either
ends before the Flows do (the last kills hit an idle operator) or leaves a long tail without
chaos; thresholds in Jobs land every kill while work is in flight, whatever the speed.

What "the same outputs" means: a Flow's final context (``drivers/kubernetes/results.py``, what
``flowcraft run`` reports) equals a clean run's context of the same manifest, key by key. One
difference is by design and is counted apart, not as a mismatch: a deleted pod of the guarded
node (one attempt, a fallback) fails that attempt and the fallback node runs, which adds the
fallback node's own keys (``<fallback>``, ``_outputs.<fallback>``); every other key, the guarded
node's own output included, must still match.

Attempts without a Job: the Flow statuses count every attempt each node started; the Job
ledger holds every Job the namespace ever had. An attempt the status counts but no Job was
seen for is one that failed without running: nothing in the run deletes Jobs, so it is an
attempt the operator recorded as running whose Job was never created (bench/README.md says
when that happens). It is why a run's Jobs can be fewer than nodes + fallbacks + retries.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MISSING = "<missing>"


def spread(count: int, start: float, end: float, rng: random.Random) -> list[float]:
    """``count`` moments in [start, end): one uniformly random point in each of ``count``
    equal slices, so they are random yet spread over the whole range (sorted, distinct
    slices; ``count`` 0 gives [])."""
    if count < 0 or end < start:
        raise ValueError(f"spread({count}, {start}, {end}): need count >= 0 and end >= start")
    width = (end - start) / count if count else 0.0
    return [start + width * (i + rng.random()) for i in range(count)]


def kill_thresholds(
    kills: int, expected_jobs: int, rng: random.Random, tail: float = 0.9
) -> list[int]:
    """The Job counts at which to kill: ``kills`` points spread over the first ``tail`` of the
    expected Jobs (so the last kill still leaves work to recover), as increasing integers >= 1."""
    points = spread(kills, 0.0, expected_jobs * tail, rng)
    out: list[int] = []
    for p in points:
        value = max(int(p) + 1, out[-1] + 1 if out else 1)
        out.append(value)
    return out


def attempts_without_job(
    started: Mapping[tuple[str, str], int], jobs: Iterable[tuple[str, str, str, str]]
) -> list[str]:
    """Attempts a status counts as started that no Job was seen for, as ``uid/node/attempt``.

    ``started``: (Flow UID, node) -> attempts started (``status.nodes[node].attempts``; these
    Flows have no loops, so every attempt is of iteration 0). ``jobs``: the ledger's keys,
    (Flow UID, node, attempt, iteration)."""
    seen = {(uid, node, attempt) for uid, node, attempt, iteration in jobs if iteration == "0"}
    return sorted(
        f"{uid}/{node}/{attempt}"
        for (uid, node), count in started.items()
        for attempt in range(1, count + 1)
        if (uid, node, str(attempt)) not in seen
    )


def context_diff(
    reference: Mapping[str, Any], actual: Mapping[str, Any], ignore: Sequence[str] = ()
) -> dict[str, tuple[Any, Any]]:
    """Keys whose value differs, as key -> (reference, actual); an absent key shows as
    ``MISSING``. Keys in ``ignore`` are left out on both sides."""
    skip = set(ignore)
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(reference) | set(actual)):
        if key in skip:
            continue
        ref, act = reference.get(key, MISSING), actual.get(key, MISSING)
        if ref != act:
            out[key] = (ref, act)
    return out


def fallback_keys(fallback: str) -> list[str]:
    """What a fallback node that ran adds to the context beyond a clean run."""
    return [fallback, f"_outputs.{fallback}"]


def compare_outputs(
    reference: Mapping[str, Any],
    contexts: Mapping[str, Mapping[str, Any] | str],
    fallback_ran: Mapping[str, bool],
    fallback: str,
) -> dict[str, Any]:
    """Every Flow's final context against the clean run's.

    ``contexts``: Flow name -> its context, or a string saying why it could not be read (a
    gone output ConfigMap, a Flow that never finished): such a Flow counts as differing.
    ``fallback_ran``: Flow name -> whether its fallback node ran (then its keys are ignored).
    Returns the counts and, per differing Flow, up to 5 differing keys."""
    differing: dict[str, Any] = {}
    for name in sorted(contexts):
        ctx = contexts[name]
        if isinstance(ctx, str):
            differing[name] = ctx
            continue
        ignore = fallback_keys(fallback) if fallback_ran.get(name) else []
        diff = context_diff(reference, ctx, ignore)
        if diff:
            differing[name] = {k: list(v) for k, v in list(diff.items())[:5]}
    return {
        "compared": len(contexts),
        "differing": len(differing),
        "fallback_ran": sum(1 for name in contexts if fallback_ran.get(name)),
        "differences": dict(list(differing.items())[:10]),
    }
