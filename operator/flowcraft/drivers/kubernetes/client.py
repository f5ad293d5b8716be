"""The one module that talks to the Kubernetes API (and the only one importing ``kubernetes``).

Why it exists: the rest of the operator should think in manifests (plain dicts) and in a few
typed outcomes (not found, already exists, conflict, invalid), never in HTTP or in a client
library's generated classes. Keeping all I/O here makes the builders and the reconcile logic
testable and lets us swap the transport without touching them.

Transport: ``kubernetes`` only loads the connection settings (kubeconfig or in-cluster service
account, including token refresh); requests go through aiohttp, which kopf already runs on, so
a Job create is a real coroutine on the operator's loop (no thread-pool hop in the latency path).
"""

from __future__ import annotations

import json
import logging
import os
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import kubernetes

logger = logging.getLogger(__name__)

# The kubernetes package is only partly typed; its config loaders are used through Any.
_kube_config: Any = kubernetes.config
_kube_client: Any = kubernetes.client

Manifest = dict[str, Any]

FLOW_GROUP = "flowcraft.io"
FLOW_VERSION = "v1alpha1"
FLOW_PLURAL = "flows"
BLUEPRINT_PLURAL = "blueprints"
LEASE_API = "/apis/coordination.k8s.io/v1/"


class ApiError(Exception):
    """An API request failed; ``status``/``reason`` come from the server's Status object."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(ApiError):
    pass


class AlreadyExists(ApiError):
    pass


class Conflict(ApiError):
    """Optimistic-concurrency failure: the object changed since it was read."""


class Invalid(ApiError):
    """422: the server rejected the object (schema, CEL rules, immutable fields)."""


class Forbidden(ApiError):
    pass


class ServerError(ApiError):
    """5xx, or the request could not be completed at all (the cause is chained)."""


class NotLeader(ServerError):
    """A write refused before it was sent: this process no longer holds the leader Lease
    (see :mod:`flowcraft.drivers.kubernetes.leader`); the process is about to exit."""


def _error_for(status: int, reason: str, message: str) -> ApiError:
    if status == 404:
        return NotFound(status, reason, message)
    if status == 409 and reason == "AlreadyExists":
        return AlreadyExists(status, reason, message)
    if status == 409:
        return Conflict(status, reason, message)
    if status == 422:
        return Invalid(status, reason, message)
    if status in (401, 403):
        return Forbidden(status, reason, message)
    if status >= 500:
        return ServerError(status, reason, message)
    return ApiError(status, reason, message)


@dataclass(frozen=True)
class Connection:
    """Where the API server is and how to authenticate; also handed to kopf's login."""

    server: str
    ca_path: str | None
    insecure: bool
    cert_path: str | None
    key_path: str | None
    default_namespace: str | None
    _config: Any  # kubernetes.client.Configuration: refreshes tokens on each read
    in_cluster: bool = False  # the pod's service account (default_namespace: the pod's)

    def authorization(self) -> str | None:
        value = self._config.get_api_key_with_prefix("authorization")
        if value is None:
            value = self._config.get_api_key_with_prefix("BearerToken")
        return value if isinstance(value, str) and value else None

    def token(self) -> tuple[str, str] | None:
        """(scheme, token) of the current authorization header, if any."""
        auth = self.authorization()
        if auth is None:
            return None
        scheme, _, token = auth.partition(" ")
        return (scheme.capitalize(), token) if token else ("Bearer", scheme)


def without_managed_fields(doc: Manifest) -> Manifest:
    """``doc`` (a response just parsed, owned by the caller) less ``metadata.managedFields``.

    The operator keeps the Flow its last status write returned, for every active Flow, and
    sends it back as the base of the next write. Nobody here reads managedFields, yet they are
    half of a Flow's parsed objects (the status manager's entry lists every status field):
    at 1,000 active Flows, tens of MiB. A PUT without them keeps the server's (an update
    whose object has no managedFields takes the live object's), and is smaller to send.
    """
    meta = doc.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return doc


class ConfigError(Exception):
    """No usable cluster configuration (missing or broken kubeconfig, no in-cluster account)."""


