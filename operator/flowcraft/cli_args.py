"""The ``flowcraft`` command line's shared vocabulary: exit codes, the two error kinds, the flags
every flow-taking command has, and reading a flow (+ functions, initial context, blueprints)
from them.

Why a module of its own: both the local commands (``cli``) and the cluster commands
(``cli_cluster``) load flows the same way and exit with the same codes; keeping these here lets
each of them import it without importing the other.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowcraft.model import Flow
    from flowcraft.model.blueprint import Blueprint

EXIT_OK = 0
EXIT_FLOW_FAILED = 1
EXIT_INVALID = 2
EXIT_CLUSTER = 3
EXIT_AWAITING = 4
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class UsageError(Exception):
    """Bad command-line input; printed as ``flowcraft: error: ...`` with exit code 2."""


class ClusterError(Exception):
    """The cluster could not be reached, refused a request, or lacks the Flow (exit code 3)."""


def output_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        "-o",
        choices=("text", "json", "result"),
        default="text",
        help="text: a summary table (default); json: the final context on stdout; result: "
        "the whole result on stdout as JSON, shaped like flowcraft's WorkflowResult (status, "
        "context, serializedContext, errors) plus phase, message and per-node status",
    )


def quiet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress lines and no summary"
    )


def flow_arguments(parser: argparse.ArgumentParser) -> None:
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


def blueprints_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--blueprints",
        type=Path,
        action="append",
        default=[],
        metavar="FILE_OR_DIR",
        help="blueprints that subflow nodes run, by id (repeatable): a blueprint JSON/YAML, "
        "a Blueprint or Flow manifest, or a directory of them",
    )


def load_blueprints_args(args: argparse.Namespace, flow: Flow) -> dict[str, Blueprint] | None:
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


def load_flow_args(args: argparse.Namespace) -> Flow:
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
