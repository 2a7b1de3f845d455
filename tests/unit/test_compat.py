"""labkit.milvus.proto: pymilvus 1.1.2's message modules rebuilt on the modern protobuf runtime."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.milvus import proto

milvus_pb2, status_pb2, milvus_pb2_grpc = proto.messages()
from milvus.client.prepare import Prepare  # noqa: E402  (after the hook is installed)

# One request per Prepare builder: every request type pymilvus 1.1.2 sends.
REQUESTS = {
    "CollectionName": lambda: Prepare.collection_name("c1"),
    "CollectionSchema": lambda: Prepare.collection_schema("c1", 128, 1024, 1, {"k": 1}),
    "PreloadCollectionParam": lambda: Prepare.preload_param("c1", ["a", "b"]),
    "ReleaseParam": lambda: Prepare.release_param("c1", ["a"]),
    "ReLoadSegmentsParam": lambda: Prepare.reload_param("c1", ["1", "2"]),
    "InsertParam": lambda: Prepare.insert_param("c1", [[0.5, 1.5], [2.0, 3.0]], "p", ids=[7, 8]),
    "InsertParam(binary)": lambda: Prepare.insert_param("c1", [b"\x01\x02", b"\x03\x04"], None),
    "IndexParam": lambda: Prepare.index_param("c1", 2, {"nlist": 64}),
    "SearchParam": lambda: Prepare.search_param("c1", 10, [[0.1, 0.2]], ["p.*"], {"nprobe": 8}),
    "SearchInFilesParam": lambda: Prepare.search_vector_in_files_param("c1", [[0.1, 0.2]], 5, ["3"], {}),
    "Command": lambda: Prepare.cmd("version"),
    "PartitionParam": lambda: Prepare.partition_param("c1", "tag"),
    "DeleteByIDParam": lambda: Prepare.delete_by_id_param("c1", [1, 2, 3], "tag"),
    "FlushParam": lambda: Prepare.flush_param(["c1", "c2"]),
    "Compact": lambda: Prepare.compact_param("c1"),
    "VectorsIdentity": lambda: milvus_pb2.VectorsIdentity(collection_name="c1", id_array=[1, 2],
                                                          partition_tag="p"),
    "GetVectorIDsParam": lambda: milvus_pb2.GetVectorIDsParam(collection_name="c1", segment_name="s"),
}


def test_runtime_is_upb() -> None:
    assert proto.installed()
    assert proto.protobuf_backend() == "upb"


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_every_request_type_round_trips(name: str) -> None:
    msg = REQUESTS[name]()
    data = msg.SerializeToString()
    again = type(msg).FromString(data)
    assert again == msg
    assert again.SerializeToString() == data


def test_service_has_all_41_rpcs_and_request_types_resolve() -> None:
    service = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
    assert len(service.methods) == 41
    for method in service.methods:
        cls = getattr(milvus_pb2, method.input_type.name, None) or getattr(status_pb2, method.input_type.name)
        assert cls.DESCRIPTOR.full_name == method.input_type.full_name
        cls().SerializeToString()


def test_response_types_parse() -> None:
    result = milvus_pb2.TopKQueryResult(status=status_pb2.Status(error_code=0), row_num=2,
                                         ids=[1, 2, -1, 4], distances=[0.0, 1.0, -1.0, 2.0])
    parsed = milvus_pb2.TopKQueryResult.FromString(result.SerializeToString())
    assert list(parsed.ids) == [1, 2, -1, 4]
    assert parsed.status.error_code == status_pb2.SUCCESS
    assert status_pb2.ErrorCode.Name(4) == "COLLECTION_NOT_EXISTS"


def test_serialized_descriptor_extraction_reads_the_installed_file() -> None:
    import importlib.machinery

    spec = importlib.machinery.PathFinder.find_spec("milvus")
    assert spec is not None and spec.submodule_search_locations
    source = Path(next(iter(spec.submodule_search_locations)), "grpc_gen", "status_pb2.py").read_text()
    data = proto.serialized_descriptor(source)
    assert data.startswith(b"\n\x0cstatus.proto")


def test_serialized_descriptor_rejects_unrelated_source() -> None:
    with pytest.raises(ImportError):
        proto.serialized_descriptor("x = 1\n")


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd="/", timeout=60)


def test_plain_interpreter_imports_pymilvus_on_upb() -> None:
    """The .pth hook registers the finder at interpreter start: no labkit import needed."""
    out = _python("from milvus import Milvus; from google.protobuf.internal import api_implementation as a;"
                  "print(a.Type())")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "upb"


def test_without_the_hook_pymilvus_fails_as_documented() -> None:
    out = _python("from milvus import Milvus", LABKIT_NO_COMPAT_HOOK="1")
    assert out.returncode != 0
    assert "Descriptors cannot be created directly" in out.stderr
