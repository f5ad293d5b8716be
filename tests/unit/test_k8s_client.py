"""What the API client hands back: plain manifests, trimmed of what the operator never reads."""

from __future__ import annotations

import pytest

from flowcraft.drivers.kubernetes.client import without_managed_fields

pytestmark = pytest.mark.unit


def test_a_flow_is_kept_without_its_managed_fields() -> None:
    doc = {
        "metadata": {
            "name": "f",
            "resourceVersion": "7",
            "managedFields": [{"manager": "flowcraft", "fieldsV1": {"f:status": {}}}],
        },
        "status": {"phase": "Running"},
    }
    out = without_managed_fields(doc)
    assert out["metadata"] == {"name": "f", "resourceVersion": "7"}
    assert out["status"] == {"phase": "Running"}


def test_a_document_without_metadata_is_left_alone() -> None:
    assert without_managed_fields({"kind": "Status"}) == {"kind": "Status"}
