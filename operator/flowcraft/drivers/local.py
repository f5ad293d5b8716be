"""The local driver: run a Flow on this machine with asyncio subprocesses (and docker).

Why it exists: a new user runs a flow in seconds with no cluster, and the same engine and node
runtime as the operator decide and execute it, so a flow that works here works on the cluster.
The driver only acts and reports: the engine decides what to start, retry, skip or cancel; each
node attempt is a ``python -m flowcraft.runtime`` process (``docker run`` for container
functions) prepared exactly as a pod would be (see ``flowcraft.runtime``); the driver feeds
NodeStarted/NodeSucceeded/NodeFailed back the moment they happen (no polling) and wakes the
engine at its ``wake_at`` for retry backoff and deadlines. A ``subflow`` node runs as a nested
LocalRunner over the blueprint it names (``blueprints``; see ``local_subflow``).

A flow that stops at a wait node (phase Awaiting) ends ``run()``; ``run(resume_from=status)``
continues it later in the same run directory once ``spec.resume`` holds the node's data.

Layout of a run directory (kept for inspection; the CLI removes a temporary one on success)::

    <run>/outputs/<stem>.json            the output of each succeeded node (contract.file_stem)
    <run>/writes/<stem>.json             its context writes, when it wrote any
    <run>/context.json                   the initial context (spec.context)
    <run>/nodes/<node>/<attempt>/in/     function.json, params.json, input.json, context.json,
                                         view.json, outputs/, writes/ (what the node can see)
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
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowcraft.contract import (
    DEFAULT_OUT_LIMIT,
    ENV_ATTEMPT,
    ENV_IN,
    ENV_NODE,
    ENV_OUT,
    ENV_OUT_INLINE,
    ENV_OUT_LIMIT,
    FUNCTION_FILE,
    INITIAL_CONTEXT_FILE,
    INPUT_FILE,
    OUTPUTS_DIR,
    PARAMS_FILE,
    VIEW_FILE,
    WRITES_DIR,
    ViewItem,
    Write,
    file_stem,
    item_key,
    parse_result,
    result_key,
)
from flowcraft.drivers.local_state import load_results
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
from flowcraft.engine.batch import worker_id
from flowcraft.model import Flow, FlowStatus, FunctionSpec
from flowcraft.model.blueprint import Blueprint

_TERMINAL = frozenset({"Succeeded", "Failed", "Cancelled"})
_LOG_TAIL_LINES = 5
_CONTAINER_IN = "/flowcraft/in"
_CONTAINER_OUT_DIR = "/flowcraft/out"
_RESULT_FILE = "result.json"
_DOCKER_CHECK_SECONDS = 15.0

Event = NodeStarted | NodeSucceeded | NodeFailed | CancelFlow


@dataclass(frozen=True)
class AttemptRecord:
    """One finished node attempt, as the driver saw it (for summaries and tests)."""

    node: str
    attempt: int
    started_at: datetime
    finished_at: datetime
    outcome: str  # "succeeded" | "failed" | "timed-out" | "cancelled"
    message: str | None
    log: Path
    item: int | None = None  # a batch item of scatter `node`


@dataclass
class RunResult:
    """The end of a run: the engine's final status, the flowcraft-style context, and records."""

    flow: Flow
    status: FlowStatus
    context: dict[str, Any]
    outputs: dict[str, Any]
    run_dir: Path
    attempts: list[AttemptRecord] = field(default_factory=list)


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
        self._procs: dict[AttemptKey, _Proc] = {}
        self._cancelled: set[AttemptKey] = set()
        self._records: list[AttemptRecord] = []
        self._docker_ready: asyncio.Task[str | None] | None = None
        self._subflows = Subflows(self, blueprints, tuple(chain) or (flow.metadata.name,))
        self._item_views: dict[tuple[str, int], list[ViewItem]] = {}

    def cancel(self, reason: str) -> None:
        """Ask the engine to cancel the flow (e.g. on Ctrl-C); safe to call from the loop."""
        self._events.put_nowait(CancelFlow(reason))

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
        _write_atomic(self.run_dir / OUTPUTS_DIR / f"{stem}.json", event.output)
        if event.writes:
            self._writes[key] = event.writes
            _write_atomic(self.run_dir / WRITES_DIR / f"{stem}.json", list(event.writes))

    def _apply(self, step: Step) -> FlowStatus:
        for action in step.actions:
            key = _key(action)
            if isinstance(action, StartNode):
                if self._subflows.handles(action.node):
                    run = self._subflows.run(action, key, step.status, self._attempt_dir(action))
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

    async def _run_attempt(self, action: StartNode, visible: list[ViewItem]) -> None:
        node = self.flow.spec.node(action.node)
        # A batch item runs the scatter's worker function (no params, as flowcraft's
        # dynamic worker nodes have none).
        uses = action.uses if action.item is not None and action.uses else node.uses
        params = node.params if action.item is None else {}
        function = self.flow.spec.functions[uses]
        attempt_dir = self._attempt_dir(action)
        key = _key(action)
        log_path = attempt_dir / "log.txt"
        problem: str | None = None
        proc: _Proc | None = None
        item = action.item
        try:
            in_dir, out_file = self._prepare(action, params, uses, function, visible)
            if function.kind == "container":
                docker_problem = await self._docker_problem()
                if docker_problem is not None:
                    problem = (
                        f"container function {node.uses!r} needs a docker daemon: {docker_problem}"
                    )
                else:
                    argv = self._docker_argv(action, function, attempt_dir)
                    proc = await _Proc.spawn(argv, attempt_dir, None, log_path, self._docker)
            else:
                env = self._node_env(action, in_dir, out_file)
                argv = [self._python, "-m", "flowcraft.runtime"]
                proc = await _Proc.spawn(argv, attempt_dir, env, log_path, None)
        except OSError as err:
            problem = f"cannot start node {action.node!r}: {err}"
        if proc is None:
            # Report it as an attempt that started and failed, so retries and fallback apply.
            now = utcnow()
            message = problem or "node process did not start"
            self._report(NodeStarted(action.node, action.attempt, now, action.iteration, item), key)
            self._finish(action, "failed", message, log=log_path, started=now, finished=now)
            self._report(
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
        self._report(NodeStarted(action.node, action.attempt, started, action.iteration, item), key)

        timed_out = False
        try:
            code = await asyncio.wait_for(proc.wait(), action.timeout_seconds)
        except TimeoutError:
            timed_out = True
            await proc.kill()
            code = await proc.wait()
        finished = utcnow()

        if key in self._cancelled:
            self._finish(
                action, "cancelled", None, log=log_path, started=started, finished=finished
            )
            return
        if timed_out:
            message = f"timed out after {action.timeout_seconds:g} s (attempt killed)"
            self._finish(
                action, "timed-out", message, log=log_path, started=started, finished=finished
            )
            self._report(
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
            self._finish(
                action, "succeeded", None, log=log_path, started=started, finished=finished
            )
            self._report(
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
        message = (result.error if code >= 0 else None) or _exit_message(code, log_path)
        self._finish(action, "failed", message, log=log_path, started=started, finished=finished)
        self._report(
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

    def _report(self, event: Event, key: AttemptKey) -> None:
        if key not in self._cancelled:
            self._events.put_nowait(event)

    def _finish(
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

    def _prepare(
        self,
        action: StartNode,
        params: Mapping[str, Any],
        uses: str,
        function: FunctionSpec,
        visible: list[ViewItem],
    ) -> tuple[Path, Path]:
        """Write the attempt's inputs as the runtime contract lays them out."""
        attempt_dir = self._attempt_dir(action)
        in_dir = attempt_dir / "in"
        outputs_dir = in_dir / OUTPUTS_DIR
        outputs_dir.mkdir(parents=True, exist_ok=True)
        writes_dir = in_dir / WRITES_DIR
        writes_dir.mkdir(exist_ok=True)
        out_dir = attempt_dir / "out"
        out_dir.mkdir(exist_ok=True)
        if function.kind == "container":
            # Images may run as any user (the runner image is non-root): let it write its result.
            out_dir.chmod(0o777)
        doc: dict[str, str] = {"name": uses}
        if function.script is not None:
            doc["script"] = function.script
        elif function.python is not None:
            doc["python"] = function.python
        (in_dir / FUNCTION_FILE).write_text(json.dumps(doc))
        (in_dir / PARAMS_FILE).write_text(json.dumps(params))
        (in_dir / INPUT_FILE).write_text(json.dumps(action.input))
        view = [item.to_json() for item in visible]
        (in_dir / VIEW_FILE).write_text(json.dumps(view, ensure_ascii=False))
        _link(self.run_dir / INITIAL_CONTEXT_FILE, in_dir / INITIAL_CONTEXT_FILE)
        for item in visible:
            if item.key is None:
                continue  # inline or undefined: nothing stored
            stem = file_stem(item.key)
            _link(self.run_dir / OUTPUTS_DIR / f"{stem}.json", outputs_dir / f"{stem}.json")
            if item.wrote:
                _link(self.run_dir / WRITES_DIR / f"{stem}.json", writes_dir / f"{stem}.json")
        return in_dir, out_dir / _RESULT_FILE

    def _attempt_dir(self, action: StartNode) -> Path:
        # Ids may hold any character but "/": the directory uses the id's file stem.
        name = str(action.attempt)
        if action.item is not None:
            items = self.run_dir / "nodes" / file_stem(action.node) / f"{action.iteration}.items"
            return items / f"{action.item}.{action.attempt}"
        if action.iteration:
            name = f"{action.iteration}.{action.attempt}"
        return self.run_dir / "nodes" / file_stem(action.node) / name

    def _node_env(self, action: StartNode, in_dir: Path, out_file: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.pop(ENV_OUT_LIMIT, None)
        env.pop(ENV_OUT_INLINE, None)  # locally the result file has no size limit of its own
        env[ENV_NODE] = action.node
        if action.item is not None and action.uses:
            # flowcraft's id of the dynamic worker node (what `_inputs.<id>` names).
            env[ENV_NODE] = worker_id(action.uses, action.node, action.iteration, action.item)
        env[ENV_ATTEMPT] = str(action.attempt)
        env[ENV_IN] = str(in_dir)
        env[ENV_OUT] = str(out_file)
        if self._out_limit is not None:
            env[ENV_OUT_LIMIT] = str(self._out_limit)
        paths = [*self._pythonpath, env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        return env

    def _docker_argv(
        self, action: StartNode, function: FunctionSpec, attempt_dir: Path
    ) -> list[str]:
        """``docker run`` with the pod's contract: Kubernetes command/args semantics."""
        node = action.node if action.item is None else f"{action.node}-{action.item}"
        name = f"flowcraft-{self.flow.metadata.name}-{node}-{action.attempt}-{os.getpid()}"
        env = {
            ENV_NODE: action.node
            if action.item is None or not action.uses
            else worker_id(action.uses, action.node, action.iteration, action.item),
            ENV_ATTEMPT: str(action.attempt),
            ENV_IN: _CONTAINER_IN,
            ENV_OUT: f"{_CONTAINER_OUT_DIR}/{_RESULT_FILE}",
            **({ENV_OUT_LIMIT: str(self._out_limit)} if self._out_limit is not None else {}),
            **(function.env or {}),
        }
        argv = [self._docker, "run", "--rm", "--name", name[:200]]
        argv += ["-v", f"{attempt_dir / 'in'}:{_CONTAINER_IN}:ro"]
        argv += ["-v", f"{attempt_dir / 'out'}:{_CONTAINER_OUT_DIR}"]
        for key, value in env.items():
            argv += ["-e", f"{key}={value}"]
        command = list(function.command or [])
        if command:
            argv += ["--entrypoint", command[0]]
        argv.append(function.effective_image(self.flow.spec.runner_image))
        return argv + command[1:] + list(function.args or [])

    async def _docker_problem(self) -> str | None:
        """None when a docker daemon answers, else why not (checked once per run)."""
        if self._docker_ready is None:
            self._docker_ready = asyncio.create_task(_check_docker(self._docker))
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


class _Proc:
    """One node process in its own session, so it (and its children) can be killed as a group."""

    def __init__(
        self, process: asyncio.subprocess.Process, docker: str | None, container: str | None
    ) -> None:
        self._process = process
        self._docker = docker
        self._container = container

    @classmethod
    async def spawn(
        cls,
        argv: list[str],
        cwd: Path,
        env: Mapping[str, str] | None,
        log_path: Path,
        docker: str | None,
    ) -> _Proc:
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        container = argv[argv.index("--name") + 1] if docker is not None else None
        return cls(process, docker, container)

    async def wait(self) -> int:
        return await self._process.wait()

    def kill_soon(self) -> None:
        asyncio.get_running_loop().create_task(self.kill())

    async def kill(self) -> None:
        if self._process.returncode is not None:
            return
        if self._docker is not None and self._container is not None:
            # Killing the docker client would leave the container running.
            killer = await asyncio.create_subprocess_exec(
                self._docker,
                "kill",
                self._container,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await killer.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        await self._process.wait()


async def _check_docker(docker: str) -> str | None:
    if shutil.which(docker) is None:
        return f"{docker!r} is not installed (not found on PATH)"
    try:
        proc = await asyncio.create_subprocess_exec(
            docker,
            "info",
            "--format",
            "{{.ServerVersion}}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        return f"cannot run {docker!r}: {exc}"
    try:
        out, err = await asyncio.wait_for(proc.communicate(), _DOCKER_CHECK_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return f"'{docker} info' did not answer within {_DOCKER_CHECK_SECONDS:g} s"
    if proc.returncode != 0:
        detail = (err or out).decode(errors="replace").strip().splitlines()
        return f"'{docker} info' failed: {detail[-1] if detail else f'exit {proc.returncode}'}"
    return None


AttemptKey = tuple[str, int, int, int]


def _key(action: StartNode | CancelNode) -> AttemptKey:
    item = -1 if action.item is None else action.item
    return (action.node, action.iteration, action.attempt, item)


def _write_atomic(path: Path, value: Any) -> None:
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(value, ensure_ascii=False))
    partial.replace(path)


def _link(source: Path, target: Path) -> None:
    # Hard links: free, and unlike symlinks they also resolve inside a docker mount.
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _exit_message(code: int, log_path: Path) -> str:
    """Why an attempt failed when it wrote no error result: exit status and the log's tail."""
    what = f"killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
    message = f"node process {what} without a result"
    with contextlib.suppress(OSError):
        tail = log_path.read_text(errors="replace").strip().splitlines()[-_LOG_TAIL_LINES:]
        if tail:
            message += ": " + " | ".join(tail)
    return message
