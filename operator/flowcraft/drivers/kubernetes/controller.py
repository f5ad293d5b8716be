"""The kopf wiring: watch Flows, Jobs and pods; feed the cache; trigger reconciles.

Why so thin: handlers must not decide anything (the join trap: two branches of a join finishing
together, each judged by its own event, could each see the other still running). Each one
records what it saw and asks the per-Flow reconciler for a pass; the reconciler decides. Only
``on.event`` handlers are used: they keep no progress annotations and add no finalizers on Flows
(kopf does both for create/update/delete handlers), so the Flow's status stays the single
record, and ownerReferences, not finalizers, clean up after a deleted Flow. kopf's initial
listing of each watch is the resume path: every existing Flow gets a pass at startup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
from aiohttp import web

from flowcraft.drivers.kubernetes import crd, metrics, webhook
from flowcraft.drivers.kubernetes.builders import LABEL_MANAGED_BY, MANAGED_BY
from flowcraft.drivers.kubernetes.cache import FlowKey, ObjectCache
from flowcraft.drivers.kubernetes.client import Client, ConfigError, Connection, load_connection
from flowcraft.drivers.kubernetes.leader import LeaderElector, Timing
from flowcraft.drivers.kubernetes.policy import Policy
from flowcraft.drivers.kubernetes.reconcile import Reconciler

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ElectionOptions:
    """Leader election (module ``leader``): hold the Lease before watching or writing."""

    namespace: str | None = None  # None: see lease_namespace()
    name: str = "flowcraft-operator"
    identity: str | None = None  # None: hostname plus a random suffix
    timing: Timing = field(default_factory=Timing)


@dataclass(frozen=True)
class OperatorOptions:
    namespaces: tuple[str, ...] | None  # None: all namespaces
    kubeconfig: str | None = None
    context: str | None = None
    metrics_port: int | None = None
    metrics_config: metrics.MetricsConfig = field(default_factory=metrics.MetricsConfig)
    liveness_port: int | None = None
    runner_image: str | None = None  # overrides the default runner image (not spec.image)
    batch_mode: str = "indexed"  # reconcile.BATCH_MODES: how batch items run
    policy: Policy = field(default_factory=Policy)  # what Flows may run (off by default)
    pod_creation_timeout: float = 300.0  # seconds a Job may go without a pod (outcomes.no_pod)
    webhook_port: int | None = None  # the validating admission webhook (webhook.py)
    webhook_cert_dir: str | None = None
    election: ElectionOptions | None = None  # None: no election, this process writes at once
    verbose: bool = False


def lease_namespace(options: OperatorOptions, conn: Connection) -> str:
    """Where the Lease lives: explicit, else the pod's namespace in-cluster, else the first
    watched namespace, else the kubeconfig's namespace, else ``default``."""
    election = options.election
    if election is not None and election.namespace:
        return election.namespace
    if conn.in_cluster and conn.default_namespace:
        return conn.default_namespace
    if options.namespaces:
        return options.namespaces[0]
    return conn.default_namespace or "default"


@contextlib.asynccontextmanager
async def _standby_health(port: int | None) -> AsyncIterator[None]:
    """While a standby waits for the Lease, its probes answer 200 (it is healthy, and a
    rollout may proceed); kopf's own endpoint takes the port over once it leads."""
    if port is None:
        yield
        return

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"standby": True})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", port, reuse_address=True)
    await site.start()
    try:
        yield
    finally:
        await runner.cleanup()


def _raw(event: Any) -> dict[str, Any]:
    obj = event.get("object") if isinstance(event, dict) else None
    return obj if isinstance(obj, dict) else {}


