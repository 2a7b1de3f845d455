"""Shared fixtures: one real lab (MariaDB, Redis, object store, JuiceFS volume) per test session.

``lab`` starts the storage services in a temporary LABKIT_HOME and always tears
them down (``down(purge=True)``), even when tests fail. Node and router tests
use it together with ``lab.mount(name)``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit.lab.api import Lab


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


@pytest.fixture
def store_pair(lab: Lab, tmp_path: Path):
    """Context-manager factory: ``with store_pair(meta_uri, "w-mount", "r-mount") as (w, r)``.

    A rw Store on one JuiceFS mount and a ro Store on another (two clients of one volume), both on
    ``meta_uri``; background maintenance parked so tests drive it. Stores closed, their files and
    the mounts removed afterwards.
    """

    @contextlib.contextmanager
    def make(meta_uri: str, writer: str, reader: str) -> Iterator[tuple[Any, Any]]:
        from labkit.node.settings import StoreSettings
        from labkit.node.store import Store

        sub = f"{writer}-{uuid.uuid4().hex[:8]}"
        mounts: list[str] = []
        stores: list[Store] = []
        try:
            a = lab.mount(writer)
            mounts.append(writer)
            b = lab.mount(reader)
            mounts.append(reader)
            common = dict(cluster=True, meta_uri=meta_uri, auto_flush_interval=0, file_cleanup_timeout=0)
            w = Store(StoreSettings(role="rw", storage_path=str(a / sub / "milvus"),
                                    wal_path=str(tmp_path / f"{writer}-wal"), **common))
            w.maintenance_interval = 3600
            w.start()
            stores.append(w)
            r = Store(StoreSettings(role="ro", storage_path=str(b / sub / "milvus"),
                                    wal_path=str(tmp_path / f"{reader}-wal"), **common))
            r.start()
            stores.append(r)
            yield w, r
        finally:
            for st in stores:
                st.close()
            if mounts:
                shutil.rmtree(lab.mount(mounts[0]) / sub, ignore_errors=True)
            for name in mounts:
                lab.umount(name)

    return make


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """LABKIT_SKIP_INTEGRATION=1 skips real-service tests (e.g. on a machine without MariaDB)."""
    if os.environ.get("LABKIT_SKIP_INTEGRATION") != "1":
        return
    skip = pytest.mark.skip(reason="LABKIT_SKIP_INTEGRATION=1")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)
