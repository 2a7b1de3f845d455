"""LabState: the 0600 state file, secrets, masking, locking, bad homes."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from labkit.errors import LabError
from labkit.lab.state import LabState, mask_url_passwords


def test_secret_is_generated_once_and_file_is_private(tmp_path: Path) -> None:
    st = LabState(tmp_path / "lab")
    first = st.secret("redis_password")
    assert len(first) == 24 and first == LabState(tmp_path / "lab").secret("redis_password")
    assert st.secret("mysql_password") != first
    assert stat.S_IMODE(st.path.stat().st_mode) == 0o600


def test_mask_hides_secrets_and_url_passwords(tmp_path: Path) -> None:
    st = LabState(tmp_path)
    pw = st.secret("mysql_password")
    text = f"mysql://milvus:{pw}@127.0.0.1:3306/milvus and PASSWORD={pw}"
    masked = st.mask(text)
    assert pw not in masked and masked.count("****") == 2
    assert mask_url_passwords("redis://:s3cret@127.0.0.1:6379/1") == "redis://:****@127.0.0.1:6379/1"
    assert mask_url_passwords("mysql+pymysql://u:p@h:1/db?charset=utf8mb4") == "mysql+pymysql://u:****@h:1/db?charset=utf8mb4"
    assert mask_url_passwords("http://127.0.0.1:5000/bucket") == "http://127.0.0.1:5000/bucket"


def test_record_merges_and_forget_removes(tmp_path: Path) -> None:
    st = LabState(tmp_path)
    st.record("redis", kind="redis", port=1)
    st.record("redis", pid=42)
    assert st.get("redis")["port"] == 1 and st.get("redis")["pid"] == 42
    st.forget("redis")
    assert st.get("redis") is None and st.services() == {}


def test_concurrent_records_are_not_lost(tmp_path: Path) -> None:
    st = LabState(tmp_path)

    def write(i: int) -> None:
        LabState(tmp_path).record(f"svc{i}", kind="node", port=i)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(st.services()) == 16


def test_damaged_state_file_is_a_clear_error(tmp_path: Path) -> None:
    st = LabState(tmp_path)
    st.path.write_text("{not json")
    with pytest.raises(LabError, match="damaged"):
        st.services()
    assert st.path.read_text() == "{not json"  # nothing overwritten


def test_unwritable_home_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    with pytest.raises(LabError, match="not writable"):
        LabState(blocker / "lab").ensure_home()
    assert blocker.read_text() == "keep me"
