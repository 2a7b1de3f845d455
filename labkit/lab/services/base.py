"""One small lifecycle for every lab service, and the registry that picks a backend.

A service class is registered for a (kind, backend) pair, e.g. ("mysql", "local")
or ("mysql", "docker"); callers ask ``get_service(kind, backend)`` instead of
branching on the backend.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from labkit.errors import LabError
from labkit.lab import procs
from labkit.lab.state import LabState


@dataclass
class ServiceStatus:
    """One row of `labkit status`."""

    name: str
    kind: str
    backend: str
    address: str
    pid: int | None
    healthy: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Service(ABC):
    """Lifecycle: ``ensure`` (idempotent start or repair), ``stop``, ``status``, ``url``."""

    kind: ClassVar[str]
    backend: ClassVar[str]

    def __init__(self, state: LabState | None = None, name: str | None = None, **options: Any) -> None:
        self.state = state or LabState()
        self.name = name or self.kind
        self.options = options

    @property
    def record(self) -> dict[str, Any]:
        return self.state.get(self.name) or {}

    @abstractmethod
    def ensure(self) -> dict[str, Any]:
        """Start the service unless a healthy one is recorded; return its state record."""

    @abstractmethod
    def stop(self, purge: bool = False) -> None:
        """Stop it by PID (and delete its data when ``purge``)."""

    @abstractmethod
    def status(self) -> ServiceStatus:
        """Health as seen right now (never trusts the state file alone)."""

    @abstractmethod
    def url(self) -> str:
        """How clients reach it (may contain a password: mask before printing)."""

    def commands(self) -> list[str]:
        """The shell commands this backend runs, secrets masked (shown in notebooks)."""
        return []

    def stop_process(self, expect: str | None, purge: bool, data_dir: Path | None, timeout: float = 10.0) -> None:
        """Stop the recorded PID (only if its command line contains ``expect``).

        Without ``purge`` the record stays (marked stopped) so a restart reuses the port and the
        URIs already written into node configs stay valid; with it, record and data go.
        """
        procs.stop(self.record.get("pid"), timeout=timeout, expect=expect)
        if purge:
            self.state.forget(self.name)
            if data_dir is not None:
                shutil.rmtree(data_dir, ignore_errors=True)
        elif self.record:
            self.state.record(self.name, pid=None, stopped=True)


REGISTRY: dict[tuple[str, str], type[Service]] = {}


def register(cls: type[Service]) -> type[Service]:
    """Class decorator: make ``cls`` available as ``get_service(cls.kind, cls.backend)``."""
    REGISTRY[(cls.kind, cls.backend)] = cls
    return cls


def backends(kind: str) -> list[str]:
    _load_all()
    return sorted(b for k, b in REGISTRY if k == kind)


def get_service(kind: str, backend: str = "local", state: LabState | None = None,
                name: str | None = None, **options: Any) -> Service:
    """The service object for ``kind`` on ``backend``; a clear LabError for unknown ones."""
    _load_all()
    cls = REGISTRY.get((kind, backend))
    if cls is None:
        known = ", ".join(backends(kind)) or "none"
        raise LabError(f"Unknown backend {backend!r} for {kind}; choose one of: {known}.")
    return cls(state=state, name=name, **options)


def _load_all() -> None:
    """Import the service modules so their @register decorators run."""
    import importlib
    import pkgutil

    import labkit.lab.services as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in {"base", "containers"}:
            importlib.import_module(f"labkit.lab.services.{mod.name}")
