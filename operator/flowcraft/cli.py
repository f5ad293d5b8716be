"""The ``flowcraft`` command: run and validate flows locally, run the operator.

Why it is built this way: ``flowcraft run`` should start in a blink, so this module imports only
argparse at load time and pulls in the model (pydantic, yaml, CEL) and the local driver inside
the subcommand that needs them. User errors (bad manifest, bad ``--param``, unreadable file)
print one clear message and exit 2, never a traceback. Exit codes: 0 the flow Succeeded (or is
valid), 1 it Failed or was Cancelled, 2 invalid input, 3 cluster unreachable (cluster commands),
4 the flow stopped at a wait node (Awaiting; resumable), 130 interrupted twice.

Wait and resume: a local run that reaches Awaiting keeps its run directory (even a temporary
one), saves its state there (``flowcraft.drivers.local_state``), prints one line on stderr with
the exact ``flowcraft resume RUN_DIR NODE --data JSON`` command and exits 4. ``resume`` takes a
run directory (an existing directory, or any TARGET containing "/") or else the name of a Flow
on the cluster; ``--data`` is JSON text or ``@FILE``: flowcraft's resumeData ``{"output",
"action"}``, any other value being the output.

``--param [NODE.]KEY=VALUE`` (repeatable) overrides params before the run: ``KEY=VALUE`` sets
``params.KEY`` on every node, ``NODE.KEY=VALUE`` on that node only (node ids cannot contain
dots, so the first dot separates them). VALUE is parsed as JSON when it is valid JSON
(``3``, ``0.5``, ``true``, ``[1,2]``, ``{"a":1}``) and is a plain string otherwise.

``--initial-context FILE`` (``run``, ``validate``, ``submit``) sets the flow's initial context,
``spec.context``, from a JSON or YAML object; its keys are merged over the manifest's own
``spec.context`` (shallow, the file winning). Not ``--context``: on ``submit`` that names the
kubeconfig context. ``--blueprints FILE_OR_DIR`` (``run``, ``validate``; repeatable) loads the
blueprints subflow nodes run, keyed by their id: a file is one flowcraft blueprint (JSON/YAML), a
``kind: Blueprint`` or a ``kind: Flow`` manifest; a directory contributes every such
``*.json``/``*.yaml`` in it (other files are skipped with a warning). With it, a subflow node
naming no known blueprint is invalid input (exit 2); without it, such a node fails when it runs.
What the loader accepts but wants the user to know (a blueprint key
flowcraft ignores, an unquoted ``n``/``yes`` that kubectl reads as a boolean) is printed on
stderr as ``warning: <path>: <message>`` before the command goes on.

``flowcraft operator`` hands over to the Kubernetes driver's entry module (its flags and exit
codes are documented there). ``submit``, ``get`` and ``logs`` talk to the cluster of the current
kubeconfig (``--kubeconfig``/``$KUBECONFIG``) through :mod:`flowcraft.clustercli`; when the
cluster cannot be reached or the Flow does not exist they print one line and exit 3.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from flowcraft.drivers.local import RunResult
    from flowcraft.drivers.local_state import RunState
    from flowcraft.model import Flow, FlowStatus
    from flowcraft.model.blueprint import Blueprint

EXIT_OK = 0
EXIT_FLOW_FAILED = 1
EXIT_INVALID = 2
EXIT_CLUSTER = 3
EXIT_AWAITING = 4
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad command-line input; printed as ``flowcraft: error: ...`` with exit code 2."""