def load_user_connection(kubeconfig: str | None = None, context: str | None = None) -> Connection:
    """For commands a person runs: their kubeconfig first, the in-cluster account only when
    there is no kubeconfig at all. Raises :class:`ConfigError` with a readable message."""
    if kubeconfig is None:
        env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
        default = os.path.expanduser("~/.kube/config")
        if env:
            kubeconfig = env
        elif os.path.exists(default):
            kubeconfig = default
        elif "KUBERNETES_SERVICE_HOST" not in os.environ:
            raise ConfigError("no kubeconfig: set KUBECONFIG or pass --kubeconfig")
    return load_connection(kubeconfig, context)


def load_connection(kubeconfig: str | None = None, context: str | None = None) -> Connection:
    """Kubeconfig when given (or $KUBECONFIG / ~/.kube/config), else the in-cluster account.

    Raises :class:`ConfigError` when the configuration cannot be loaded.
    """
    try:
        return _load_connection(kubeconfig, context)
    except (_kube_config.ConfigException, OSError, ValueError, KeyError, TypeError) as exc:
        where = kubeconfig or os.environ.get("KUBECONFIG") or "the default kubeconfig"
        raise ConfigError(f"cannot load the cluster configuration from {where}: {exc}") from exc


def _load_connection(kubeconfig: str | None, context: str | None) -> Connection:
    config = _kube_client.Configuration()
    in_cluster = kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ
    default_namespace: str | None = None
    if in_cluster:
        _kube_config.load_incluster_config(client_configuration=config)
        ns_file = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
        if os.path.exists(ns_file):
            with open(ns_file, encoding="utf-8") as fh:
                default_namespace = fh.read().strip() or None
    else:
        _kube_config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=config
        )
        _contexts, active = _kube_config.list_kube_config_contexts(config_file=kubeconfig)
        if context is not None:
            active = next((c for c in _contexts if c["name"] == context), active)
        default_namespace = (active or {}).get("context", {}).get("namespace")
    return Connection(
        server=str(config.host),
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        cert_path=config.cert_file,
        key_path=config.key_file,
        default_namespace=default_namespace,
        _config=config,
        in_cluster=in_cluster,
    )


def _ssl_context(conn: Connection) -> ssl.SSLContext | bool:
    if not conn.server.startswith("https"):
        return False
    ctx = ssl.create_default_context(cafile=conn.ca_path)
    if conn.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if conn.cert_path and conn.key_path:
        ctx.load_cert_chain(conn.cert_path, conn.key_path)
    return ctx


def _q(segment: str) -> str:
    return quote(segment, safe="")


