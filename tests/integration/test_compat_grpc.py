"""A real gRPC server in-process, answered with compat's message classes, driven by pymilvus 1.1.2."""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest

from labkit.lab.procs import free_port
from labkit.milvus import proto

milvus_pb2, status_pb2, milvus_pb2_grpc = proto.messages()
from milvus import Milvus  # noqa: E402


class TinyServicer(milvus_pb2_grpc.MilvusServiceServicer):
    """Just enough of MilvusService to prove both directions of the wire work."""

    def __init__(self) -> None:
        self.inserted: list[list[float]] = []

    def Cmd(self, request, context):
        reply = {"version": "1.1.1", "status": "OK"}.get(request.cmd, "Unknown command")
        return milvus_pb2.StringReply(status=status_pb2.Status(error_code=0), string_reply=reply)

    def HasCollection(self, request, context):
        return milvus_pb2.BoolReply(status=status_pb2.Status(error_code=0),
                                    bool_reply=request.collection_name == "present")

    def Insert(self, request, context):
        rows = [list(r.float_data) for r in request.row_record_array]
        self.inserted.extend(rows)
        ids = list(request.row_id_array) or list(range(len(rows)))
        return milvus_pb2.VectorIds(status=status_pb2.Status(error_code=0), vector_id_array=ids)

    def DescribeCollection(self, request, context):
        return milvus_pb2.CollectionSchema(
            status=status_pb2.Status(error_code=status_pb2.COLLECTION_NOT_EXISTS,
                                     reason="no such collection"))


@pytest.fixture()
def server():
    port = free_port()
    servicer = TinyServicer()
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(servicer, srv)
    srv.add_insecure_port(f"127.0.0.1:{port}")
    srv.start()
    try:
        yield port, servicer
    finally:
        srv.stop(grace=None)


def test_pymilvus_round_trip(server) -> None:
    port, servicer = server
    client = Milvus(host="127.0.0.1", port=port)
    try:
        status, version = client.server_version()
        assert status.OK() and version == "1.1.1"
        status, present = client.has_collection("present")
        assert status.OK() and present is True
        status, ids = client.insert("present", [[1.0, 2.0], [3.0, 4.0]], ids=[10, 11])
        assert status.OK() and list(ids) == [10, 11]
        assert servicer.inserted == [[1.0, 2.0], [3.0, 4.0]]
        status, _ = client.get_collection_info("missing")
        assert status.code == 4 and "no such collection" in status.message
    finally:
        client.close()
