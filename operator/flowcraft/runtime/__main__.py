"""Entry point of a node process: ``python -m flowcraft.runtime`` (see the package docstring)."""

from flowcraft.runtime.node import main

raise SystemExit(main())