class ClusterError(Exception):
    """The cluster could not be reached, refused a request, or lacks the Flow (exit code 3)."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_INVALID
    try:
        code: int = args.handler(args)
    except UsageError as err:
        print(f"flowcraft: error: {err}", file=sys.stderr)
        return EXIT_INVALID
    except ClusterError as err:
        print(f"flowcraft: error: {err}", file=sys.stderr)
        return EXIT_CLUSTER
    return code


def _parser() -> argparse.ArgumentParser:
    from flowcraft import __version__  # noqa: PLC0415 - tiny, but keep the top import-free

    parser = argparse.ArgumentParser(
        prog="flowcraft",
        description="Run DAG workflows (flowcraft blueprints) locally or on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"flowcraft {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run a flow on this machine (local runner)",
        description="Run a flow on this machine with the local runner.",
        epilog="--param [NODE.]KEY=VALUE sets params.KEY on every node (or on NODE only); "
        "VALUE is JSON when it parses as JSON, else a string. Exit code: 0 Succeeded, "
        "1 Failed or Cancelled, 2 invalid input, 4 stopped at a wait node (Awaiting): the run "
        "directory is kept and stderr shows the flowcraft resume command.",
    )
    _flow_arguments(run)
    _blueprints_argument(run)
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="[NODE.]KEY=VALUE",
        help="override a node param (repeatable)",
    )
    run.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="text: a summary table (default); json: the final context on stdout",
    )
    run.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="keep the run's files (inputs, results, logs) under DIR "
        "(default: a temporary directory, removed when the flow succeeds)",
    )
    _quiet_argument(run)
    run.add_argument(
        "--no-output-limit",
        action="store_true",
        help="lift the 4096-byte per-node result limit the cluster enforces",
    )
    run.set_defaults(handler=_cmd_run)

    validate = commands.add_parser(
        "validate",
        help="check a flow without running it",
        description="Check a flow without running it. Exit code: 0 valid, 2 invalid.",
    )
    _flow_arguments(validate)
    _blueprints_argument(validate)
    validate.set_defaults(handler=_cmd_validate)
    _cluster_commands(commands)
    # The operator's flags live with the Kubernetes driver; its entry module imports only
    # argparse, so building this parser stays cheap.
    from flowcraft.drivers.kubernetes import entry as operator_entry  # noqa: PLC0415

    operator = commands.add_parser(
        "operator",
        help="run the Kubernetes operator (watches Flows, runs nodes as Jobs)",
        description="Run the flowcraft operator against the cluster of the current kubeconfig.",
    )
    operator_entry.add_arguments(operator)
    operator.set_defaults(handler=operator_entry.run)
    return parser


def _quiet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress lines and no summary"
    )


def _flow_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("flow", type=Path, metavar="FLOW", help="a Flow manifest or blueprint")
    parser.add_argument(
        "--functions",
        type=Path,
        metavar="FILE",
        help="functions file (uses key -> script/python/image), needed for blueprint JSON",
    )
    parser.add_argument(
        "--initial-context",
        type=Path,
        metavar="FILE",
        help="JSON or YAML object: the flow's initial context (spec.context), which every "
        "node sees; its keys are merged over the manifest's spec.context, the file winning",
    )


def _blueprints_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--blueprints",
        type=Path,
        action="append",
        default=[],
        metavar="FILE_OR_DIR",
        help="blueprints that subflow nodes run, by id (repeatable): a blueprint JSON/YAML, "
        "a Blueprint or Flow manifest, or a directory of them",
    )


def _load_blueprints(args: argparse.Namespace, flow: Flow) -> dict[str, Blueprint] | None:
    """The --blueprints registry, checked against every subflow node it can reach (None
    when the flag is absent); problems exit 2, warnings go to stderr."""
    from flowcraft.model import FlowValidationError  # noqa: PLC0415
    from flowcraft.model.blueprint import check_blueprints, load_blueprints  # noqa: PLC0415

    if not args.blueprints:
        return None
    try:
        loaded = load_blueprints(args.blueprints)
    except FlowValidationError as err:
        raise UsageError(str(err).replace("invalid flow", "invalid --blueprints", 1)) from None
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    problems = check_blueprints(flow.spec, loaded.blueprints, loaded.sources)
    if problems:
        raise UsageError(str(FlowValidationError(problems, source=str(args.flow))))
    return loaded.blueprints


def _load(args: argparse.Namespace) -> Flow:
    """Load FLOW (+ --functions, --initial-context); warnings go to stderr, errors exit 2."""
    from flowcraft.model import FlowValidationError  # noqa: PLC0415
    from flowcraft.model.loader import load_flow_with_warnings  # noqa: PLC0415

    if not args.flow.is_file():
        raise UsageError(f"flow file {str(args.flow)!r} does not exist")
    for flag, what in (("functions", "functions"), ("initial_context", "initial context")):
        path = getattr(args, flag)
        if path is not None and not path.is_file():
            raise UsageError(f"{what} file {str(path)!r} does not exist")
    try:
        flow, warnings = load_flow_with_warnings(
            args.flow, functions=args.functions, initial_context=args.initial_context
        )
    except FlowValidationError as err:
        raise UsageError(str(err)) from None
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return flow


def _cmd_validate(args: argparse.Namespace) -> int:
    flow = _load(args)
    blueprints = _load_blueprints(args, flow)
    nodes, edges = _plural(len(flow.spec.nodes), "node"), _plural(len(flow.spec.edges), "edge")
    used = f", {_plural(len(blueprints), 'blueprint')}" if blueprints else ""
    print(f"ok: flow {flow.metadata.name}: {nodes}, {edges}{used}")
    return EXIT_OK


def apply_params(flow: Flow, assignments: Sequence[str]) -> Flow:
    """The flow with ``--param`` assignments applied to its nodes' params."""
    import json  # noqa: PLC0415

    node_ids = {node.id for node in flow.spec.nodes}
    everywhere: dict[str, Any] = {}
    per_node: dict[str, dict[str, Any]] = {}
    for item in assignments:
        target, sep, text = item.partition("=")
        if not sep or not target:
            raise UsageError(f"--param {item!r}: expected [NODE.]KEY=VALUE")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        node, dot, key = target.partition(".")
        if not dot:
            everywhere[target] = value
            continue
        if node not in node_ids:
            raise UsageError(
                f"--param {item!r}: flow {flow.metadata.name!r} has no node {node!r} "
                f"(nodes: {', '.join(sorted(node_ids))})"
            )
        if not key:
            raise UsageError(f"--param {item!r}: missing KEY after {node + '.'!r}")
        per_node.setdefault(node, {})[key] = value
    if not everywhere and not per_node:
        return flow
    nodes = [
        node.model_copy(
            update={"params": {**node.params, **everywhere, **per_node.get(node.id, {})}}
        )
        for node in flow.spec.nodes
    ]
    return flow.model_copy(update={"spec": flow.spec.model_copy(update={"nodes": nodes})})


