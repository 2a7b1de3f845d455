"""Port choice for lab services: explicit, then the one recorded, then the article's default, then any."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from labkit.errors import LabError
from labkit.lab import procs

T = TypeVar("T")


def choose_port(what: str, explicit: int | None, recorded: int | None, default: int | None) -> int:
    """The port a (not yet running) service should bind on 127.0.0.1.

    An explicit port that is taken is an error (the user asked for it); a recorded
    port is reused so URIs already written into node configs stay valid.
    """
    if explicit:
        if not 0 < int(explicit) < 65536:
            raise LabError(f"Port {explicit} for {what} is not a valid TCP port (1-65535).")
        if not procs.port_free(int(explicit)):
            raise LabError(f"Port {explicit} for {what} is already in use on 127.0.0.1; "
                           "choose another port or leave it out to pick a free one.")
        return int(explicit)
    if recorded and procs.port_free(int(recorded)):
        return int(recorded)
    return procs.free_port(default)


def start_on_free_port(what: str, explicit: int | None, recorded: int | None, default: int | None,
                       start: Callable[[int], Any], attempts: int = 3) -> Any:
    """``start(port)`` on the port ``choose_port`` gives, retried on a fresh one if it was taken."""
    def pick(attempt: int) -> int:
        first = attempt == 0
        return choose_port(what, explicit, recorded if first else None, default if first else None)

    return start_retrying(pick, start, bool(explicit), attempts)[1]


def port_taken(exc: Exception) -> bool:
    """Whether a failed start says its port was taken (bind failed, address in use)."""
    text = str(exc).lower()
    return "in use" in text or "bind" in text


def start_retrying(pick: Callable[[int], int], start: Callable[[int], T], explicit: bool,
                   attempts: int = 3) -> tuple[int, T]:
    """``(port, start(port))`` with ``port = pick(attempt)``, retried when the port was taken.

    Several labs (and other programs) can race for the same free port between our check and
    the server's bind; then ``pick`` chooses again. An explicit port is never swapped.
    """
    for attempt in range(attempts):
        port = pick(attempt)
        try:
            return port, start(port)
        except LabError as exc:
            if explicit or attempt == attempts - 1 or not port_taken(exc):
                raise
    raise AssertionError("unreachable")
