"""The Kubernetes driver: a kopf operator that runs each Flow node as a Job.

Why a package: the driver has distinct concerns that must not collapse into one controller
file: ``client`` (the only module that talks to the API), ``names``, ``meta``, ``jobs`` and
``builders`` (pure: what objects look like; ``jobs`` renders ``flowcraft.drivers.launch``),
``outcomes`` (pure: what a Job/pod says happened), ``crd`` (pure: the CRD from the model),
``reconcile`` (one serialized decision loop per Flow), ``controller`` (thin kopf handlers
feeding it) and ``metrics``. Importing this package loads none of them, so the CLI stays fast
when it does not run the operator.
"""
