"""Drivers: the code that turns the engine's decisions into running node processes.

Why a package of its own: the engine is pure and I/O-free; something must start node attempts,
watch them, and feed what happened back as events. ``local`` does it with asyncio subprocesses
(and docker for container functions) on one machine; ``kubernetes`` does it with Jobs and
ConfigMaps. Both run the same node runtime (``flowcraft.runtime``) with the same contract, and both
render one description of an attempt (``launch``: files, env, command, sandbox, limits).
This ``__init__`` imports nothing, so using one driver never loads the other's dependencies.
"""
