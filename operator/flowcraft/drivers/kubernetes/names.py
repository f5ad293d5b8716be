"""Deterministic object names and label values for a Flow's Jobs and ConfigMaps.

Why: the operator's idempotency rests on names. A Job for (flow, node, attempt) always gets the
same name, so a restarted operator that re-creates it gets AlreadyExists instead of a second
Job. The name also carries a fragment of the Flow's UID: a Flow deleted and re-created under the
same name (while the garbage collector has not yet removed the old one's objects) gets names of
its own instead of colliding with, and possibly adopting, the old run's Jobs and outputs. The
fragment only avoids collisions; ownership is decided by the controller ownerReference
(``builders.controlled_by``), never by a name.

Node ids and flow names are user text (uppercase, underscores, any length), while Kubernetes
wants DNS-1123 labels of at most 63 characters; whenever the readable form had to be changed or
cut, a short hash of the exact inputs is appended so distinct inputs never collide.
"""

from __future__ import annotations

import functools
import hashlib
import re

MAX_NAME = 63
_HASH_LEN = 10
_UID_LEN = 8
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _digest(*parts: str) -> str:
    # NUL-joined so ("a-b", "c") and ("a", "b-c") hash differently.
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:_HASH_LEN]


def _dns_label(readable: str, *identity: str) -> str:
    """``readable`` if it already is a DNS-1123 label, else a cleaned prefix plus a hash."""
    if len(readable) <= MAX_NAME and _DNS_LABEL.match(readable):
        return readable
    cleaned = re.sub(r"[^a-z0-9-]+", "-", readable.lower())
    cleaned = re.sub(r"-{2,}", "-", cleaned)
    prefix = cleaned[: MAX_NAME - _HASH_LEN - 1].strip("-")
    suffix = _digest(*identity)
    return f"{prefix}-{suffix}" if prefix else f"x-{suffix}"


def uid_fragment(uid: str) -> str:
    """A short, name-safe token of a Flow's UID (deterministic; lowercase hex)."""
    return _digest("uid", uid)[:_UID_LEN]


def job_name(flow: str, uid: str, node: str, attempt: int, iteration: int = 0) -> str:
    """The Job of one attempt of one node of the Flow object with this ``uid`` (in one loop
    iteration: a later iteration's Jobs carry it, so each (node, iteration, attempt) has its
    own name)."""
    if iteration:
        # Always hashed: "<flow>-<node>-i2-1-<uid>" alone could also be node "<node>-i2"
        # attempt 1.
        readable = f"{flow}-{node}-i{iteration}-{attempt}-{uid_fragment(uid)}"
        return _hashed(readable, "job", flow, uid, node, str(attempt), str(iteration))
    readable = f"{flow}-{node}-{attempt}-{uid_fragment(uid)}"
    return _dns_label(readable, "job", flow, uid, node, str(attempt), str(iteration))


def output_configmap_name(flow: str, uid: str, node: str, attempt: int, iteration: int = 0) -> str:
    """The ConfigMap holding the output of the attempt that succeeded."""
    if iteration:
        readable = f"{flow}-{node}-i{iteration}-{attempt}-{uid_fragment(uid)}-out"
        return _hashed(readable, "out", flow, uid, node, str(attempt), str(iteration))
    readable = f"{flow}-{node}-{attempt}-{uid_fragment(uid)}-out"
    return _dns_label(readable, "out", flow, uid, node, str(attempt), str(iteration))


