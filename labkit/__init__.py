"""labkit: helpers for the Milvus 1.x on JuiceFS hands-on lab.

Heavy submodules load lazily so that importing labkit (done at every interpreter
start by the compat .pth hook) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# These two functions share their module's name. Importing them here, eagerly (both modules are
# small and stdlib-only), binds the functions after the import system has set the submodule
# attributes, so `labkit.config(SIZE)` stays the function even after `import labkit.config`.
from labkit.config import config as config  # noqa: E402
from labkit.progress import progress as progress  # noqa: E402

# public name -> "module:attribute"
_LAZY = {
    "check_env": "labkit.env:check_env",
    "milestone": "labkit.progress:milestone",
    "in_ci": "labkit.progress:in_ci",
    "savefig": "labkit.artifacts:savefig",
    "record_metrics": "labkit.artifacts:record_metrics",
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
