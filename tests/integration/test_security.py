"""What an attacker on 127.0.0.1 (or another OS user) can reach: database accounts, files, secrets."""

from __future__ import annotations

import pymysql
import pytest

from labkit.lab.api import Lab

pytestmark = pytest.mark.integration


def _root(lab: Lab) -> pymysql.Connection:
    rec = lab.state.get("mysql")
    return pymysql.connect(host="127.0.0.1", port=int(rec["port"]), user="root",
                           password=lab.state.secret("mysql_root_password"), autocommit=True)


def test_mariadb_root_needs_a_password_over_tcp(lab: Lab) -> None:
    port = int(lab.state.get("mysql")["port"])
    for host in ("127.0.0.1", "localhost"):
        with pytest.raises(pymysql.err.OperationalError) as err:
            pymysql.connect(host=host, port=port, user="root", password="", connect_timeout=5)
        assert err.value.args[0] == 1045  # access denied
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(host="127.0.0.1", port=port, user="", password="", connect_timeout=5)


def test_no_account_without_a_password(lab: Lab) -> None:
    with _root(lab) as conn, conn.cursor() as cur:
        cur.execute("SELECT user, host, JSON_VALUE(priv, '$.authentication_string'),"
                    " JSON_VALUE(priv, '$.account_locked') FROM mysql.global_priv")
        accounts = cur.fetchall()
    assert ("root", "127.0.0.1") in {(u, h) for u, h, _, _ in accounts}
    open_ones = [(u, h) for u, h, auth, locked in accounts if not auth and locked != "true"]
    assert open_ones == []


def test_root_cannot_read_or_write_files_outside_the_lab_folder(lab: Lab, tmp_path) -> None:
    with _root(lab) as conn, conn.cursor() as cur:
        cur.execute("SELECT @@secure_file_priv")
        allowed = cur.fetchone()[0]
        assert allowed and allowed.rstrip("/") == str(lab.home / "mysql" / "files")
        cur.execute("SELECT LOAD_FILE('/etc/hostname')")
        assert cur.fetchone()[0] is None
        target = tmp_path / "outfile.txt"
        with pytest.raises(pymysql.err.MySQLError) as err:
            cur.execute(f"SELECT 'x' INTO OUTFILE '{target}'")
        assert err.value.args[0] == 1290  # running with --secure-file-priv
        assert not target.exists()
