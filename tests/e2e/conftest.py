"""Cluster fixtures (see tests/cluster.py): cluster, k8s_api, namespace, load_images, smoke_image.

The cluster comes from $KUBECONFIG, else the harness's .cluster/kubeconfig (make cluster);
with neither, tests that use these fixtures fail with instructions (they never skip).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster import (
    cluster,
    k8s_api,
    load_images,
    namespace,
    smoke_image,
)

__all__ = ["cluster", "k8s_api", "load_images", "namespace", "smoke_image"]