class Client:
    """A small async surface over the handful of API calls the operator makes.

    All methods take and return plain JSON-shaped dicts (camelCase, as the API speaks).
    Create once per process; ``close()`` on shutdown.
    """

    def __init__(self, conn: Connection, *, max_connections: int = 32) -> None:
        self.connection = conn
        # With leader election: asked before every write except the Lease's own; False
        # refuses the write (NotLeader). None: no election, every write goes.
        self.write_guard: Callable[[], bool] | None = None
        self._ssl = _ssl_context(conn)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily so it binds to the loop that uses it (kopf's).
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=60),
                trust_env=False,
                json_serialize=json.dumps,
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Manifest | None = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Manifest:
        """One API call; raises a typed :class:`ApiError` (cause chained) on failure."""
        text = await self._send(method, path, body=body, query=query, content_type=content_type)
        try:
            doc = json.loads(text) if text else {}
        except ValueError as exc:
            raise ServerError(0, "BadResponse", f"{method} {path}: not JSON") from exc
        return doc if isinstance(doc, dict) else {"items": doc}

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: Manifest | list[Manifest] | None = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> str:
        if (
            self.write_guard is not None
            and method != "GET"
            and not path.startswith(LEASE_API)
            and not self.write_guard()
        ):
            raise NotLeader(0, "NotLeader", f"{method} {path}: not the leader any more")
        url = self.connection.server.rstrip("/") + path
        if query:
            url += "?" + urlencode(query)
        headers = {"Accept": accept}
        auth = self.connection.authorization()
        if auth is not None:
            headers["Authorization"] = auth
        data: bytes | None = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode()
        try:
            async with self._get_session().request(method, url, data=data, headers=headers) as resp:
                text = await resp.text()
                status = resp.status
                reason_phrase = resp.reason or ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ServerError(0, "ConnectionError", f"{method} {path}: {exc}") from exc
        if status >= 400:
            try:
                doc = json.loads(text) if text else {}
            except ValueError:
                doc = {}
            if not isinstance(doc, dict):
                doc = {}
            reason = str(doc.get("reason") or reason_phrase)
            message = str(doc.get("message") or text)
            raise _error_for(status, reason, message)
        return text

    # --- Flows -----------------------------------------------------------------------------

    def _flow_path(self, namespace: str, name: str | None = None, sub: str = "") -> str:
        path = f"/apis/{FLOW_GROUP}/{FLOW_VERSION}/namespaces/{_q(namespace)}/{FLOW_PLURAL}"
        if name is not None:
            path += f"/{_q(name)}"
        return path + sub

    async def get_flow(self, namespace: str, name: str) -> Manifest:
        """The Flow, less ``metadata.managedFields`` (see :func:`without_managed_fields`)."""
        return without_managed_fields(await self.request("GET", self._flow_path(namespace, name)))

    async def create_flow(self, namespace: str, body: Manifest) -> Manifest:
        return await self.request("POST", self._flow_path(namespace), body=body)

    async def delete_flow(self, namespace: str, name: str, *, uid: str | None = None) -> Manifest:
        """Background deletion; with ``uid``, only that object (a precondition: a different
        Flow under the same name answers Conflict)."""
        body: Manifest = {"propagationPolicy": "Background"}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        return await self.request("DELETE", self._flow_path(namespace, name), body=body)

    async def replace_flow(self, namespace: str, name: str, body: Manifest) -> Manifest:
        """PUT the whole Flow; ``body`` carries metadata.resourceVersion (→ Conflict)."""
        return await self.request("PUT", self._flow_path(namespace, name), body=body)

    async def patch_flow(self, namespace: str, name: str, patch: Manifest) -> Manifest:
        return await self.request(
            "PATCH",
            self._flow_path(namespace, name),
            body=patch,
            content_type="application/merge-patch+json",
        )

    async def json_patch_flow(
        self, namespace: str, name: str, operations: Sequence[Manifest]
    ) -> Manifest:
        """An RFC 6902 JSON Patch: unlike a merge patch, it can set a value to null."""
        text = await self._send(
            "PATCH",
            self._flow_path(namespace, name),
            body=list(operations),
            content_type="application/json-patch+json",
        )
        doc = json.loads(text) if text else {}
        return doc if isinstance(doc, dict) else {}

    async def replace_flow_status(self, namespace: str, name: str, body: Manifest) -> Manifest:
        """PUT the status subresource; ``body`` carries metadata.resourceVersion (→ Conflict).
        The Flow as written comes back less ``metadata.managedFields``."""
        return without_managed_fields(
            await self.request("PUT", self._flow_path(namespace, name, "/status"), body=body)
        )

    async def list_flows(self, namespace: str, selector: str) -> list[Manifest]:
        return await self._list(self._flow_path(namespace), selector)

    # --- Blueprints (what subflow nodes run) ---------------------------------------------

    async def list_blueprints(self, namespace: str) -> list[Manifest]:
        path = f"/apis/{FLOW_GROUP}/{FLOW_VERSION}/namespaces/{_q(namespace)}/{BLUEPRINT_PLURAL}"
        return await self._list(path, "")

    # --- Jobs ------------------------------------------------------------------------------

    async def create_job(self, namespace: str, body: Manifest) -> Manifest:
        return await self.request(
            "POST", f"/apis/batch/v1/namespaces/{_q(namespace)}/jobs", body=body
        )

    async def get_job(self, namespace: str, name: str) -> Manifest:
        return await self.request(
            "GET", f"/apis/batch/v1/namespaces/{_q(namespace)}/jobs/{_q(name)}"
        )

    async def list_jobs(self, namespace: str, selector: str) -> list[Manifest]:
        return await self._list(f"/apis/batch/v1/namespaces/{_q(namespace)}/jobs", selector)

    async def patch_job(self, namespace: str, name: str, patch: Manifest) -> Manifest:
        return await self.request(
            "PATCH",
            f"/apis/batch/v1/namespaces/{_q(namespace)}/jobs/{_q(name)}",
            body=patch,
            content_type="application/merge-patch+json",
        )

    async def delete_job(self, namespace: str, name: str, *, uid: str | None = None) -> None:
        """Background: the Job goes now, the GC removes its pods (the Job owns them).

        With ``uid``, only that object is deleted (a precondition): a different Job under the
        same name answers Conflict.
        """
        body: Manifest = {"propagationPolicy": "Background"}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        await self.request(
            "DELETE", f"/apis/batch/v1/namespaces/{_q(namespace)}/jobs/{_q(name)}", body=body
        )

    # --- Pods ------------------------------------------------------------------------------

    async def list_pods(self, namespace: str, selector: str) -> list[Manifest]:
        return await self._list(f"/api/v1/namespaces/{_q(namespace)}/pods", selector)

    async def delete_pod(
        self, namespace: str, name: str, *, uid: str | None = None, grace_seconds: int = 1
    ) -> None:
        """Delete one pod (only the object with ``uid``, a precondition) with a short grace
        period: how the operator stops an attempt that ran past its timeout."""
        body: Manifest = {"gracePeriodSeconds": grace_seconds}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        await self.request(
            "DELETE", f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(name)}", body=body
        )

    async def read_pod_log(
        self,
        namespace: str,
        name: str,
        *,
        container: str | None = None,
        tail_lines: int | None = None,
    ) -> str:
        """The pod's container log as text: the CLI's ``flowcraft logs``, and the operator's
        read of a result too large for the termination message (``outcomes.read_result``)."""
        query: dict[str, str] = {}
        if container is not None:
            query["container"] = container
        if tail_lines is not None:
            query["tailLines"] = str(tail_lines)
        return await self._send(
            "GET",
            f"/api/v1/namespaces/{_q(namespace)}/pods/{_q(name)}/log",
            query=query or None,
            accept="application/json, */*",  # the apiserver refuses a bare text/plain
        )

    # --- ConfigMaps ------------------------------------------------------------------------

    async def create_configmap(self, namespace: str, body: Manifest) -> Manifest:
        return await self.request(
            "POST", f"/api/v1/namespaces/{_q(namespace)}/configmaps", body=body
        )

    async def get_configmap(self, namespace: str, name: str) -> Manifest:
        return await self.request(
            "GET", f"/api/v1/namespaces/{_q(namespace)}/configmaps/{_q(name)}"
        )

    async def list_configmaps(self, namespace: str, selector: str) -> list[Manifest]:
        return await self._list(f"/api/v1/namespaces/{_q(namespace)}/configmaps", selector)

    # --- Leases (leader election) ----------------------------------------------------------

    def _lease_path(self, namespace: str, name: str | None = None) -> str:
        path = f"{LEASE_API}namespaces/{_q(namespace)}/leases"
        return path + (f"/{_q(name)}" if name is not None else "")

    async def get_lease(self, namespace: str, name: str) -> Manifest:
        return await self.request("GET", self._lease_path(namespace, name))

    async def create_lease(self, namespace: str, body: Manifest) -> Manifest:
        return await self.request("POST", self._lease_path(namespace), body=body)

    async def replace_lease(self, namespace: str, name: str, body: Manifest) -> Manifest:
        """PUT; ``body`` carries metadata.resourceVersion (→ Conflict if another wrote)."""
        return await self.request("PUT", self._lease_path(namespace, name), body=body)

    # --- Events ----------------------------------------------------------------------------

    async def create_event(self, namespace: str, body: Manifest) -> Manifest:
        return await self.request("POST", f"/api/v1/namespaces/{_q(namespace)}/events", body=body)

    # --- helpers ---------------------------------------------------------------------------

    async def _list(self, path: str, selector: str) -> list[Manifest]:
        items: list[Manifest] = []
        query: dict[str, str] = {"labelSelector": selector, "limit": "500"}
        while True:
            doc = await self.request("GET", path, query=query)
            items.extend(doc.get("items") or [])
            token = (doc.get("metadata") or {}).get("continue")
            if not token:
                return items
            query = {**query, "continue": str(token)}
