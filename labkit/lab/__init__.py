"""This machine's lab: storage services, nodes and router as processes or containers, and their state.

``Lab`` (the storage API the notebooks and CLI share) loads lazily: ``labkit.lab.state`` and
``labkit.lab.procs`` are imported by light callers that should not pull in every service.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "Lab":
        from labkit.lab.api import Lab

        return Lab
    raise AttributeError(f"module 'labkit.lab' has no attribute {name!r}")
