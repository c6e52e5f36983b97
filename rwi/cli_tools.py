"""Sub-commands of ``rwi`` that read the log: registered into the parser by ``rwi.cli``.

Each is a thin shell over a module that tests call directly.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the log-reading sub-commands (replay, rebuild, verify, report, export, import)."""
