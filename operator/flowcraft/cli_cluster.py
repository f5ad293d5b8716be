"""``flowcraft submit | get | logs | resume FLOW``: the commands that talk to a cluster.

Why a module of its own: ``cli`` holds the local commands and the shared flags; these need a
kubeconfig and the Kubernetes client, reached through :mod:`flowcraft.clustercli` (which holds
the pure views and the API paths). Every API trouble becomes one line and exit code 3
(:class:`flowcraft.cli_args.ClusterError`); a submit the cluster must refuse (a changed spec of an
existing Flow: see ``model.flow.MUTABLE_SPEC_FIELDS``) is explained before anything is sent, with
what the user can do, and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from flowcraft.cli_args import (
    EXIT_FLOW_FAILED,
    EXIT_OK,
    ClusterError,
    UsageError,
    flow_arguments,
    load_flow_args,
    output_argument,
    quiet_argument,
)
from flowcraft.cli_render import Progress


def add_commands(commands: Any, *, resume_handler: Callable[[argparse.Namespace], int]) -> None:
    """The cluster subcommands of the ``flowcraft`` parser (``commands`` is its subparsers).

    ``resume`` takes a local run directory or a Flow name, so its handler (``cli.cmd_resume``,
    which picks one) is handed in rather than imported: this module never imports ``cli``."""

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
        description="Validate FLOW, then create it on the cluster. If the Flow exists, only "
        "the fields that may change on an existing Flow (suspend, parallelism, "
        "activeDeadlineSeconds, resume) and its labels and annotations are updated; if any "
        "other part of the spec differs, nothing is sent and the command says what to do "
        "(delete the Flow and submit again, or use a new name). Exit code with --watch: 0 "
        "Succeeded, 1 Failed or Cancelled; 2 invalid input or a spec that cannot change, 3 "
        "cluster unreachable or request refused.",
    )
    flow_arguments(submit)
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
    output_argument(resume)
    quiet_argument(resume)
    resume.set_defaults(handler=resume_handler)


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

    flow = load_flow_args(args)
    doc = flow.to_dict()
    progress = Progress(sys.stderr, enabled=args.watch)

    def on_status(status: dict[str, Any]) -> None:
        progress.update(FlowStatus.model_validate(status))

    async def work(api: Any, default_ns: str) -> int:
        namespace = args.namespace or flow.metadata.namespace or default_ns
        body = clustercli.flow_manifest(doc, namespace)
        verb, obj = await clustercli.submit(api, body)
        print(f"flow.flowcraft.io/{flow.metadata.name} {verb} (namespace {namespace})")
        phase = (obj.get("status") or {}).get("phase")
        if verb != "created" and phase in clustercli.TERMINAL:
            print(f"note: this flow already finished ({phase}); delete it to run it again")
        if not args.watch:
            return EXIT_OK
        final = await clustercli.follow(api, namespace, flow.metadata.name, on_status)
        print(clustercli.render_flow(final))
        return EXIT_OK if final["status"]["phase"] == "Succeeded" else EXIT_FLOW_FAILED

    try:
        code: int = _on_cluster(args, work)
    except clustercli.SubmitRefused as err:
        raise UsageError(str(err)) from None
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


def resume_cluster(args: argparse.Namespace, name: str, data: Any) -> int:
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
