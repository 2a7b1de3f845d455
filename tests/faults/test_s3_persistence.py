"""The S3 object store keeps every object across `labkit down` / `up`, and status sees a lost bucket."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from labkit.lab import procs
from labkit.lab.api import Lab
from labkit.lab.services import juicefs as jfs
from labkit.lab.services.objectstore import BUCKET

pytestmark = [pytest.mark.integration, pytest.mark.faults]
needs_fuse = pytest.mark.skipif(not jfs.fuse_available()[0], reason="no FUSE here")


def _s3(lab: Lab):
    import boto3

    store = lab.service("objectstore")
    access, secret = store.s3_keys()  # type: ignore[attr-defined]
    endpoint = store.endpoint()  # type: ignore[attr-defined]
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-west-2",
                        aws_access_key_id=access, aws_secret_access_key=secret)


def _keys(lab: Lab) -> set[str]:
    pages = _s3(lab).get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


@needs_fuse
def test_objects_survive_down_and_up_and_a_lost_bucket_is_reported(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "s3lab", object_store="s3")
    storage = ("objectstore", "redis", "juicefs")
    ports: list[int] = []
    try:
        for kind in storage:
            lab.service(kind).ensure()
        mnt = lab.mount("s3-node")
        payload = os.urandom(6 * 2**20 + 11)
        (mnt / "blob.bin").write_bytes(payload)
        before = _keys(lab)
        assert any("/chunks/" in k for k in before)
        pid = lab.state.get("objectstore")["pid"]
        ports = list(lab.state.get("objectstore").get("ports", {}).values())

        lab.down()  # data kept
        assert not procs.alive(pid)
        # a cold read: nothing may come from the mount's local block cache
        shutil.rmtree(tmp_path / "s3lab" / "mounts" / "s3-node" / "cache")
        for kind in storage:
            lab.service(kind).ensure()
        assert lab.state.get("objectstore")["pid"] != pid
        assert _keys(lab) == before
        mnt = lab.mount("s3-node")
        assert hashlib.sha256((mnt / "blob.bin").read_bytes()).digest() == hashlib.sha256(payload).digest()
        rows = {r.name: r for r in lab.status()}
        assert rows["objectstore"].healthy, rows["objectstore"].detail
        ok, out = lab.fsck()
        assert ok, out

        lab.umount("s3-node")
        s3 = _s3(lab)
        for key in before:
            s3.delete_object(Bucket=BUCKET, Key=key)
        s3.delete_bucket(Bucket=BUCKET)
        row = {r.name: r for r in lab.status()}["objectstore"]
        assert not row.healthy and "MISSING" in row.detail
    finally:
        lab.down(purge=True)
    left = [p for port in ports for p in Path("/tmp").glob(f"seaweedfs-*-{port}.sock")]
    assert not left  # the gRPC sockets weed leaves in /tmp
