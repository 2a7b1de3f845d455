"""labkit: helpers for the Milvus 1.x on JuiceFS hands-on lab.

Heavy submodules load lazily so that importing labkit (done at every interpreter
start by the compat .pth hook) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> "module:attribute"
_LAZY = {
    "config": "labkit.nb.sizes:config",
    "progress": "labkit.nb.progress:progress",
    "check_env": "labkit.lab.doctor:check_env",
    "milestone": "labkit.nb.progress:milestone",
    "in_ci": "labkit.nb.progress:in_ci",
    "savefig": "labkit.nb.artifacts:savefig",
    "record_metrics": "labkit.nb.artifacts:record_metrics",
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'labkit' has no attribute {name!r}")
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