def build_registry(
    conn: Connection, cache: ObjectCache, reconciler: Reconciler, client: Client
) -> kopf.OperatorRegistry:
    """The handlers of one operator instance (a private registry: no module-level state)."""
    registry = kopf.OperatorRegistry()
    managed = {LABEL_MANAGED_BY: MANAGED_BY}
    loop_time = asyncio.get_running_loop().time

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        token = conn.token()
        return kopf.ConnectionInfo(
            server=conn.server,
            ca_path=conn.ca_path,
            insecure=conn.insecure,
            scheme=token[0] if token else None,
            token=token[1] if token else None,
            certificate_path=conn.cert_path,
            private_key_path=conn.key_path,
            default_namespace=conn.default_namespace,
        )

    @kopf.on.event(crd.GROUP, crd.VERSION, crd.PLURAL, registry=registry)
    async def flow_event(event: Any, namespace: str | None, name: str, **_: Any) -> None:
        if namespace is None:
            return  # Flows are namespaced; nothing else can arrive here
        key = FlowKey(namespace, name)
        # A child Flow (a subflow node's run) that ended or vanished: its parent decides next.
        parent = reconciler.subflows.child_changed(
            _raw(event), deleted=event.get("type") == "DELETED"
        )
        if parent is not None:
            reconciler.trigger(parent)
        if event.get("type") == "DELETED":
            reconciler.forget(key)
            return
        rv = (_raw(event).get("metadata") or {}).get("resourceVersion")
        reconciler.flow_changed(key, rv)

    @kopf.on.event("batch", "v1", "jobs", labels=managed, registry=registry)
    async def job_event(event: Any, **_: Any) -> None:
        deleted = event.get("type") == "DELETED"
        key = cache.put_job(_raw(event), deleted=deleted, seen_at=loop_time())
        if key is not None:
            reconciler.trigger(key)

    @kopf.on.event("", "v1", "pods", labels=managed, registry=registry)
    async def pod_event(event: Any, **_: Any) -> None:
        deleted = event.get("type") == "DELETED"
        key = cache.put_pod(_raw(event), deleted=deleted, seen_at=loop_time())
        if key is not None:
            reconciler.trigger(key)

    @kopf.on.event("", "v1", "configmaps", labels=managed, registry=registry)
    async def configmap_event(event: Any, **_: Any) -> None:
        # Only deletions matter: an output or context ConfigMap deleted while its Flow runs
        # is restored by the Flow's next pass (pods that mount it would wait forever).
        if event.get("type") != "DELETED":
            return
        key = cache.put_configmap(_raw(event), deleted=True)
        if key is not None:
            reconciler.trigger(key)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await reconciler.close()
        await client.close()

    return registry


class _NoDiffBase(kopf.DiffBaseStorage):
    """kopf's diff base, switched off: only ``on.event`` handlers are registered here.

    kopf deep-copies every watched object (and clears its progress fields) on every event to
    compute a diff that only create/update handlers use. Profiled at the throughput limit,
    that was a quarter of the operator's CPU; without a base, kopf skips the copies.
    """

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        return None

    def fetch(self, *, body: Any) -> Any:
        return None

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        return None


def _settings(namespaced: bool) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.diffbase_storage = _NoDiffBase()
    # Watching named namespaces needs no cluster-scoped rights: without this, kopf lists
    # namespaces and CRDs cluster-wide (forbidden to a namespaced Role) and stalls for ~1 min.
    # The CRD must then exist when the operator starts. Cluster-wide mode keeps scanning, so
    # a CRD installed after the operator is still picked up.
    settings.scanning.disabled = namespaced
    # kopf posts only its own warnings/errors as Events; ours are posted by the reconciler.
    settings.posting.level = logging.WARNING
    settings.peering.standalone = True
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    return settings


