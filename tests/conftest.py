"""Test-wide settings.

Hypothesis's per-example deadline (200 ms by default) measures wall time; on a 2-core machine
shared with a cluster and other suites a single example can be starved for longer than that
(one SHA-256 took 806 ms under load), which says nothing about the code. Properties here are
about behaviour, and the benchmarks in bench/ measure speed, so no example has a deadline.
"""

from hypothesis import settings

settings.register_profile("flowcraft", deadline=None)
settings.load_profile("flowcraft")
