"""rowhash: the Python side of the fingerprint that validates cached file lists (MySQL side:
tests/integration/test_router.py and test_store_mysql.py compare both on real rows)."""

from labkit.milvus import fingerprint as rowhash


def test_order_of_rows_does_not_matter_and_nulls_are_skipped():
    a = [("c", "", 1, None), ("c_p1", "c", 2, 7)]
    assert rowhash.of_rows(a) == rowhash.of_rows(list(reversed(a)))
    assert rowhash.of_rows([("c", "", 1, None)]) == rowhash.of_rows([("c", "", 1)])
    assert rowhash.of_rows([]) == (0, 0)


def test_any_changed_value_or_row_changes_the_fingerprint():
    base = [("c", "", 1, 10, 1700000000000000), ("c", "", 1, 11, 1700000000000001)]
    fp = rowhash.of_rows(base)
    assert fp[0] == 2
    newer = [base[0], ("c", "", 1, 11, 1700000000000002)]  # a delete bumped updated_time
    assert rowhash.of_rows(newer) != fp
    assert rowhash.of_rows(base + [("c", "", 1, 12, 1)]) != fp  # a new file
    assert rowhash.of_rows(base[:1]) != fp  # a file gone (merged, dropped)
    assert rowhash.of_rows([("c", "", 3, 10, 1700000000000000), base[1]]) != fp  # file_type changed


def test_result_row_as_tuple_or_dict():
    from decimal import Decimal

    assert rowhash.of_result((3, Decimal("123"))) == (3, 123)
    assert rowhash.of_result({"COUNT(*)": 3, "s": Decimal("123")}) == (3, 123)
    assert "MD5(CONCAT_WS(" in rowhash.select_sql(["t.a", "f.b"])
