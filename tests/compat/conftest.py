"""Cluster fixtures for test_compat_cluster.py (the same ones tests/e2e uses)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster import cluster, k8s_api, load_images, namespace, smoke_image

__all__ = ["cluster", "k8s_api", "load_images", "namespace", "smoke_image"]
