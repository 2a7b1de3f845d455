"""What notebooks show of an existing cluster: masked URIs and the settings the benchmark refuses."""

from __future__ import annotations

import pytest

from labkit.bench import first_query
from labkit.errors import LabError
from labkit.lab import existing
from labkit.nb import existing_view


def test_mask_hides_only_the_password() -> None:
    masked = existing_view.mask("mysql://milvus:s3cr:et@10.0.0.5:3306/milvus")
    assert masked == "mysql://milvus:****@10.0.0.5:3306/milvus"
    assert existing_view.mask("redis://:pw@127.0.0.1:6379/1") == "redis://:****@127.0.0.1:6379/1"
    assert existing_view.mask("/var/lib/milvus") == "/var/lib/milvus"


def test_sentence_names_every_address() -> None:
    ext = existing.load({"LABKIT_CLUSTER_ROUTER": "10.0.0.1:19531", "LABKIT_CLUSTER_RW": "10.0.0.2:19530",
                         "LABKIT_CLUSTER_RO": "10.0.0.3:19530,10.0.0.4:19530"})
    text = existing_view.sentence(ext)
    for part in ("router 10.0.0.1:19531", "rw 10.0.0.2:19530", "ro1 10.0.0.3:19530", "ro2 10.0.0.4:19530"):
        assert part in text
    assert "(environment)" in text


def test_auto_flush_without_mysql_is_refused_before_anything_runs() -> None:
    ext = existing.load({"LABKIT_CLUSTER_ROUTER": "127.0.0.1:1"})
    with pytest.raises(LabError, match="LABKIT_CLUSTER_MYSQL"):
        first_query.run_existing(ext, "ci", auto_flush=True)
