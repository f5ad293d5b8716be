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

Output (``run``, local ``resume``): ``--output text`` a summary table on stdout, ``json`` the
final context, ``result`` the whole result as JSON shaped like flowcraft's ``WorkflowResult``;
errors of a run that did not succeed always reach stderr, also with ``--quiet``. What is printed
and how lives in :mod:`flowcraft.cli_render`. A flow with ``spec.suspend: true`` runs anyway,
with a warning: on a cluster suspend holds a Flow until someone unsuspends it, locally nobody
could, and ``run`` is the explicit request to start now.

``flowcraft operator`` hands over to the Kubernetes driver's entry module (its flags and exit
codes are documented there). ``submit``, ``get``, ``logs`` and ``resume FLOW`` talk to the
cluster of the current kubeconfig (``--kubeconfig``/``$KUBECONFIG``); they live in
:mod:`flowcraft.cli_cluster`. When the cluster cannot be reached or the Flow does not exist
they print one line and exit 3.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowcraft.cli_args import (
    EXIT_AWAITING,
    EXIT_BROKEN_PIPE,
    EXIT_CLUSTER,
    EXIT_FLOW_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    ClusterError,
    UsageError,
    blueprints_argument,
    flow_arguments,
    load_blueprints_args,
    load_flow_args,
    output_argument,
    quiet_argument,
)
from flowcraft.contract import DEFAULT_OUT_LIMIT

if TYPE_CHECKING:
    from flowcraft.drivers.local import RunResult
    from flowcraft.drivers.local_state import RunState
    from flowcraft.model import Flow, FlowStatus


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
    except BrokenPipeError:
        # The reader of our stdout went away (`flowcraft run ... | head`): stop quietly, as
        # Unix tools do, instead of a traceback; 141 is what a shell reports for SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
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
        "directory is kept and stderr shows the flowcraft resume command. Errors of a run that "
        "did not succeed always go to stderr, also with --quiet. A flow with spec.suspend: true "
        "runs anyway, with a warning (suspend holds a Flow on a cluster until it is "
        "unsuspended; run is the request to start now).",
    )
    flow_arguments(run)
    blueprints_argument(run)
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="[NODE.]KEY=VALUE",
        help="override a node param (repeatable)",
    )
    output_argument(run)
    run.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="keep the run's files (inputs, results, logs) under DIR "
        "(default: a temporary directory, removed when the flow succeeds)",
    )
    quiet_argument(run)
    run.add_argument(
        "--no-output-limit",
        action="store_true",
        help="lift the per-node result limit (1 MiB, as on the cluster, where a result is "
        "stored in one ConfigMap)",
    )
    run.set_defaults(handler=_cmd_run)

    validate = commands.add_parser(
        "validate",
        help="check a flow without running it",
        description="Check a flow without running it. Exit code: 0 valid, 2 invalid.",
    )
    flow_arguments(validate)
    blueprints_argument(validate)
    validate.set_defaults(handler=_cmd_validate)
    from flowcraft import cli_cluster  # noqa: PLC0415 - the Kubernetes client loads lazily

    cli_cluster.add_commands(commands, resume_handler=cmd_resume)
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


def _cmd_validate(args: argparse.Namespace) -> int:
    from flowcraft.cli_render import plural  # noqa: PLC0415

    if _validate_blueprint(args):
        return EXIT_OK
    flow = load_flow_args(args)
    blueprints = load_blueprints_args(args, flow)
    nodes, edges = plural(len(flow.spec.nodes), "node"), plural(len(flow.spec.edges), "edge")
    used = f", {plural(len(blueprints), 'blueprint')}" if blueprints else ""
    print(f"ok: flow {flow.metadata.name}: {nodes}, {edges}{used}")
    return EXIT_OK


def _validate_blueprint(args: argparse.Namespace) -> bool:
    """``flowcraft validate`` of a ``kind: Blueprint`` manifest: the blueprint checked alone
    (what the webhook checks at ``kubectl apply``). False when FLOW is not one."""
    from flowcraft.cli_render import plural  # noqa: PLC0415
    from flowcraft.model import FlowValidationError  # noqa: PLC0415
    from flowcraft.model.blueprint import parse_blueprint  # noqa: PLC0415
    from flowcraft.model.kubectl_yaml import read_yaml  # noqa: PLC0415

    try:
        data, _ = read_yaml(args.flow.read_text(encoding="utf-8"), reader="kubectl (YAML 1.1)")
    except Exception:  # unreadable or not YAML: the flow loader reports it precisely
        return False
    if not isinstance(data, dict) or data.get("kind") != "Blueprint":
        return False
    for flag in ("functions", "initial_context", "blueprints"):
        if getattr(args, flag, None):
            raise UsageError(
                f"--{flag.replace('_', '-')} applies to a flow; {args.flow} is a Blueprint, "
                "checked alone (the functions it does not define are its parent flow's)"
            )
    try:
        blueprint = parse_blueprint(data, source=str(args.flow))
    except FlowValidationError as err:
        raise UsageError(str(err)) from None
    spec = blueprint.spec
    nodes, edges = plural(len(spec.nodes), "node"), plural(len(spec.edges), "edge")
    print(f"ok: blueprint {blueprint.blueprint_id}: {nodes}, {edges}")
    return True


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

    flow = apply_params(load_flow_args(args), args.param)
    blueprints = load_blueprints_args(args, flow)
    if flow.spec.suspend:
        # On a cluster, suspend holds a Flow until someone unsuspends it; locally nobody
        # could, and `run` is the explicit request to start now.
        print(
            "warning: spec.suspend: true is ignored by flowcraft run (the flow runs now; on a "
            "cluster it would wait until spec.suspend is set to false)",
            file=sys.stderr,
        )
        flow = flow.model_copy(update={"spec": flow.spec.model_copy(update={"suspend": False})})
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
        out_limit=None if args.no_output_limit else DEFAULT_OUT_LIMIT,
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

    from flowcraft.cli_render import Progress, report_failure, result_document  # noqa: PLC0415
    from flowcraft.drivers.local import LocalRunner  # noqa: PLC0415
    from flowcraft.drivers.local_state import save_state  # noqa: PLC0415

    progress = Progress(sys.stderr, enabled=not args.quiet)
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
    if args.output in ("json", "result"):
        document = result.context if args.output == "json" else result_document(result)
        json.dump(document, sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
        sys.stdout.flush()
        if not args.quiet:
            progress.summary(result, sys.stderr)
    elif not args.quiet:
        progress.summary(result, sys.stdout)
    report_failure(result, sys.stderr)
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


def cmd_resume(args: argparse.Namespace) -> int:
    data = _resume_data(args.data)
    target = str(args.target)
    if Path(target).is_dir() or "/" in target:
        for flag in ("namespace", "kubeconfig", "context"):
            if getattr(args, flag) is not None:
                raise UsageError(
                    f"--{flag} names a Flow on a cluster; {target!r} is a local run directory"
                )
        return _resume_local(args, Path(target), data)
    from flowcraft.cli_cluster import resume_cluster  # noqa: PLC0415

    return resume_cluster(args, target, data)


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


def _pid() -> int:
    import os  # noqa: PLC0415

    return os.getpid()


# Node phase -> (progress tag, ANSI colour).
