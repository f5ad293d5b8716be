"""flowcraft: run DAG workflows on Kubernetes or locally, with one model and one engine.

The package is layered (contract -> model -> engine -> runtime/drivers -> entrypoints); imports
point down. `contract` is the stdlib-only wire format of a node attempt, shared by all layers.
"""

__version__ = "0.1.0"
