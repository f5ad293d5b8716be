"""``python -m flowcraft.drivers.kubernetes``: run the operator (same flags as ``flowcraft
operator``), for images, Makefile targets and test harnesses that do not need the CLI."""

from __future__ import annotations

import argparse

from flowcraft.drivers.kubernetes.entry import add_arguments, run


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flowcraft.drivers.kubernetes", description="Run the flowcraft operator."
    )
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
