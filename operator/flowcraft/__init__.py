"""flowcraft: run DAG workflows on Kubernetes or locally, with one model and one engine.

The package is layered (model -> engine -> runtime/drivers -> entrypoints); imports point down.
"""

__version__ = "0.1.0"
