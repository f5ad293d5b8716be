"""flowcraft's documented workflows run with the local runner as flowcraft 2.10.1 ran them.

Each case (tests/compat/cases/<name>/, see tests/compat/README.md) holds the blueprint that
flowcraft's builder emitted, Python ports of its functions, the initial context and flowcraft's
own final status and context. Cases that need a built-in node type flowcraft ships (loops,
batches, subflows, waits, sleeps) are pending: listed by test_pending_cases, never skipped.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import write_functions
from compat_cases import Case, check, load_cases, runnable_cases

from flowcraft.drivers.local import LocalRunner

pytestmark = pytest.mark.unit

# Built-in node types the runner supports: cases using only these are no longer pending.
SUPPORTED = frozenset({"subflow"})

# What case.json says is pending, spelled out so a change in either place is a visible diff.
PENDING = {
    "demo-batch": "batch-scatter, batch-gather",
    "demo-hitl": "wait",
    "demo-intro": "batch-scatter, batch-gather, loop-controller, wait",
    "demo-loop": "loop-controller",
    "ex-built-in-batch": "batch-scatter, batch-gather",
    "ex-built-in-loop": "loop-controller",
    "ex-loops-multi-node-loop": "loop-controller",
    "ex-loops-retry-loop": "loop-controller",
    "ex-loops-simple-loop": "loop-controller",
    "guide-batches": "batch-scatter, batch-gather",
    "guide-core-concepts-approval": "wait",
    "guide-core-concepts-delayed": "sleep",
    "guide-getting-started": "sleep",
    "guide-hitl-approval": "wait",
    "guide-loops-conditional": "loop-controller",
    "guide-loops-counter": "loop-controller",
    "guide-pausing-expense-approval": "wait",
}

# Cases whose built-in node types run but whose result can still differ from flowcraft's.
DIFFERS = {
    "ex-built-in-subflow": (
        "differs at random: _inputs.processResults is the output of whichever of the two "
        "parallel subflow nodes completes last, and both are equally short; flowcraft "
        "runs them in one batch and applies the batch's results in node order, so "
        "enrichmentSubflow always wins there (engine completion order, not subflows)"
    ),
}

CASES = runnable_cases()


def test_pending_cases() -> None:
    found = {
        case.name: ", ".join(case.meta["builtins"])
        for case in load_cases()
        if case.pending and case.name not in DIFFERS
    }
    print("\npending compat cases (need built-in node types, next issue):")
    for name, builtins in sorted(found.items()):
        print(f"  {name}: {builtins}")
    assert found == PENDING
    for case in load_cases():
        if case.name in DIFFERS:
            assert case.pending == DIFFERS[case.name]
            continue
        supported = set(case.meta["builtins"]) <= SUPPORTED
        assert bool(case.pending) != supported, case.name
        if case.pending:
            assert case.pending == f"needs built-in node type {PENDING[case.name]} (next issue)"


def test_functions_yaml_matches_ports() -> None:
    assert write_functions.main(["--check"]) == 0, "run tests/compat/write_functions.py"


def test_every_case_has_its_files() -> None:
    for case in load_cases():
        for name in ("blueprint.json", "expected.json", "functions.yaml", "case.json"):
            assert (case.dir / name).is_file(), f"{case.name}/{name}"
        assert set(case.meta) <= {"source", "builtins", "pending", "notes", "timingDependent"}
        assert case.expected["evaluator"] in ("property", "unsafe"), case.name


async def _run_all(cases: list[Case], root: Path) -> dict[str, Any]:
    # One event loop runs every case at once: the cases are small and mostly wait on sleeps.
    limit = asyncio.Semaphore(8)

    async def one(case: Case) -> Any:
        async with limit:
            try:
                flow = case.flow()
            except Exception as exc:  # the loader rejecting the blueprint is a result too
                return exc
            try:
                runner = LocalRunner(flow, root / case.name, blueprints=case.blueprints())
                return await runner.run()
            except Exception as exc:
                return exc

    results = await asyncio.gather(*(one(case) for case in cases))
    return dict(zip((case.name for case in cases), results, strict=True))


@pytest.fixture(scope="module")
def local_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return asyncio.run(_run_all(CASES, tmp_path_factory.mktemp("compat")))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_runs_as_flowcraft_ran_it(case: Case, local_results: dict[str, Any]) -> None:
    result = local_results[case.name]
    if isinstance(result, BaseException):
        pytest.fail(f"{case.name}: {type(result).__name__}: {result}", pytrace=False)
    problems = check(case, result.status.phase, result.context)
    if problems:
        errors = "; ".join(result.status.errors or [])
        pytest.fail(f"{case.name}: " + " | ".join(problems) + f" [errors: {errors}]", pytrace=False)
