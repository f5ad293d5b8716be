"""Command-line surface of the operator, shared by ``flowcraft operator`` and ``python -m``.

Why separate from the controller: the CLI builds its parser on every invocation, so this
module imports only argparse; kopf, aiohttp and the kubernetes client load in :func:`run`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


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
        "--metrics-flow-label",
        action="store_true",
        help="add the Flow's name as a `flow` label to node and flow metrics "
        "(one series per flow name: opt in knowingly)",
    )
    for name, what in (
        ("node-duration", "node attempt run time"),
        ("schedule-latency", "node schedule latency"),
        ("flow-duration", "flow duration"),
    ):
        parser.add_argument(
            f"--{name}-buckets",
            type=_buckets,
            metavar="S,S,...",
            help=f"histogram bucket bounds of the {what}, in seconds, increasing",
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
    parser.add_argument(
        "--batch-jobs",
        choices=("per-item", "indexed"),
        default=os.environ.get("FLOWCRAFT_BATCH_JOBS", "indexed"),
        help="how batch items run: a Job per item attempt, or one Indexed Job per round for "
        "first attempts (retries and container workers: a Job each); default "
        "$FLOWCRAFT_BATCH_JOBS, else indexed (measured: bench/README.md)",
    )
    parser.add_argument(
        "--pod-creation-timeout",
        type=_seconds,
        default=os.environ.get("FLOWCRAFT_POD_CREATION_TIMEOUT", "300"),
        metavar="S",
        help="fail a node or batch-item attempt whose Job got no pod for S seconds after it "
        "was created (a ResourceQuota, an admission webhook refusing pods, a Job controller "
        "that is not running; `kubectl describe job` says which); the Job is deleted and the "
        "node's retries apply; default $FLOWCRAFT_POD_CREATION_TIMEOUT, else 300",
    )
    parser.add_argument(
        "--webhook-port",
        type=int,
        metavar="PORT",
        help="serve the validating admission webhook on https://0.0.0.0:PORT/validate-flow "
        "(needs --webhook-cert-dir)",
    )
    parser.add_argument(
        "--webhook-cert-dir",
        metavar="DIR",
        help="directory holding the webhook's tls.crt and tls.key (a kubernetes.io/tls Secret)",
    )
    policy = parser.add_argument_group(
        "policy for shared clusters (all off by default; a Flow that breaks one fails with "
        "a message naming the node)"
    )
    policy.add_argument(
        "--allowed-images",
        type=_policy_arg("parse_images"),
        metavar="PATTERN,...",
        help="images node pods may run (fnmatch patterns, e.g. 'registry.example.com/*'); "
        "the operator's runner image is always allowed",
    )
    policy.add_argument(
        "--default-node-requests",
        type=_policy_arg("parse_resources"),
        metavar="R=Q,...",
        help="requests of node pods whose function sets none for R (e.g. cpu=100m,memory=128Mi)",
    )
    policy.add_argument(
        "--default-node-limits",
        type=_policy_arg("parse_resources"),
        metavar="R=Q,...",
        help="limits of node pods whose function sets none for R (e.g. memory=512Mi)",
    )
    policy.add_argument(
        "--max-node-resources",
        type=_policy_arg("parse_resources"),
        metavar="R=Q,...",
        help="the most a node pod may request or be limited to, per resource "
        "(e.g. cpu=2,memory=4Gi)",
    )
    policy.add_argument(
        "--max-flow-parallelism",
        type=int,
        metavar="N",
        help="cap on each Flow's spec.parallelism (unset there: N)",
    )
    election = parser.add_argument_group(
        "leader election",
        "run several replicas: one leads (holds a coordination.k8s.io Lease), the others wait "
        "and take over when it is gone; timing as client-go's leaderelection",
    )
    election.add_argument(
        "--leader-elect",
        action="store_true",
        help="hold the Lease before watching or writing anything (the chart turns it on)",
    )
    election.add_argument(
        "--leader-election-namespace",
        metavar="NS",
        help="namespace of the Lease (default: the pod's namespace in-cluster, else the "
        "first --namespace, else the kubeconfig's namespace, else default)",
    )
    election.add_argument(
        "--leader-election-name",
        default="flowcraft-operator",
        metavar="NAME",
        help="name of the Lease (default: flowcraft-operator)",
    )
    election.add_argument(
        "--leader-election-identity",
        metavar="ID",
        help="this process's holder identity (default: hostname plus a random suffix)",
    )
    for flag, default, what in (
        ("--lease-duration", 15.0, "how long a standby waits after the Lease last changed"),
        ("--renew-deadline", 10.0, "the leader stops (exits) when not renewed for this long"),
        ("--retry-period", 2.0, "how often the leader renews and a standby retries"),
    ):
        election.add_argument(
            flag, type=float, default=default, metavar="S", help=f"{what} (default {default:g} s)"
        )
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")


def _policy_arg(name: str) -> Any:
    def parse(text: str) -> Any:
        from flowcraft.drivers.kubernetes import policy  # noqa: PLC0415

        try:
            return getattr(policy, name)(text)
        except policy.PolicyError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _buckets(text: str) -> tuple[float, ...]:
    from flowcraft.drivers.kubernetes.metrics import parse_buckets  # noqa: PLC0415

    try:
        return parse_buckets(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    """Run the operator until SIGINT/SIGTERM; returns the exit code."""
    from flowcraft.drivers.kubernetes.controller import operator_main  # noqa: PLC0415
    from flowcraft.drivers.kubernetes.metrics import MetricsConfig  # noqa: PLC0415
    from flowcraft.drivers.kubernetes.policy import Policy, PolicyError  # noqa: PLC0415

    if (args.webhook_port is None) != (args.webhook_cert_dir is None):
        print("flowcraft operator: --webhook-port and --webhook-cert-dir go together")
        return 2
    defaults = MetricsConfig()
    metrics_config = MetricsConfig(
        flow_label=args.metrics_flow_label,
        node_duration_buckets=args.node_duration_buckets or defaults.node_duration_buckets,
        schedule_latency_buckets=args.schedule_latency_buckets or defaults.schedule_latency_buckets,
        flow_duration_buckets=args.flow_duration_buckets or defaults.flow_duration_buckets,
    )

    try:
        policy = Policy(
            allowed_images=args.allowed_images or (),
            default_requests=args.default_node_requests or {},
            default_limits=args.default_node_limits or {},
            max_resources=args.max_node_resources or {},
            max_parallelism=args.max_flow_parallelism,
        )
    except PolicyError as exc:
        print(f"flowcraft operator: {exc}", file=sys.stderr)
        return 2
    election = None
    if args.leader_elect:
        from flowcraft.drivers.kubernetes.controller import ElectionOptions  # noqa: PLC0415
        from flowcraft.drivers.kubernetes.leader import Timing  # noqa: PLC0415

        try:
            timing = Timing(args.lease_duration, args.renew_deadline, args.retry_period)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        election = ElectionOptions(
            namespace=args.leader_election_namespace,
            name=args.leader_election_name,
            identity=args.leader_election_identity,
            timing=timing,
        )

    return operator_main(
        None if args.all_namespaces or not args.namespaces else list(args.namespaces),
        kubeconfig=args.kubeconfig,
        context=args.context,
        metrics_port=args.metrics_port,
        metrics_config=metrics_config,
        liveness_port=args.liveness_port,
        runner_image=args.runner_image,
        batch_mode=args.batch_jobs,
        policy=policy,
        pod_creation_timeout=args.pod_creation_timeout,
        webhook_port=args.webhook_port,
        webhook_cert_dir=args.webhook_cert_dir,
        election=election,
        verbose=args.verbose,
    )
