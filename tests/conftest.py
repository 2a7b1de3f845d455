"""Shared fixtures: one real lab (MariaDB, Redis, object store, JuiceFS volume) per test session.

``lab`` starts the storage services in a temporary LABKIT_HOME and always tears
them down (``down(purge=True)``), even when tests fail. Node and router tests
use it together with ``lab.mount(name)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from labkit.lab import Lab


@pytest.fixture(scope="session")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A temporary LABKIT_HOME for the whole session (env var set, then restored)."""
    home = tmp_path_factory.mktemp("lab")
    mp = pytest.MonkeyPatch()
    mp.setenv("LABKIT_HOME", str(home))
    try:
        yield str(home)
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def lab(lab_home: str) -> Iterator[Lab]:
    """A running lab (storage only); stopped and purged at the end of the session."""
    the_lab = Lab(lab_home)
    try:
        the_lab.up()
        yield the_lab
    finally:
        the_lab.down(purge=True)


@pytest.fixture
def mysql_conn_params(lab: Lab) -> dict[str, Any]:
    """pymysql.connect(**params) for the lab's `milvus` database."""
    return lab.mysql_params()


@pytest.fixture
def fresh_database(lab: Lab):
    """Factory: ``fresh_database("name")`` -> pymysql params of an empty database the milvus user owns.

    Dropped at the end of the test, so each node test can start from empty metadata.
    """
    made: list[str] = []

    def make(name: str) -> dict[str, Any]:
        made.append(name)
        return lab.create_database(name)

    try:
        yield make
    finally:
        for name in made:
            lab.drop_database(name)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """LABKIT_SKIP_INTEGRATION=1 skips real-service tests (e.g. on a machine without MariaDB)."""
    if os.environ.get("LABKIT_SKIP_INTEGRATION") != "1":
        return
    skip = pytest.mark.skip(reason="LABKIT_SKIP_INTEGRATION=1")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)