def _hashed(readable: str, *identity: str, limit: int = MAX_NAME) -> str:
    """A DNS-1123 label: a cleaned prefix of ``readable`` plus, always, a hash of ``identity``.

    For batch items, whose readable parts (flow, scatter, item, attempt) are joined by dashes
    that ids may contain too: the hash keeps 10,000 names per flow collision-free whatever the
    ids look like, and the readable prefix keeps ``kubectl get jobs`` legible."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", readable.lower())
    cleaned = re.sub(r"-{2,}", "-", cleaned)
    prefix = cleaned[: limit - _HASH_LEN - 1].strip("-")
    suffix = _digest(*identity)
    return f"{prefix}-{suffix}" if prefix else f"x-{suffix}"


def _item_readable(
    flow: str, uid: str, scatter: str, iteration: int, tail: str, *, limit: int = MAX_NAME
) -> str:
    # The tail (item index, attempt..., then the Flow's uid fragment) comes last: a cut
    # flow/scatter name must not cut it.
    tail = f"{tail}-{uid_fragment(uid)}"
    head = f"{flow}-{scatter}" + (f"-i{iteration}" if iteration else "")
    room = limit - _HASH_LEN - 2 - len(tail)
    return f"{head[:room].rstrip('-')}-{tail}"


# Every pass of a 10,000-item batch names each running item's Job (to look it up in the
# cache): memoised, that is a dict hit instead of a regex and a SHA-256 per item.
@functools.lru_cache(maxsize=1 << 17)
def item_job_name(
    flow: str, uid: str, scatter: str, iteration: int, item: int, *, attempt: int
) -> str:
    """The Job of one attempt of one batch item (``item`` indexes the scatter's input) of the
    Flow object with this ``uid``."""
    readable = _item_readable(flow, uid, scatter, iteration, f"{item}-a{attempt}")
    identity = ("item-job", flow, uid, scatter, str(iteration), str(item), str(attempt))
    return _hashed(readable, *identity)


def item_output_name(flow: str, uid: str, scatter: str, iteration: int, item: int) -> str:
    """The ConfigMap holding a batch item's output (one per item: only one attempt succeeds)."""
    readable = _item_readable(flow, uid, scatter, iteration, f"{item}-out")
    return _hashed(readable, "item-out", flow, uid, scatter, str(iteration), str(item))


# Pods of an Indexed Job are named (and get the hostname) "<job>-<index>-<random>": keep room.
MAX_INDEXED_JOB = MAX_NAME - 11


@functools.lru_cache(maxsize=1 << 12)
def round_job_name(flow: str, uid: str, scatter: str, iteration: int, round_: int) -> str:
    """The Indexed Job running the first attempts of one round (``chunkSize`` items)."""
    readable = _item_readable(flow, uid, scatter, iteration, f"r{round_}", limit=MAX_INDEXED_JOB)
    identity = ("round-job", flow, uid, scatter, str(iteration), str(round_))
    return _hashed(readable, *identity, limit=MAX_INDEXED_JOB)


def round_items_name(flow: str, uid: str, scatter: str, iteration: int, round_: int) -> str:
    """The ConfigMap holding one round's item inputs (``<index>.json``) for its Indexed Job."""
    readable = _item_readable(flow, uid, scatter, iteration, f"r{round_}-items")
    return _hashed(readable, "round-items", flow, uid, scatter, str(iteration), str(round_))


def context_configmap_name(flow: str, uid: str) -> str:
    """The ConfigMap holding a Flow's initial context (``spec.context``)."""
    return _dns_label(f"{flow}-context-{uid_fragment(uid)}", "context", flow, uid)


def label_value(value: str) -> str:
    """A valid label value for ``value``: itself when valid, else a cleaned prefix plus a hash.

    Labels are for selection only; the exact flow name and node id also go into annotations.
    """
    if len(value) <= MAX_NAME and _LABEL_VALUE.match(value):
        return value
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", value)
    prefix = cleaned[: MAX_NAME - _HASH_LEN - 1].strip("-_.")
    suffix = _digest("label", value)
    return f"{prefix}-{suffix}" if prefix else suffix


def is_dns_label(name: str) -> bool:
    return len(name) <= MAX_NAME and bool(_DNS_LABEL.match(name))


def is_label_value(value: str) -> bool:
    return len(value) <= MAX_NAME and bool(_LABEL_VALUE.match(value))
