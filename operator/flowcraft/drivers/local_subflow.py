"""The local runner's `subflow` nodes: a nested LocalRunner instead of a node process.

Why a module beside ``local``: a subflow attempt is not a process but a whole flow (the
blueprint its ``params.blueprintId`` names, from the registry ``flowcraft run --blueprints``
loads), run in-process on the same event loop with the parent's functions, interpreter and
result limit, as flowcraft runs a sub-blueprint with its parent's registry. What crosses the
boundary (the child's initial context, the parent's output and context writes, the failure
message) is ``flowcraft.engine.subflow``'s; this module only wires a child run to the parent's
events: NodeStarted, then NodeSucceeded or NodeFailed like any attempt, so retries, timeouts,
fallbacks and cancellation apply unchanged.

The child's run directory is ``<run>/nodes/<node>/<attempt>/subflow/`` (a run directory of its
own, kept for inspection); the attempt's ``log.txt`` says how the child ended. A timeout or a
cancel of the attempt cancels the child run (its node processes are killed). Nesting is
bounded by ``subflow.MAX_DEPTH``; the failure names the chain of blueprint ids.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from flowcraft.drivers.local_state import RunResult
from flowcraft.engine import NodeFailed, NodeStarted, NodeSucceeded, StartNode, subflow
from flowcraft.engine.types import EngineError
from flowcraft.model import Flow, FlowStatus, NodeSpec, ObjectMeta, check_spec
from flowcraft.model.blueprint import Blueprint, child_spec


class Child(Protocol):
    """A nested run, as a subflow attempt drives it."""

    @property
    def flow(self) -> Flow: ...

    @property
    def run_dir(self) -> Path: ...

    def cancel(self, reason: str) -> None: ...

    async def run(self) -> RunResult: ...


class Parent(Protocol):
    """What a subflow attempt needs of the runner it belongs to (``local.LocalRunner``);
    a protocol, so this module does not import the runner that imports it."""

    @property
    def flow(self) -> Flow: ...

    def report(self, event: NodeStarted | NodeSucceeded | NodeFailed, key: Any) -> None: ...

    def finish(
        self,
        action: StartNode,
        outcome: str,
        message: str | None,
        *,
        log: Path,
        started: datetime,
        finished: datetime,
    ) -> None: ...

    def cancelled(self, key: Any) -> bool: ...

    def is_subflow(self, node_id: str) -> bool: ...

    def node_context(self, status: FlowStatus, node_id: str) -> dict[str, Any]: ...

    def child(self, flow: Flow, run_dir: Path, chain: tuple[str, ...]) -> Child: ...


class Subflows:
    """The subflow attempts of one LocalRunner (its nested runners, by attempt key)."""

    def __init__(
        self,
        runner: Parent,
        blueprints: Mapping[str, Blueprint] | None,
        chain: tuple[str, ...],
    ) -> None:
        self.runner = runner
        self.blueprints = blueprints
        self.chain = chain
        self.children: dict[Any, Child] = {}

    def handles(self, node_id: str) -> bool:
        return self.runner.is_subflow(node_id)

    def cancel(self, key: Any, reason: str) -> None:
        child = self.children.get(key)
        if child is not None:
            child.cancel(reason)

    def shutdown(self) -> None:
        for child in list(self.children.values()):
            child.cancel("the parent flow ended")

    async def run(self, action: StartNode, key: Any, status: FlowStatus, attempt_dir: Path) -> None:
        """Run one subflow attempt to its end and report it to the parent runner."""
        runner = self.runner
        node = runner.flow.spec.node(action.node)
        attempt_dir.mkdir(parents=True, exist_ok=True)
        log_path = attempt_dir / "log.txt"
        started = _now()
        runner.report(NodeStarted(action.node, action.attempt, started, action.iteration), key)
        try:
            params = subflow.SubflowParams.of(node)
            child = self._child(action, node, params, status, attempt_dir / "subflow")
        except (subflow.SubflowError, EngineError) as exc:
            self._fail(action, key, str(exc), log_path, started)
            return
        self.children[key] = child
        if runner.cancelled(key):
            child.cancel("the parent flow cancelled this node")
        task = asyncio.create_task(child.run())
        timed_out = False
        try:
            done, _ = await asyncio.wait({task}, timeout=action.timeout_seconds)
            if not done:
                timed_out = True
                child.cancel(f"the subflow node timed out after {action.timeout_seconds:g} s")
                await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise
        finally:
            self.children.pop(key, None)
        error = task.exception()
        outcome: RunResult | None = None if error is not None else task.result()
        summary = (
            f"subflow {params.blueprint_id!r} ended {outcome.status.phase}; its run: "
            f"{child.run_dir}\n" + "".join(f"error: {e}\n" for e in outcome.status.errors)
            if outcome is not None
            else f"subflow {params.blueprint_id!r} could not run: {error}\n"
        )
        log_path.write_text(summary)
        if runner.cancelled(key):
            runner.finish(action, "cancelled", None, log=log_path, started=started, finished=_now())
            return
        if timed_out:
            message = f"timed out after {action.timeout_seconds:g} s (the subflow was cancelled)"
            self._fail(action, key, message, log_path, started, timed_out=True)
            return
        if outcome is None:
            self._fail(action, key, summary.strip(), log_path, started)
            return
        if outcome.status.phase != "Succeeded":
            message = subflow.failure_message(params.blueprint_id, outcome.status)
            self._fail(action, key, message, log_path, started)
            return
        mapped = subflow.result(params, child.flow.spec, outcome.context)
        finished = _now()
        runner.finish(action, "succeeded", None, log=log_path, started=started, finished=finished)
        runner.report(
            NodeSucceeded(
                action.node,
                action.attempt,
                finished,
                output=mapped.output,
                output_ref=str(child.run_dir),
                writes=mapped.writes,
                iteration=action.iteration,
            ),
            key,
        )

    def _fail(
        self,
        action: StartNode,
        key: Any,
        message: str,
        log_path: Path,
        started: datetime,
        *,
        timed_out: bool = False,
    ) -> None:
        if not log_path.exists():
            log_path.write_text(message + "\n")
        finished = _now()
        verdict = "timed-out" if timed_out else "failed"
        self.runner.finish(
            action, verdict, message, log=log_path, started=started, finished=finished
        )
        self.runner.report(
            NodeFailed(
                action.node,
                action.attempt,
                finished,
                message,
                timed_out=timed_out,
                iteration=action.iteration,
            ),
            key,
        )

    def _child(
        self,
        action: StartNode,
        node: NodeSpec,
        params: subflow.SubflowParams,
        status: FlowStatus,
        run_dir: Path,
    ) -> Child:
        """The nested runner of a subflow attempt; SubflowError says why there is none."""
        runner = self.runner
        bid = params.blueprint_id
        if self.blueprints is None:
            raise subflow.SubflowError(
                f"subflow node {node.id!r} runs blueprint {bid!r}, but no blueprints were "
                "given (flowcraft run --blueprints FILE_OR_DIR)"
            )
        blueprint = self.blueprints.get(bid)
        if blueprint is None:
            known = ", ".join(sorted(self.blueprints)) or "none"
            raise subflow.SubflowError(
                f"subflow node {node.id!r} runs blueprint {bid!r}, which is not among the "
                f"blueprints given (known: {known})"
            )
        chain = (*self.chain, bid)
        too_deep = subflow.depth_problem(chain)
        if too_deep is not None:
            raise subflow.SubflowError(too_deep)
        seen = runner.node_context(status, node.id)
        parent = subflow.parent_context(seen, node.id, action.input)
        context = subflow.initial_context(params, parent, action.input, blueprint.spec)
        spec = child_spec(runner.flow.spec, blueprint.spec, context)
        problems = check_spec(spec, prefix=f"blueprint {bid}")
        if problems:
            raise subflow.SubflowError(
                f"blueprint {bid!r} cannot run: " + "; ".join(str(p) for p in problems)
            )
        return runner.child(Flow(metadata=ObjectMeta(name=bid), spec=spec), run_dir, chain)


def _now() -> datetime:
    return datetime.now(UTC)
