"""Command-line surface of the operator, shared by ``flowcraft operator`` and ``python -m``.

Why separate from the controller: the CLI builds its parser on every invocation, so this
module imports only argparse; kopf, aiohttp and the kubernetes client load in :func:`run`.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The operator's flags."""
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        action="append",
        dest="namespaces",
        metavar="NS",
        help="watch this namespace (repeatable)",
    )
    scope.add_argument(
        "--all-namespaces", "-A", action="store_true", help="watch every namespace (the default)"
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster)")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument(
        "--metrics-port", type=int, metavar="PORT", help="serve Prometheus /metrics on PORT"
    )
    parser.add_argument(
        "--liveness-port",
        type=int,
        metavar="PORT",
        help="serve kopf's liveness probe on http://0.0.0.0:PORT/healthz",
    )
    parser.add_argument(
        "--runner-image",
        metavar="IMAGE",
        help="image for script/python nodes of flows without spec.image "
        "(default: flowcraft-runner:<version>)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")


def run(args: argparse.Namespace) -> int:
    """Run the operator until SIGINT/SIGTERM; returns the exit code."""
    from flowcraft.drivers.kubernetes.controller import operator_main  # noqa: PLC0415

    return operator_main(
        None if args.all_namespaces or not args.namespaces else list(args.namespaces),
        kubeconfig=args.kubeconfig,
        context=args.context,
        metrics_port=args.metrics_port,
        liveness_port=args.liveness_port,
        runner_image=args.runner_image,
        verbose=args.verbose,
    )
