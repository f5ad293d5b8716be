"""``python -m flowcraft.drivers.kubernetes``: run the operator (same flags as ``flowcraft
operator``). Exists so images, Makefile targets and test harnesses can start the operator
without going through the CLI package."""

from __future__ import annotations

import argparse

from flowcraft.drivers.kubernetes.controller import operator_main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The operator's flags; the CLI's ``operator`` subcommand reuses this."""
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
        "--all-namespaces", "-A", action="store_true", help="watch every namespace (default)"
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster)")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on PORT")
    parser.add_argument(
        "--runner-image", help="image for script/python nodes of flows without spec.image"
    )
    parser.add_argument("--verbose", "-v", action="store_true")


def run(args: argparse.Namespace) -> int:
    return operator_main(
        None if args.all_namespaces else args.namespaces,
        kubeconfig=args.kubeconfig,
        context=args.context,
        metrics_port=args.metrics_port,
        runner_image=args.runner_image,
        verbose=args.verbose,
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="flowcraft operator", description="Run the operator.")
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