def _cmd_run(args: argparse.Namespace) -> int:
    import tempfile  # noqa: PLC0415

    flow = apply_params(_load(args), args.param)
    blueprints = _load_blueprints(args, flow)
    from flowcraft.model import FlowStatus  # noqa: PLC0415

    name = flow.metadata.name
    if args.workdir is not None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = args.workdir / f"{name}-{stamp}-{_pid()}"
        try:
            run_dir.mkdir(parents=True)
        except OSError as err:
            raise UsageError(f"--workdir: cannot create {str(run_dir)!r}: {err.strerror}") from None
    else:
        run_dir = Path(tempfile.mkdtemp(prefix=f"flowcraft-{name}-"))

    from flowcraft.drivers.local_state import RunState  # noqa: PLC0415

    state = RunState(
        flow=flow,
        status=FlowStatus(),
        pythonpath=(str(args.flow.resolve().parent),),
        out_limit=None if args.no_output_limit else 4096,
        blueprints=blueprints,
    )
    return _execute(args, state, run_dir, resumed=False, temporary=args.workdir is None)


def _execute(
    args: argparse.Namespace, state: RunState, run_dir: Path, *, resumed: bool, temporary: bool
) -> int:
    """Run ``state.flow`` in ``run_dir`` (from ``state.status`` when ``resumed``), report it,
    and keep the run resumable when it stops Awaiting. Shared by ``run`` and ``resume``."""
    import asyncio  # noqa: PLC0415
    import json  # noqa: PLC0415
    import shutil  # noqa: PLC0415
    import signal  # noqa: PLC0415

    from flowcraft.drivers.local import LocalRunner  # noqa: PLC0415
    from flowcraft.drivers.local_state import save_state  # noqa: PLC0415

    progress = _Progress(sys.stderr, enabled=not args.quiet)
    if resumed:
        progress.seen(state.status)
    runner = LocalRunner(
        state.flow,
        run_dir,
        on_status=progress.update,
        pythonpath=list(state.pythonpath),
        out_limit=state.out_limit,
        blueprints=state.blueprints,
    )

    async def supervise() -> RunResult:
        loop = asyncio.get_running_loop()
        main_task = asyncio.current_task()
        interrupts = 0

        def on_interrupt() -> None:
            nonlocal interrupts
            interrupts += 1
            if interrupts == 1:
                progress.note("interrupted: cancelling the flow (Ctrl-C again to abort)")
                runner.cancel("interrupted by the user (Ctrl-C)")
            elif main_task is not None:
                main_task.cancel()

        loop.add_signal_handler(signal.SIGINT, on_interrupt)
        try:
            return await runner.run(state.status if resumed else None)
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    try:
        result = asyncio.run(supervise())
    except asyncio.CancelledError:
        print(f"flowcraft: aborted; files of this run: {run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED

    phase = result.status.phase
    awaiting = phase == "Awaiting"
    if awaiting or resumed:
        # The state a later `flowcraft resume` continues from (or, once a resumed run ends,
        # the record that there is nothing left to resume).
        save_state(run_dir, replace(state, status=result.status))
    if args.output == "json":
        json.dump(result.context, sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
        if not args.quiet:
            progress.summary(result, sys.stderr)
    elif not args.quiet:
        progress.summary(result, sys.stdout)
    if awaiting:
        print(resume_hint(result.flow.metadata.name, result.status, run_dir), file=sys.stderr)
        return EXIT_AWAITING
    if phase == "Succeeded" and temporary and not resumed:
        shutil.rmtree(run_dir, ignore_errors=True)
    elif not args.quiet:
        print(f"files of this run (inputs, results, logs): {run_dir}", file=sys.stderr)
    return EXIT_OK if phase == "Succeeded" else EXIT_FLOW_FAILED


def awaiting_nodes(status: FlowStatus) -> list[str]:
    return [node for node, ns in status.nodes.items() if ns.phase == "Awaiting"]


def resume_hint(flow: str, status: FlowStatus, run_dir: Path) -> str:
    """The one line a run that stopped Awaiting prints: which nodes, and the command."""
    import shlex  # noqa: PLC0415

    nodes = awaiting_nodes(status)
    which = "node" if len(nodes) == 1 else "nodes"
    command = (
        f"flowcraft resume {shlex.quote(str(run_dir))} {shlex.quote(nodes[0] if nodes else '?')}"
        " --data '{\"output\": ...}'"
    )
    each = "" if len(nodes) == 1 else " (one node at a time)"
    return f"flowcraft: flow {flow} is awaiting {which} {', '.join(nodes)}; resume{each}: {command}"


def _cmd_resume(args: argparse.Namespace) -> int:
    data = _resume_data(args.data)
    target = str(args.target)
    if Path(target).is_dir() or "/" in target:
        for flag in ("namespace", "kubeconfig", "context"):
            if getattr(args, flag) is not None:
                raise UsageError(
                    f"--{flag} names a Flow on a cluster; {target!r} is a local run directory"
                )
        return _resume_local(args, Path(target), data)
    return _resume_cluster(args, target, data)


def _resume_data(text: str) -> Any:
    """--data: JSON text, or @FILE holding JSON."""
    import json  # noqa: PLC0415

    source = "--data"
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text()
        except OSError as err:
            raise UsageError(f"--data {text[:1]}{path}: cannot read: {err.strerror}") from None
        source = f"--data @{path}"
    try:
        return json.loads(text)
    except ValueError as err:
        raise UsageError(
            f"{source}: not valid JSON ({err}); quote a string as JSON, e.g. --data '\"yes\"'"
        ) from None


def _resume_local(args: argparse.Namespace, run_dir: Path, data: Any) -> int:
    from flowcraft.drivers.local_state import StateError, load_state  # noqa: PLC0415

    if not run_dir.is_dir():
        raise UsageError(f"run directory {str(run_dir)!r} does not exist")
    try:
        state = load_state(run_dir)
    except StateError as err:
        raise UsageError(str(err)) from None
    flow, status = state.flow, state.status
    name = flow.metadata.name
    waiting = awaiting_nodes(status)
    listed = f"awaiting: {', '.join(waiting)}" if waiting else "no node is awaiting"
    if status.phase != "Awaiting":
        raise UsageError(
            f"run directory {str(run_dir)!r} is not awaiting: flow {name} is {status.phase}"
        )
    if args.node not in status.nodes:
        raise UsageError(f"flow {name} has no node {args.node!r} ({listed})")
    node_phase = status.nodes[args.node].phase
    if node_phase != "Awaiting":
        raise UsageError(
            f"node {args.node!r} of flow {name} is not awaiting (phase {node_phase}; {listed})"
        )
    resume = {**(flow.spec.resume or {}), args.node: data}
    spec = flow.spec.model_copy(update={"resume": resume})
    state = replace(state, flow=flow.model_copy(update={"spec": spec}))
    return _execute(args, state, run_dir, resumed=True, temporary=False)


def _resume_cluster(args: argparse.Namespace, name: str, data: Any) -> int:
    from flowcraft import clustercli  # noqa: PLC0415

    async def work(api: Any, default_ns: str) -> str:
        namespace = args.namespace or default_ns
        await clustercli.resume(api, namespace, name, args.node, data)
        return namespace

    try:
        namespace = _on_cluster(args, work)
    except clustercli.ResumeRefused as err:
        raise UsageError(str(err)) from None
    print(f"flow.flowcraft.io/{name} resumed: node {args.node} (namespace {namespace})")
    return EXIT_OK


def _pid() -> int:
    import os  # noqa: PLC0415

    return os.getpid()


# Node phase -> (progress tag, ANSI colour).
_MARKS: dict[str, tuple[str, str]] = {
    "Running": ("start", "36"),
    "Succeeded": ("ok", "32"),
    "Retrying": ("retry", "33"),
    "Failed": ("FAIL", "31"),
    "Skipped": ("skip", "2"),
    "Cancelled": ("cancel", "33"),
    "Sleeping": ("sleep", "36"),
    "Awaiting": ("await", "35"),
}


class _Progress:
    """Turns successive engine statuses into one line per node transition."""

    def __init__(self, stream: TextIO, *, enabled: bool) -> None:
        self._stream = stream
        self._enabled = enabled
        self._color = enabled and stream.isatty()
        self._seen: dict[str, tuple[str, int]] = {}
        self._flow_phase = "Pending"
        self._t0: datetime | None = None

    def note(self, text: str) -> None:
        if self._enabled:
            print(text, file=self._stream, flush=True)

    def seen(self, status: FlowStatus) -> None:
        """Take ``status`` as already shown (a resumed run reports only what is new)."""
        self._t0 = status.started_at
        for node_id, node in status.nodes.items():
            self._seen[node_id] = (node.phase, node.attempts)

    def update(self, status: FlowStatus) -> None:
        if self._t0 is None:
            self._t0 = status.started_at or datetime.now(UTC)
        for node_id, node in status.nodes.items():
            state = (node.phase, node.attempts)
            if self._seen.get(node_id, ("Pending", 0)) == state:
                continue
            self._seen[node_id] = state
            if node.phase in _MARKS:
                self._line(node_id, node.phase, self._describe(node_id, status))
        if status.phase != self._flow_phase:
            self._flow_phase = status.phase

    def _describe(self, node_id: str, status: FlowStatus) -> str:
        node = status.nodes[node_id]
        if node.phase == "Running":
            return "started" + (f" (attempt {node.attempts})" if node.attempts > 1 else "")
        if node.phase == "Succeeded":
            return f"succeeded in {_duration(node.started_at, node.finished_at)}" + (
                f" after {node.attempts} attempts" if node.attempts > 1 else ""
            )
        if node.phase == "Retrying":
            text = node.message or f"attempt {node.attempts} failed"
            if node.retry_at is not None:
                text += f"; retrying in {_duration(datetime.now(UTC), node.retry_at)}"
            return text
        if node.phase == "Failed":
            return f"failed after {_plural(node.attempts, 'attempt')}: {node.message or '?'}"
        if node.phase == "Sleeping" and node.wake_at is not None:
            return f"sleeping for {_duration(datetime.now(UTC), node.wake_at)}"
        if node.phase == "Awaiting":
            return "awaiting resume data (flowcraft resume)"
        word = node.phase.lower()
        detail = node.message or node.reason
        if not detail:
            return word
        return detail if detail.startswith(word) else f"{word} ({detail})"

    def _line(self, node_id: str, phase: str, text: str) -> None:
        if not self._enabled:
            return
        mark, color = _MARKS[phase]
        tag = f"[{mark:>6}]"
        if self._color:
            tag = f"\033[{color}m{tag}\033[0m"
        elapsed = ""
        if self._t0 is not None:
            elapsed = f"{(datetime.now(UTC) - self._t0).total_seconds():6.2f}s "
        print(f"{elapsed}{tag} {node_id} {text}", file=self._stream, flush=True)

    def summary(self, result: RunResult, stream: TextIO) -> None:
        status = result.status
        took = f"in {_duration(status.started_at, status.finished_at)}"
        if status.phase == "Awaiting":
            took = f"after {_duration(status.started_at, datetime.now(UTC))}"
        rows = [("NODE", "PHASE", "ATTEMPTS", "DURATION", "MESSAGE")]
        for node in result.flow.spec.nodes:
            ns = status.nodes.get(node.id)
            if ns is None:
                rows.append((node.id, "Pending", "0", "-", ""))
                continue
            duration = _duration(ns.started_at, ns.finished_at) if ns.started_at else "-"
            rows.append((node.id, ns.phase, str(ns.attempts), duration, _one_line(ns.message)))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        print(f"flow {result.flow.metadata.name}: {status.phase} {took}", file=stream)
        for row in rows:
            cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:4])]
            print("  " + "  ".join([*cells, row[4]]).rstrip(), file=stream)
        for error in status.errors:
            print(f"  error: {error}", file=stream)
        stream.flush()


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "-"
    return f"{(end - start).total_seconds():.2f} s"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _one_line(text: str | None, limit: int = 100) -> str:
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# ----------------------------------------------------------------- submit | get | logs


