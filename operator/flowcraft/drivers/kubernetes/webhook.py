"""The validating admission webhook: ``kubectl apply`` of an invalid Flow gets ``flowcraft
validate``'s problems back, with their paths, instead of a Flow that later goes Failed.

Why: the CRD's CEL rules stay linear to fit the API server's cost budget (see ``crd``), so
cycles, dangling edges, fallbacks and expression syntax are only checked in Python. This
endpoint runs exactly that check (:func:`flowcraft.model.loader.parse_flow`, the function
behind ``flowcraft validate`` and the operator's own InvalidFlow verdict) when the API server
asks.

Why a small aiohttp server inside the operator process rather than kopf's admission support:
kopf wants to own the ValidatingWebhookConfiguration (cluster-wide rights to patch it, its own
URL scheme per handler id) or a tunnel; here the chart owns the configuration and the TLS
material (a Secret it generates, the CA in ``caBundle``), and the server is one POST route over
aiohttp, which kopf already brings. It shares the operator's event loop; a review is validated
in a worker thread so a 1,500-node Flow does not stall the reconciles.

Reviews: CREATE and UPDATE of ``flows`` and ``blueprints`` (a Blueprint is checked alone:
ids, edges, cycles, fallbacks, expressions; the functions it leaves to its parent are not).
An UPDATE that leaves the spec as it was is always allowed (metadata edits, deletion of an
old invalid object must never be blocked); a spec that may change is re-checked. The answer
denies with HTTP-422-style status ``Invalid`` and the problem list as the message; the API
server prefixes it with the webhook's name.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PATH = "/validate-flow"
# The kinds reviewed (the chart's rules name their resources, flows and blueprints).
KINDS = ("Flow", "Blueprint")
# A Flow object can be as large as etcd allows (~1.5 MB); aiohttp's default limit is 1 MiB.
MAX_BODY = 4 * 1024 * 1024


def flow_problems(obj: Mapping[str, Any]) -> str | None:
    """``flowcraft validate``'s message for a Flow or Blueprint object, or None when it is
    valid (pure). A Blueprint is checked alone (:func:`flowcraft.model.blueprint.
    check_blueprint`): what only its parent flow can tell waits for the run."""
    from flowcraft.model import FlowValidationError, parse_flow  # noqa: PLC0415
    from flowcraft.model.blueprint import parse_blueprint  # noqa: PLC0415

    try:
        if obj.get("kind") == "Blueprint":
            parse_blueprint(obj)
        else:
            parse_flow(obj)
    except FlowValidationError as err:
        return str(err)
    return None


def review(admission: Mapping[str, Any]) -> dict[str, Any]:
    """The AdmissionReview response to an AdmissionReview request (pure)."""
    request = admission.get("request") or {}
    obj = request.get("object") or {}
    old = request.get("oldObject") or {}
    message = None
    if request.get("operation") in ("CREATE", "UPDATE") and obj.get("kind") in KINDS:
        unchanged = request.get("operation") == "UPDATE" and old.get("spec") == obj.get("spec")
        if not unchanged:
            message = flow_problems(obj)
    response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": message is None}
    if message is not None:
        response["status"] = {"code": 422, "reason": "Invalid", "message": message}
    return {
        "apiVersion": admission.get("apiVersion", "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": response,
    }


def tls_context(cert_dir: Path) -> ssl.SSLContext:
    """Server TLS from ``cert_dir``/tls.crt and tls.key (a kubernetes.io/tls Secret's keys)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_dir / "tls.crt", cert_dir / "tls.key")
    return context


async def serve(port: int, cert_dir: Path, host: str = "0.0.0.0") -> Any:
    """Start the webhook on https://host:port/validate-flow; returns the aiohttp runner
    (``await runner.cleanup()`` stops it)."""
    from aiohttp import web  # noqa: PLC0415

    async def handle(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "not an AdmissionReview"}, status=400)
        answer = await asyncio.to_thread(review, body)
        verdict = "allowed" if answer["response"]["allowed"] else "denied"
        meta = ((body.get("request") or {}).get("object") or {}).get("metadata") or {}
        logger.info("admission %s: flow %s/%s", verdict, meta.get("namespace"), meta.get("name"))
        return web.json_response(answer)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(PATH, handle)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=tls_context(cert_dir)).start()
    logger.info("admission webhook listening on https://%s:%d%s", host, port, PATH)
    return runner
