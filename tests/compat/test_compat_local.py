"""flowcraft's documented workflows run with the local runner as flowcraft 2.10.1 ran them.

Each case (tests/compat/cases/<name>/, see tests/compat/README.md) holds the blueprint that
flowcraft's builder emitted, Python ports of its functions, the initial context and flowcraft's
own final status and context. A sleep wakes up by itself here, so a case flowcraft left
sleeping is compared with flowcraft's result after its scheduler resumed it; a wait case is
compared where it stops and, with the resume data in case.json, once more after a resume as
`flowcraft resume` does it (the same run continued with spec.resume set). Cases that cannot run
yet, or differ on purpose, are pending: listed by test_pending_cases, never skipped.
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

# Built-in node types that run here (webhook does not).
SUPPORTED = frozenset(
    {"subflow", "loop-controller", "wait", "sleep", "batch-scatter", "batch-gather"}
)

# Every pending case and why, spelled out so a change in either place is a visible diff:
# missing node types, or a difference from flowcraft kept on purpose (README's table).
PENDING = {
    "ex-loops-multi-node-loop": "difference: JavaScript object aliasing — the example returns "
    "an array and later shifts the same array object through the context, so flowcraft's "
    "`_outputs.prepare` shows the emptied array; values here are JSON copies, so it keeps the "
    "three items",
    "guide-loops-conditional": "difference: the example's conditions read keys of a node's raw "
    "return value (`result.shouldContinue`) that are not `output`/`action`; a node result here "
    "carries only output and action",
}

CASES = runnable_cases()


def test_pending_cases() -> None:
    found = {case.name: case.pending for case in load_cases() if case.pending}
    print("\npending compat cases:")
    for name, reason in sorted(found.items()):
        print(f"  {name}: {reason}")
    assert found == PENDING
    for case in load_cases():
        if not set(case.meta["builtins"]) <= SUPPORTED:
            assert case.pending, f"{case.name} uses a node type that does not run yet"


def test_functions_yaml_matches_ports() -> None:
    assert write_functions.main(["--check"]) == 0, "run tests/compat/write_functions.py"


def test_every_case_has_its_files() -> None:
    for case in load_cases():
        for name in ("blueprint.json", "expected.json", "functions.yaml", "case.json"):
            assert (case.dir / name).is_file(), f"{case.name}/{name}"
        assert set(case.meta) <= {
            "source",
            "builtins",
            "pending",
            "resume",
            "notes",
            "timingDependent",
        }
        assert case.expected["evaluator"] in ("property", "unsafe"), case.name
        if case.resume is not None or case.sleeps_only:
            assert "resumed" in case.expected, f"{case.name}: regenerate (make compat-generate)"


def test_every_wait_case_says_how_it_is_resumed() -> None:
    for case in load_cases():
        if "wait" in case.meta["builtins"] and not case.pending:
            assert case.resume, f"{case.name}: give it resume data in generator/cases.mjs"


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
                first = await runner.run()
                if case.resume is None or first.status.phase != "Awaiting":
                    return first, None
                # As `flowcraft resume` does: the same run, continued with spec.resume set.
                spec = flow.spec.model_copy(update={"resume": case.resume})
                again = LocalRunner(
                    flow.model_copy(update={"spec": spec}),
                    root / case.name,
                    blueprints=case.blueprints(),
                )
                return first, await again.run(first.status)
            except Exception as exc:
                return exc

    results = await asyncio.gather(*(one(case) for case in cases))
    return dict(zip((case.name for case in cases), results, strict=True))


@pytest.fixture(scope="module")
def local_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return asyncio.run(_run_all(CASES, tmp_path_factory.mktemp("compat")))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_runs_as_flowcraft_ran_it(case: Case, local_results: dict[str, Any]) -> None:
    outcome = local_results[case.name]
    if isinstance(outcome, BaseException):
        pytest.fail(f"{case.name}: {type(outcome).__name__}: {outcome}", pytrace=False)
    result, resumed = outcome
    problems = check(case, result.status.phase, result.context)
    if case.resume is not None:
        if resumed is None:
            problems.append("the wait was not resumed (the run did not stop Awaiting)")
        else:
            after = check(case, resumed.status.phase, resumed.context, case.expected["resumed"])
            problems.extend(f"after resume: {p}" for p in after)
            result = resumed
    if problems:
        errors = "; ".join(result.status.errors or [])
        pytest.fail(f"{case.name}: " + " | ".join(problems) + f" [errors: {errors}]", pytrace=False)