def _cluster_commands(commands: Any) -> None:
    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--namespace",
            "-n",
            metavar="NS",
            help="namespace (default: the manifest's, else the kubeconfig context's, else default)",
        )
        parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
        parser.add_argument("--context", help="kubeconfig context")

    submit = commands.add_parser(
        "submit",
        help="create or update a Flow on the cluster (optionally follow it)",
        description="Validate FLOW, then create it on the cluster or replace the spec of the "
        "existing Flow. Exit code with --watch: 0 Succeeded, 1 Failed or Cancelled; "
        "2 invalid input, 3 cluster unreachable or request refused.",
    )
    _flow_arguments(submit)
    common(submit)
    submit.add_argument(
        "--watch", "-w", action="store_true", help="follow the run node by node until it ends"
    )
    submit.set_defaults(handler=_cmd_submit)

    get = commands.add_parser(
        "get",
        help="show a Flow on the cluster as a tree with phase and duration per node",
        description="Show a Flow's DAG as a tree with each node's phase and duration.",
    )
    get.add_argument("name", metavar="FLOW", help="name of the Flow")
    common(get)
    get.add_argument(
        "--output", "-o", choices=("tree", "json"), default="tree", help="tree (default) or json"
    )
    get.set_defaults(handler=_cmd_get)

    logs = commands.add_parser(
        "logs",
        help="print the pod logs of a Flow's nodes (latest attempt)",
        description="Print the pod log of NODE's latest attempt, or of every node that ran.",
    )
    logs.add_argument("name", metavar="FLOW", help="name of the Flow")
    logs.add_argument("node", metavar="NODE", nargs="?", help="one node (default: all)")
    common(logs)
    logs.set_defaults(handler=_cmd_logs)

    resume = commands.add_parser(
        "resume",
        help="hand a wait node its data: continue a local run, or resume a Flow on the cluster",
        description="Give the wait node NODE its resume data and continue. TARGET is a local "
        "run directory (one that flowcraft run left Awaiting, exit code 4; any existing "
        "directory or a path containing '/') or else the name of a Flow on the cluster, whose "
        "spec.resume[NODE] is then patched (the operator continues the run).",
        epilog='DATA is flowcraft\'s resumeData: {"output": ..., "action": ...}; any other '
        "JSON value is taken as the output. Exit code (local): as flowcraft run (0 Succeeded, 1 "
        "Failed, 4 Awaiting again); 0 once the cluster accepted the patch; 2 unknown node, node "
        "not awaiting, run not awaiting or bad --data; 3 cluster unreachable.",
    )
    resume.add_argument("target", metavar="RUN_DIR|FLOW", help="local run directory or Flow name")
    resume.add_argument("node", metavar="NODE", help="the awaiting wait node")
    resume.add_argument(
        "--data",
        required=True,
        metavar="JSON",
        help="resume data as JSON text, or @FILE to read it from a file",
    )
    common(resume)
    resume.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="local run: text summary (default) or the final context as JSON",
    )
    _quiet_argument(resume)
    resume.set_defaults(handler=_cmd_resume)