async def run_operator(options: OperatorOptions) -> None:
    """Run until cancelled or signalled (kopf installs SIGINT/SIGTERM handlers)."""
    conn = load_connection(options.kubeconfig, options.context)
    client = Client(conn)
    metrics.configure(options.metrics_config)
    if options.metrics_port is not None:
        metrics.serve(options.metrics_port)
    # The webhook only validates (no writes): a standby answers admission reviews too.
    hook = None
    if options.webhook_port is not None and options.webhook_cert_dir is not None:
        hook = await webhook.serve(options.webhook_port, Path(options.webhook_cert_dir))
    instance = socket.gethostname()
    elector: LeaderElector | None = None
    renewing: asyncio.Task[None] | None = None
    try:
        if options.election is not None:
            elector = LeaderElector(
                client,
                lease_namespace(options, conn),
                options.election.name,
                identity=options.election.identity,
                timing=options.election.timing,
            )
            instance = elector.identity  # Events name the writer (reportingInstance)
            metrics.current().leader.set(0)
            async with _standby_health(options.liveness_port):
                await elector.acquire()
            client.write_guard = elector.may_write
            renewing = asyncio.create_task(elector.keep_renewing())
        metrics.current().leader.set(1)
        await _operate(options, conn, client, instance)
    finally:
        if renewing is not None:
            renewing.cancel()
        if elector is not None:
            # After kopf's cleanup (the reconciler has closed): no write can follow this.
            await elector.release()
            await client.close()
        if hook is not None:
            await hook.cleanup()


async def _operate(
    options: OperatorOptions, conn: Connection, client: Client, instance: str
) -> None:
    cache = ObjectCache()
    reconciler = Reconciler(
        client,
        cache,
        instance=instance,
        runner_image=options.runner_image,
        batch_mode=options.batch_mode,
        policy=options.policy,
        pod_creation_timeout=options.pod_creation_timeout,
    )
    registry = build_registry(conn, cache, reconciler, client)
    await kopf.operator(
        registry=registry,
        settings=_settings(options.namespaces is not None),
        standalone=True,
        # An explicit identity: kopf would otherwise look the uid up in /etc/passwd.
        identity=f"flowcraft-operator@{socket.gethostname()}",  # type: ignore[arg-type]
        clusterwide=options.namespaces is None,
        liveness_endpoint=(
            f"http://0.0.0.0:{options.liveness_port}/healthz"
            if options.liveness_port is not None
            else None
        ),
        namespaces=options.namespaces or (),
    )


def operator_main(
    namespaces: list[str] | None,
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    metrics_port: int | None = None,
    metrics_config: metrics.MetricsConfig | None = None,
    liveness_port: int | None = None,
    runner_image: str | None = None,
    batch_mode: str = "indexed",
    policy: Policy | None = None,
    pod_creation_timeout: float = 300.0,
    webhook_port: int | None = None,
    webhook_cert_dir: str | None = None,
    election: ElectionOptions | None = None,
    verbose: bool = False,
) -> int:
    """Entry point for ``flowcraft operator``: ``namespaces=None`` watches all namespaces."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # kopf logs every handler call at INFO: keep it to warnings unless asked to be verbose.
    logging.getLogger("kopf").setLevel(logging.INFO if verbose else logging.WARNING)
    # kopf's probe server logs every kubelet probe of /healthz through aiohttp.access.
    logging.getLogger("aiohttp.access").setLevel(logging.INFO if verbose else logging.WARNING)
    if verbose:
        logging.getLogger("flowcraft").setLevel(logging.DEBUG)
    options = OperatorOptions(
        namespaces=tuple(namespaces) if namespaces is not None else None,
        kubeconfig=kubeconfig,
        context=context,
        metrics_port=metrics_port,
        metrics_config=metrics_config or metrics.MetricsConfig(),
        liveness_port=liveness_port,
        runner_image=runner_image,
        batch_mode=batch_mode,
        policy=policy or Policy(),
        pod_creation_timeout=pod_creation_timeout,
        webhook_port=webhook_port,
        webhook_cert_dir=webhook_cert_dir,
        election=election,
        verbose=verbose,
    )
    try:
        asyncio.run(run_operator(options))
    except ConfigError as exc:
        logger.error("%s", exc)
        return 2
    return 0
