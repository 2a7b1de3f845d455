"""Router wire helpers: SearchInFiles built around raw SearchParam bytes, typed error replies."""

from labkit.milvus.proto import messages
from labkit.router.search import search_in_files_bytes
from labkit.router.server import error_reply

pb, status_pb, _ = messages()


def test_search_in_files_bytes_decode_as_the_real_message():
    sp = pb.SearchParam(collection_name="c", topk=5, partition_tag_array=["a"])
    sp.query_record_array.add().float_data.extend([0.5] * 300)  # > 127 bytes: multi-byte varint
    sp.extra_params.add(key="params", value="{}")
    raw = search_in_files_bytes(["12", "345678901234567"], sp.SerializeToString())
    back = pb.SearchInFilesParam.FromString(raw)
    assert list(back.file_id_array) == ["12", "345678901234567"]
    assert back.search_param == sp


def test_error_reply_has_the_methods_type():
    res = pb.TopKQueryResult.FromString(error_reply("Search", 1, "down"))
    assert (res.status.error_code, res.status.reason, res.row_num) == (1, "down", 0)
    st = status_pb.Status.FromString(error_reply("Flush", 4, "gone"))
    assert (st.error_code, st.reason) == (4, "gone")
    rep = pb.StringReply.FromString(error_reply("Cmd", 1, "x"))
    assert rep.status.error_code == 1
