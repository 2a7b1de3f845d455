"""Port choice for lab services: explicit, then the one recorded, then the article's default, then any."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labkit.errors import LabError
from labkit.lab import procs


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
    """``start(port)``, retried on a fresh port when another process took the chosen one first.

    Several labs (and other programs) can race for the same free port between our
    check and the server's bind; an explicit port is never swapped.
    """
    for attempt in range(attempts):
        first = attempt == 0
        port = choose_port(what, explicit, recorded if first else None, default if first else None)
        try:
            return start(port)
        except LabError as exc:
            if explicit or "address already in use" not in str(exc).lower() or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
