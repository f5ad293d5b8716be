"""The local driver: run a Flow on this machine with asyncio subprocesses (and docker).

Why it exists: a new user runs a flow in seconds with no cluster, and the same engine and node
runtime as the operator decide and execute it, so a flow that works here works on the cluster.
The driver only acts and reports: the engine decides what to start, retry, skip or cancel; each
node attempt is a ``python -m flowcraft.runtime`` process (``docker run`` for container
functions, with the pod's user, read-only root and dropped capabilities) given what a pod
would be given: one launch contract (``launch``) decides that for both drivers; the driver feeds
NodeStarted/NodeSucceeded/NodeFailed back the moment they happen (no polling) and wakes the
engine at its ``wake_at`` for retry backoff and deadlines. A ``subflow`` node runs as a nested
LocalRunner over the blueprint it names (``blueprints``; see ``local_subflow``).

A flow that stops at a wait node (phase Awaiting) ends ``run()``; ``run(resume_from=status)``
continues it later in the same run directory once ``spec.resume`` holds the node's data.

Layout of a run directory (kept for inspection; the CLI removes a temporary one on success)::

    <run>/outputs/<stem>.json            the output of each succeeded node (contract.file_stem)
    <run>/writes/<stem>.json             its context writes, when it wrote any
    <run>/context.json                   the initial context (spec.context)
    <run>/nodes/<node>/<attempt>/in/     function.json, params.json, input.json, view.json,
                                         outputs/, writes/ (what the node can see) and, when the
                                         flow has an initial context, context.json
                                         (``local_launch``: the launch contract, laid out here)
    <run>/nodes/<node>/<attempt>/out/result.json   what the runtime wrote ($FLOWCRAFT_OUT)
    <run>/nodes/<node>/<attempt>/log.txt           the attempt's stdout and stderr
    <run>/nodes/<scatter>/<iteration>.items/<item>.<attempt>/   a batch item's attempt (same
                                         layout; its result is outputs/<stem(item_key)>.json)
    <run>/state.json                     flow + status of a run stopped Awaiting (local_state)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowcraft.contract import (
    DEFAULT_OUT_LIMIT,
    INITIAL_CONTEXT_FILE,
    OUTPUTS_DIR,
    WRITES_DIR,
    ViewItem,
    Write,
    file_stem,
    item_key,
    parse_result,
    result_key,
)
from flowcraft.drivers.launch import (
    RUNTIME_COMMAND,
    Launch,
    LaunchError,
    input_source,
    node_launch,
)
from flowcraft.drivers.local_launch import (
    RESULT_FILE,
    attempt_dir,
    container_name,
    docker_argv,
    host_env,
    prepare,
    write_json_atomic,
)
from flowcraft.drivers.local_proc import Proc, check_docker, exit_message
from flowcraft.drivers.local_state import AttemptRecord, RunResult, load_results
from flowcraft.drivers.local_subflow import Subflows
from flowcraft.engine import (
    CancelFlow,
    CancelNode,
    Engine,
    NodeFailed,
    NodeStarted,
    NodeSucceeded,
    StartNode,
    Step,
)
from flowcraft.model import Flow, FlowStatus
from flowcraft.model.blueprint import Blueprint

__all__ = ["AttemptRecord", "LocalRunner", "RunResult", "utcnow"]

_TERMINAL = frozenset({"Succeeded", "Failed", "Cancelled"})

Event = NodeStarted | NodeSucceeded | NodeFailed | CancelFlow


def utcnow() -> datetime:
    return datetime.now(UTC)


class LocalRunner:
    """Drive one Flow to a terminal phase on this machine."""

    def __init__(
        self,
        flow: Flow,
        run_dir: Path,
        *,
        on_status: Callable[[FlowStatus], None] | None = None,
        python: str = sys.executable,
        docker: str = "docker",
        pythonpath: Sequence[str] = (),
        out_limit: int | None = DEFAULT_OUT_LIMIT,
        blueprints: Mapping[str, Blueprint] | None = None,
        chain: Sequence[str] = (),
    ) -> None:
        """``pythonpath`` is prepended for ``python:`` functions (the CLI passes the flow's
        directory); ``out_limit`` mirrors the cluster's result limit (None: unlimited).
        ``blueprints`` (by id) are what subflow nodes run; ``chain`` names a nested runner's
        enclosing flows (the flow, then each subflow's blueprint id), to bound the depth."""
        self.flow = flow
        self.run_dir = run_dir
        self._engine = Engine(flow.spec)
        self._on_status = on_status
        self._python = python
        self._docker = docker
        self._pythonpath = list(pythonpath)
        self._out_limit = out_limit
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._outputs: dict[str, Any] = {}
        self._writes: dict[str, tuple[Write, ...]] = {}
        self._published: set[str] = set()
        self._tasks: dict[AttemptKey, asyncio.Task[None]] = {}
        self._procs: dict[AttemptKey, Proc] = {}
        self._cancelled: set[AttemptKey] = set()
        self._records: list[AttemptRecord] = []
        self._docker_ready: asyncio.Task[str | None] | None = None
        self._subflows = Subflows(self, blueprints, tuple(chain) or (flow.metadata.name,))
        self._item_views: dict[tuple[str, int], list[ViewItem]] = {}

    def cancel(self, reason: str) -> None:
        """Ask the engine to cancel the flow (e.g. on Ctrl-C); safe to call from the loop."""
        self._events.put_nowait(CancelFlow(reason))

    def cancelled(self, key: AttemptKey) -> bool:
        return key in self._cancelled

    def is_subflow(self, node_id: str) -> bool:
        return self._engine.graph.builtin.get(node_id) == "subflow"

    def node_context(self, status: FlowStatus, node_id: str) -> dict[str, Any]:
        """The context node ``node_id`` sees (what a subflow's initial context is drawn from)."""
        return self._engine.node_context(status, node_id, self._outputs, self._writes)

    def child(self, flow: Flow, run_dir: Path, chain: Sequence[str]) -> LocalRunner:
        """A nested runner for a subflow attempt, with this runner's options."""
        return LocalRunner(
            flow,
            run_dir,
            python=self._python,
            docker=self._docker,
            pythonpath=self._pythonpath,
            out_limit=self._out_limit,
            blueprints=self._subflows.blueprints,
            chain=chain,
        )

    async def run(self, resume_from: FlowStatus | None = None) -> RunResult:
        """Run to a terminal phase, or until the flow is Awaiting a wait node's resume data.

        ``resume_from``: continue a run that stopped Awaiting in this same run directory, from
        its saved status (see ``local_state``), instead of starting afresh; the stored outputs
        and writes are read back from the directory."""
        (self.run_dir / OUTPUTS_DIR).mkdir(parents=True, exist_ok=True)
        (self.run_dir / WRITES_DIR).mkdir(parents=True, exist_ok=True)
        if resume_from is None:
            (self.run_dir / INITIAL_CONTEXT_FILE).write_text(
                json.dumps(self.flow.spec.context or {}, ensure_ascii=False)
            )
        else:
            keys = self._engine.result_keys(resume_from)
            self._outputs, self._writes = load_results(self.run_dir, keys)
        try:
            if resume_from is None:
                step = self._engine.start(utcnow())
            else:
                step = self._engine.advance(resume_from, [], utcnow(), self._outputs, self._writes)
            status = self._apply(step)
            while True:
                if status.phase in _TERMINAL:
                    break
                if status.phase == "Awaiting" and not self._tasks and self._events.empty():
                    break  # a wait node needs resume data: the run stops here, resumable
                events = await self._next_events(step.wake_at)
                step = self._engine.advance(status, events, utcnow(), self._outputs, self._writes)
                status = self._apply(step)
            # A terminal flow may leave attempts running (e.g. failFast): they no longer matter.
            for key, proc in list(self._procs.items()):
                self._cancelled.add(key)
                await proc.kill()
            await self._drain_tasks()
        finally:
            await self._shutdown()
        return RunResult(
            flow=self.flow,
            status=status,
            context=self._engine.context(status, self._outputs, self._writes),
            outputs=dict(self._outputs),
            run_dir=self.run_dir,
            attempts=sorted(self._records, key=lambda r: (r.started_at, r.node)),
        )

    async def _next_events(self, wake_at: datetime | None) -> list[Event]:
        """Block until something happens: an attempt event, a cancel, or the engine's wake_at."""
        if wake_at is None and not self._tasks and self._events.empty():
            raise RuntimeError(
                "the engine is waiting for nothing: no running nodes, no wake-up time "
                f"(flow {self.flow.metadata.name!r}); this is a bug in the engine"
            )
        timeout = None if wake_at is None else max(0.0, (wake_at - utcnow()).total_seconds())
        try:
            first = await asyncio.wait_for(self._events.get(), timeout)
        except TimeoutError:
            return []
        events = [first]
        while not self._events.empty():
            events.append(self._events.get_nowait())
        for event in events:
            if isinstance(event, NodeSucceeded):
                self._store(event)
        return events

    def _store(self, event: NodeSucceeded) -> None:
        """Keep a success's output and writes under its result key, in memory and as the
        files later attempts' views hard-link (written once, atomically)."""
        if event.item is not None:
            key = item_key(event.node, event.iteration, event.item)
        else:
            key = result_key(event.node, event.iteration)
        self._outputs[key] = event.output
        stem = file_stem(key)
        write_json_atomic(self.run_dir / OUTPUTS_DIR / f"{stem}.json", event.output)
        if event.writes:
            self._writes[key] = event.writes
            write_json_atomic(self.run_dir / WRITES_DIR / f"{stem}.json", list(event.writes))

    def _apply(self, step: Step) -> FlowStatus:
        for action in step.actions:
            key = _key(action)
            if isinstance(action, StartNode):
                if self._subflows.handles(action.node):
                    run = self._subflows.run(
                        action, key, step.status, attempt_dir(self.run_dir, action)
                    )
                    self._tasks[key] = asyncio.create_task(self._subflow_attempt(key, run))
                    continue
                visible = self._view(step.status, action)
                self._tasks[key] = asyncio.create_task(self._attempt(action, visible))
            elif isinstance(action, CancelNode):
                self._cancelled.add(key)
                proc = self._procs.get(key)
                if proc is not None:
                    proc.kill_soon()
                self._subflows.cancel(key, action.reason)
        if self._on_status is not None:
            self._on_status(step.status)
        return step.status

    def _view(self, status: FlowStatus, action: StartNode) -> list[ViewItem]:
        """What the attempt sees; a batch item sees its scatter's view, computed once per
        (scatter, iteration) while its items run."""
        if action.item is None:
            return self._engine.view(status, action.node, self._outputs, self._writes)
        cache_key = (action.node, action.iteration)
        view = self._item_views.get(cache_key)
        if view is None:
            view = self._engine.view(status, action.node, self._outputs, self._writes)
            self._item_views = {cache_key: view}
        return view

    async def _attempt(self, action: StartNode, visible: list[ViewItem]) -> None:
        key = _key(action)
        try:
            await self._run_attempt(action, visible)
        finally:
            self._tasks.pop(key, None)
            self._procs.pop(key, None)

    async def _subflow_attempt(self, key: AttemptKey, run: Awaitable[None]) -> None:
        try:
            await run
        finally:
            self._tasks.pop(key, None)

    def _launch(self, action: StartNode, visible: list[ViewItem]) -> Launch:
        """What the attempt gets: the launch contract every driver renders (see ``launch``);
        a batch item runs the scatter's worker function."""
        spec = self.flow.spec
        node = spec.node(action.node)
        uses = action.uses if action.item is not None and action.uses else None
        return node_launch(
            node,
            spec.functions[uses or node.uses],
            attempt=action.attempt,
            input_value=action.input,
            view=visible,
            initial_context=spec.context is not None,
            runner_image=spec.runner_image,
            timeout_seconds=action.timeout_seconds,
            out_limit=self._out_limit,
            iteration=action.iteration,
            item=action.item,
            uses=uses,
            input_key=input_source(action.input, visible, self._outputs),
        )

    async def _run_attempt(self, action: StartNode, visible: list[ViewItem]) -> None:
        workdir = attempt_dir(self.run_dir, action)
        key = _key(action)
        log_path = workdir / "log.txt"
        problem: str | None = None
        proc: Proc | None = None
        item = action.item
        out_file = workdir / "out" / RESULT_FILE
        try:
            launch = self._launch(action, visible)
            in_dir, out_file = prepare(launch, self.run_dir, workdir)
            if not launch.runs_runtime:
                docker_problem = await self._docker_problem()
                if docker_problem is not None:
                    problem = (
                        f"container function {launch.uses!r} needs a docker daemon: "
                        f"{docker_problem}"
                    )
                else:
                    name = container_name(self.flow.metadata.name, launch, os.getpid())
                    argv = docker_argv(launch, self._docker, name, in_dir, out_file)
                    proc = await Proc.spawn(argv, workdir, None, log_path, self._docker)
            else:
                env = host_env(launch, in_dir, out_file, os.environ, self._pythonpath)
                # The runtime command, run by this interpreter (the runner image's python3).
                argv = [self._python, *(launch.command or RUNTIME_COMMAND)[1:]]
                proc = await Proc.spawn(argv, workdir, env, log_path, None)
        except LaunchError as err:
            problem = str(err)
        except OSError as err:
            problem = f"cannot start node {action.node!r}: {err}"
        if proc is None:
            # Report it as an attempt that started and failed, so retries and fallback apply.
            now = utcnow()
            message = problem or "node process did not start"
            self.report(NodeStarted(action.node, action.attempt, now, action.iteration, item), key)
            self.finish(action, "failed", message, log=log_path, started=now, finished=now)
            self.report(
                NodeFailed(
                    action.node, action.attempt, now, message, iteration=action.iteration, item=item
                ),
                key,
            )
            return

        started = utcnow()
        self._procs[key] = proc
        if key in self._cancelled:  # cancelled while spawning
            await proc.kill()
        self.report(NodeStarted(action.node, action.attempt, started, action.iteration, item), key)

        timed_out = False
        try:
            code = await asyncio.wait_for(proc.wait(), action.timeout_seconds)
        except TimeoutError:
            timed_out = True
            await proc.kill()
            code = await proc.wait()
        finished = utcnow()

        if key in self._cancelled:
            self.finish(action, "cancelled", None, log=log_path, started=started, finished=finished)
            return
        if timed_out:
            message = f"timed out after {action.timeout_seconds:g} s (attempt killed)"
            self.finish(
                action, "timed-out", message, log=log_path, started=started, finished=finished
            )
            self.report(
                NodeFailed(
                    action.node,
                    action.attempt,
                    finished,
                    message,
                    timed_out=True,
                    iteration=action.iteration,
                    item=item,
                ),
                key,
            )
            return

        result = parse_result(out_file.read_text() if out_file.is_file() else "")
        if code == 0 and result.ok:
            self.finish(action, "succeeded", None, log=log_path, started=started, finished=finished)
            self.report(
                NodeSucceeded(
                    action.node,
                    action.attempt,
                    finished,
                    output=result.output,
                    action=result.action,
                    output_ref=str(out_file),
                    writes=result.writes,
                    iteration=action.iteration,
                    item=item,
                ),
                key,
            )
            return
        # A signal leaves the runtime's NoResult placeholder: say which signal instead.
        message = (result.error if code >= 0 else None) or exit_message(code, log_path)
        self.finish(action, "failed", message, log=log_path, started=started, finished=finished)
        self.report(
            NodeFailed(
                action.node,
                action.attempt,
                finished,
                message,
                iteration=action.iteration,
                item=item,
            ),
            key,
        )

    def report(self, event: Event, key: AttemptKey) -> None:
        """Feed an attempt's event to the engine, unless the attempt was cancelled."""
        if key not in self._cancelled:
            self._events.put_nowait(event)

    def finish(
        self,
        action: StartNode,
        outcome: str,
        message: str | None,
        *,
        log: Path,
        started: datetime,
        finished: datetime,
    ) -> None:
        self._records.append(
            AttemptRecord(
                action.node, action.attempt, started, finished, outcome, message, log, action.item
            )
        )

    async def _docker_problem(self) -> str | None:
        """None when a docker daemon answers, else why not (checked once per run)."""
        if self._docker_ready is None:
            self._docker_ready = asyncio.create_task(check_docker(self._docker))
        return await self._docker_ready

    async def _drain_tasks(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def _shutdown(self) -> None:
        """Never leave a node process behind, whatever ended the run."""
        self._subflows.shutdown()
        for key, proc in list(self._procs.items()):
            self._cancelled.add(key)
            await proc.kill()
        for task in list(self._tasks.values()):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)
        if self._docker_ready is not None and not self._docker_ready.done():
            self._docker_ready.cancel()


AttemptKey = tuple[str, int, int, int]


def _key(action: StartNode | CancelNode) -> AttemptKey:
    item = -1 if action.item is None else action.item
    return (action.node, action.iteration, action.attempt, item)
