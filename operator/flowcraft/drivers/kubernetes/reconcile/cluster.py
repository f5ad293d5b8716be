"""The reconcile's collaborators, and the writes every step of a pass makes through them.

:class:`Cluster` bundles the API client, the watch cache, the bound on concurrent requests and
the operator's settings, so the steps of a pass (observe, act, items, rounds) take one explicit
argument instead of reaching into the reconciler. Its methods are the writes they share, all
under the ownership rule (package docstring): an existing object is adopted only when this Flow
controls it; anyone else's is a conflict, reported, never read further, patched or deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flowcraft.drivers.kubernetes import builders, metrics, outcomes, subflows
from flowcraft.drivers.kubernetes.cache import ObjectCache
from flowcraft.drivers.kubernetes.client import (
    AlreadyExists,
    ApiError,
    Client,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
)
from flowcraft.engine import StartNode
from flowcraft.model import FlowSpec

from .state import Manifest, Pass, conflict_message, fail_later, refused_message, uid_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cluster:
    """What a pass talks to (client, cache) and runs with (settings); shared by every Flow."""

    client: Client
    cache: ObjectCache
    requests: asyncio.Semaphore  # bounds the requests one pass sends concurrently
    subflows: subflows.Subflows  # subflow nodes run as child Flows
    instance: str
    runner_image: str | None  # the operator's --runner-image (Flows without spec.image)
    indexed: bool  # first item attempts run as one Indexed Job per round
    # The operator's --pod-creation-timeout: a Job with no pod this long fails its attempt.
    pod_creation_limit: timedelta = timedelta(seconds=outcomes.POD_CREATION_TIMEOUT_SECONDS)

    def runner_image_for(self, spec: FlowSpec) -> str:
        if spec.image is None and self.runner_image is not None:
            return self.runner_image
        return spec.runner_image

    async def event(
        self, ref: builders.FlowRef, reason: str, message: str, warning: bool, now: datetime
    ) -> None:
        body = builders.event_manifest(
            ref, reason=reason, message=message, warning=warning, now=now, instance=self.instance
        )
        try:
            await self.client.create_event(ref.namespace, body)
        except ApiError as exc:
            # Events are informational: losing one must not fail the reconcile.
            logger.warning("could not post event %s on %s: %s", reason, ref.name, exc)

    async def delete_job(self, ref: builders.FlowRef, name: str, uid: str | None) -> None:
        """Delete our Job ``name``: only the object with ``uid`` (a precondition); without a
        uid, only after reading it and finding it controlled by this Flow."""
        async with self.requests:
            with contextlib.suppress(NotFound):
                if uid is None:
                    job = await self.client.get_job(ref.namespace, name)
                    if not builders.controlled_by(job, ref.uid):
                        return  # not ours: never touch it
                    uid = uid_of(job)
                # Conflict: the name now holds another object (uid precondition): not ours.
                with contextlib.suppress(Conflict):
                    await self.client.delete_job(ref.namespace, name, uid=uid)

    async def store_output(self, ref: builders.FlowRef, cm: Manifest) -> str | None:
        """Create the output ConfigMap; a message when its name holds someone else's object."""
        async with self.requests:
            try:
                await self.client.create_configmap(ref.namespace, cm)
                return None
            except AlreadyExists:
                name = cm["metadata"]["name"]
                try:
                    existing = await self.client.get_configmap(ref.namespace, name)
                except NotFound:
                    return None  # gone again; the next pass's create would recreate it
        if builders.controlled_by(existing, ref.uid):
            return None  # ours, from an earlier pass: immutable, written from this attempt
        return conflict_message(ref, "ConfigMap", existing)

    async def store_context(self, ctx: Pass) -> str | None:
        """Create the initial-context ConfigMap before the first Job that mounts it.

        A message when its name holds someone else's ConfigMap: no Job may mount that one.
        """
        if ctx.state.context_stored:
            return None
        if ctx.spec.context is not None:
            cm = builders.context_configmap(ctx.ref, ctx.spec.context)
            conflict = await self.store_output(ctx.ref, cm)
            if conflict is not None:
                await self.event(ctx.ref, "NameConflict", conflict, True, datetime.now(UTC))
                return conflict
        ctx.state.context_stored = True
        return None

    async def create_job(self, ctx: Pass, action: StartNode, job: Manifest) -> bool:
        """Create the Job of ``action``'s attempt (the caller holds ``requests``); whether
        this call created it (an existing one is adopted, a refusal fails the attempt)."""
        try:
            created = await self.client.create_job(ctx.ref.namespace, job)
        except AlreadyExists:
            await self.adopt_job(ctx, action, job["metadata"]["name"])
            return False
        except Invalid as exc:
            # The API server refused this node's Job (bad resources, image name...): the
            # node fails with the server's reason instead of the flow hanging.
            fail_later(ctx.state, action, f"the API server rejected the Job: {exc.message}")
            return False
        except Forbidden as exc:
            self.refused(ctx, action, job["metadata"]["name"], exc)
            return False
        except ApiError as exc:
            # Made or not, nobody knows: the pass fails and is retried (see ``unsure_creates``).
            ctx.state.unsure_creates[job["metadata"]["name"]] = f"{exc.status} {exc.reason}"
            raise
        metrics.current().job_created(ctx.flow_id, job["metadata"]["name"], datetime.now(UTC))
        self.cache.remember_job(ctx.key, created)
        return True

    def refused(self, ctx: Pass, action: StartNode, name: str, exc: Forbidden) -> None:
        """The API server refused to create the attempt's Job (e.g. "exceeded quota"): no Job
        exists for it, so the attempt fails with the server's message and the node's retries
        apply, instead of the pass failing over and over (the Flow would hang on it)."""
        message = refused_message(name, exc.message)
        logger.warning("%s/%s: %s", ctx.ref.namespace, ctx.ref.name, message)
        ctx.state.gone_jobs[name] = message  # never created for this attempt; not "deleted"
        fail_later(ctx.state, action, message)

    async def adopt_job(self, ctx: Pass, action: StartNode, name: str) -> None:
        """The Job's name is taken: ours (a restart, a lagging cache) is adopted; anyone
        else's is a conflict that fails the attempt, with a Warning Event naming it."""
        try:
            existing = await self.client.get_job(ctx.ref.namespace, name)
        except NotFound:
            return  # deleted meanwhile: the next pass re-ensures the attempt's Job
        if builders.controlled_by(existing, ctx.ref.uid):
            self.cache.remember_job(ctx.key, existing)
            return
        message = conflict_message(ctx.ref, "Job", existing)
        logger.warning("%s/%s: %s", ctx.ref.namespace, ctx.ref.name, message)
        fail_later(ctx.state, action, message)
        await self.event(ctx.ref, "NameConflict", message, True, datetime.now(UTC))

    async def read_result(
        self, ref: builders.FlowRef, outcome: outcomes.InLog
    ) -> outcomes.Succeeded | outcomes.Failed:
        """The outcome of an attempt whose result is a framed block in its pod's log (the
        operator's one ``get pods/log``; node pods never talk to the API)."""

        async def read(tail: int | None) -> str:
            return await self.client.read_pod_log(
                ref.namespace, outcome.pod, container=builders.CONTAINER, tail_lines=tail
            )

        async with self.requests:
            try:
                return await outcomes.read_result(outcome, read)
            except NotFound:
                return outcomes.Failed(
                    outcome.started_at,
                    outcome.at,
                    f"result unreadable: pod {outcome.pod} and its log are gone",
                )

    async def find_pod(self, ref: builders.FlowRef, job: Manifest) -> Manifest | None:
        # The Job finished but its pod never reached the cache (e.g. right after a restart).
        # Pods are matched by their controller (the Job's uid), never by a job-name label.
        uid = uid_of(job)
        if uid is None:
            return None
        pods = await self.list_job_pods(ref, uid)
        if not pods:
            return None
        return max(pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp")))

    async def list_job_pods(self, ref: builders.FlowRef, job_uid: str) -> list[Manifest]:
        """The pods the Job with ``job_uid`` controls (selected by the controller-uid label the
        Job controller sets, then checked against the pod's controller ownerReference)."""
        return [
            pod
            for pod in await self.client.list_pods(
                ref.namespace, f"batch.kubernetes.io/controller-uid={job_uid}"
            )
            if (builders.controller_of(pod, "Job") or {}).get("uid") == job_uid
        ]