def _on_cluster(args: argparse.Namespace, work: Any) -> Any:
    """Run ``work(client, default_namespace)`` against the cluster; API trouble → ClusterError."""
    import asyncio  # noqa: PLC0415

    from flowcraft import clustercli  # noqa: PLC0415
    from flowcraft.drivers.kubernetes import client as k8s  # noqa: PLC0415

    try:
        conn = k8s.load_user_connection(args.kubeconfig, args.context)
    except k8s.ConfigError as err:
        raise ClusterError(str(err)) from None

    async def session() -> Any:
        api = k8s.Client(conn)
        try:
            return await work(api, conn.default_namespace or "default")
        finally:
            await api.close()

    try:
        return asyncio.run(session())
    except clustercli.FlowNotFound as err:
        raise ClusterError(str(err)) from None
    except k8s.ServerError as err:
        raise ClusterError(f"cannot reach the cluster at {conn.server}: {err.message}") from None
    except k8s.ApiError as err:
        raise ClusterError(f"the cluster refused the request: {err}") from None


def _cmd_submit(args: argparse.Namespace) -> int:
    from flowcraft import clustercli  # noqa: PLC0415
    from flowcraft.model import FlowStatus  # noqa: PLC0415

    flow = _load(args)
    doc = flow.to_dict()
    progress = _Progress(sys.stderr, enabled=args.watch)

    def on_status(status: dict[str, Any]) -> None:
        progress.update(FlowStatus.model_validate(status))

    async def work(api: Any, default_ns: str) -> int:
        namespace = args.namespace or flow.metadata.namespace or default_ns
        body = clustercli.flow_manifest(doc, namespace)
        verb, obj = await clustercli.submit(api, body)
        print(f"flow.flowcraft.io/{flow.metadata.name} {verb} (namespace {namespace})")
        phase = (obj.get("status") or {}).get("phase")
        if verb == "configured" and phase in clustercli.TERMINAL:
            print(f"note: this flow already finished ({phase}); delete it to run it again")
        if not args.watch:
            return EXIT_OK
        final = await clustercli.follow(api, namespace, flow.metadata.name, on_status)
        print(clustercli.render_flow(final))
        return EXIT_OK if final["status"]["phase"] == "Succeeded" else EXIT_FLOW_FAILED

    code: int = _on_cluster(args, work)
    return code


def _cmd_get(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from flowcraft import clustercli  # noqa: PLC0415

    async def work(api: Any, default_ns: str) -> Any:
        return await clustercli.get_flow(api, args.namespace or default_ns, args.name)

    flow = _on_cluster(args, work)
    if args.output == "json":
        json.dump(flow, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(clustercli.render_flow(flow))
    return EXIT_OK


def _cmd_logs(args: argparse.Namespace) -> int:
    from flowcraft import clustercli  # noqa: PLC0415

    async def work(api: Any, default_ns: str) -> Any:
        return await clustercli.node_logs(api, args.namespace or default_ns, args.name, args.node)

    entries = _on_cluster(args, work)
    for entry in entries:
        if args.node is None:
            print(f"==> {entry.node} ({entry.pod or 'no pod'}) <==")
        elif entry.pod is None:
            print(f"node {entry.node} has no pod (not started, or already cleaned up)")
        sys.stdout.write(
            entry.text if entry.text.endswith("\n") or not entry.text else entry.text + "\n"
        )
    return EXIT_OK
