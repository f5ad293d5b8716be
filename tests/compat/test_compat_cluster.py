"""The compat cases on a real cluster: every runnable case submitted at once into one
namespace, run by the operator, and each final context compared with flowcraft's.

The operator does not publish a Flow's final context (neither `.status` nor `flowcraft get`
shows it), so the test computes it the way the engine defines it: from the Flow's status and
the output ConfigMaps (each holds a node's output and its context writes), through
`flowcraft.drivers.kubernetes.results.final_context` (`Engine.context`, what the local runner
reports; the operator computes a subflow's result the same way). A case's sub-blueprints
(subflow-<id>.json) are applied as `Blueprint` objects first. A wait case is compared where it
stops (Awaiting) and, when case.json has resume data, resumed as `kubectl patch` /
`flowcraft resume` do it (spec.resume) and compared again once it ends.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from compat_cases import Case, check, runnable_cases

from cluster import Cluster
from flowcraft.drivers.kubernetes import results
from flowcraft.drivers.kubernetes import status as flow_status
from flowcraft.model import FlowStatus
from operator_harness import (
    OperatorProcess,
    apply_doc,
    flow_crd,
    get_flow,
    operator,
    runner_image,
)

pytestmark = pytest.mark.e2e

__all__ = ["flow_crd", "operator", "runner_image"]  # fixtures

TERMINAL = {"Succeeded", "Failed", "Cancelled"}


def final_context(cluster: Cluster, namespace: str, doc: dict[str, Any]) -> Any:
    status = FlowStatus.model_validate(doc["status"])
    names = {
        **flow_status.output_refs(status),
        **flow_status.item_output_names(status, doc["metadata"]["name"], doc["metadata"]["uid"]),
    }
    configmaps = {
        ref: cluster.kubectl_json("get", "configmap", ref, "-n", namespace)
        for ref in names.values()
    }
    return results.final_context(doc, configmaps)


# flowcraft threw on these (an endless loop hits its traversal limit); here the loop's
# maxIterations ends them. What is compared is that: a failure at the bound, not how many pod
# iterations it took, so on the cluster the bound is lowered from its default (100) to keep
# the run short. The local tier runs them at the default.
CLUSTER_LOOP_BOUND = 3


def bounded(case: Case) -> dict[str, Any]:
    manifest = case.manifest(name=case.name)
    if case.expected["status"] == "threw":
        for node in manifest["spec"]["nodes"]:
            if node.get("uses") == "loop-controller":
                node.setdefault("params", {})["maxIterations"] = CLUSTER_LOOP_BOUND
    return manifest


def test_compat_cases_on_the_cluster(
    cluster: Cluster, namespace: str, operator: OperatorProcess, runner_image: str
) -> None:
    cases = runnable_cases()
    for case in cases:
        for blueprint in (case.blueprints() or {}).values():
            apply_doc(cluster, namespace, blueprint.to_dict())
        # Case names are unique DNS names; several blueprints share an id.
        apply_doc(cluster, namespace, bounded(case))

    deadline = time.monotonic() + 900
    docs: dict[str, dict[str, Any]] = {}
    at_wait: dict[str, list[str]] = {}  # problems at the Awaiting point of resumed wait cases
    while len(docs) < len(cases) and time.monotonic() < deadline:
        for case in cases:
            if case.name not in docs:
                doc = get_flow(cluster, namespace, case.name)
                phase = (doc.get("status") or {}).get("phase")
                if phase == "Awaiting" and case.resume and case.name not in at_wait:
                    try:
                        context = final_context(cluster, namespace, doc)
                        at_wait[case.name] = check(case, phase, context)
                    except Exception as exc:
                        at_wait[case.name] = [f"cannot compute the context at the wait: {exc}"]
                    patch = json.dumps({"spec": {"resume": case.resume}})
                    cluster.kubectl(
                        "patch", "flow", case.name, "-n", namespace, "--type", "merge", "-p", patch
                    )
                elif phase in TERMINAL or (phase == "Awaiting" and not case.resume):
                    docs[case.name] = doc
        time.sleep(2)

    report: dict[str, list[str]] = {}
    for case in cases:
        doc = docs.get(case.name)
        if doc is None:
            report[case.name] = ["did not finish in time"]
            continue
        try:
            context = final_context(cluster, namespace, doc)
        except Exception as exc:
            report[case.name] = [f"cannot compute the final context: {exc}"]
            continue
        if case.name in at_wait:
            after = check(case, doc["status"]["phase"], context, case.expected["resumed"])
            problems = at_wait[case.name] + [f"after resume: {p}" for p in after]
        else:
            problems = check(case, doc["status"]["phase"], context)
        if problems:
            report[case.name] = problems
    print(f"\ncompat on the cluster: {len(cases) - len(report)} of {len(cases)} cases match")
    for name, problems in sorted(report.items()):
        print(f"  {name}: {' | '.join(problems)}")
    assert not report, f"{len(report)} of {len(cases)} compat cases differ: {sorted(report)}"
