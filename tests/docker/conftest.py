"""Docker fixtures: an engine (labkit's own dockerd when none answers and we are root), the local
image set (built once per machine, then cached), and a LABKIT_HOME per test module.

Without an engine and without root the docker tests are skipped, with the reason.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dockerhelp import leftovers

from labkit.lab import engine as engines
from labkit.lab import images


@pytest.fixture(scope="session")
def engine_session() -> Iterator[engines.Engine]:
    """An answering engine; if none answered before the session, labkit's dockerd is stopped (by PID) at the end."""
    found = engines.find()
    started = False
    if found is None:
        ok, why = engines.can_start()
        if not ok:
            pytest.skip(f"docker tests need a Docker engine: {why}")
        found = engines.ensure()
        started = True
    yield found
    if started:
        engines.stop_managed()


@pytest.fixture
def engine(engine_session: engines.Engine) -> engines.Engine:
    """The engine, answering now (`labkit down` stops labkit's own dockerd once it is idle)."""
    return engines.ensure()


@pytest.fixture(scope="session")
def local_images(engine_session: engines.Engine) -> dict:
    """The local image set (built once per machine, then cached)."""
    result = images.build(say=lambda m: print(f"[images] {m}", file=sys.stderr, flush=True))
    print("[images] " + json.dumps(result), file=sys.stderr)
    return result


@pytest.fixture(autouse=True)
def _local_image_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """LABKIT_IMAGES=local for each docker test only (other tests see the default, real)."""
    monkeypatch.setenv("LABKIT_IMAGES", "local")


@pytest.fixture(scope="module")
def docker_home(tmp_path_factory: pytest.TempPathFactory, local_images: dict) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("dlab")
    yield home
    leftovers(home, cleanup=True)
