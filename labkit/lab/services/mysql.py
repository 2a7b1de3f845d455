"""MySQL metadata for the Milvus nodes: MariaDB (or mysqld) run locally from the lab directory.

``mariadb-install-db`` initialises ``<home>/mysql/data``; ``mariadbd`` listens on
127.0.0.1 with its own port and socket. A ``milvus`` database and user get a
generated password; root gets another on every host it exists for (socket and TCP), no account
is left without a password, and file import/export (``LOAD_FILE``, ``INTO OUTFILE``) is confined
to ``<home>/mysql/files``: the server runs as the OS root user. Memory is kept small for Binder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.lab import procs
from labkit.lab.services import binaries
from labkit.lab.services.base import Service, ServiceStatus, register
from labkit.lab.services.ports import start_on_free_port

ARTICLE_PORT = 3306
DATABASE = "milvus"
USER = "milvus"


def meta_uri(user: str, password: str, host: str, port: int, database: str = DATABASE) -> str:
    """The Milvus 1.1 ``general.meta_uri`` form."""
    return f"mysql://{user}:{password}@{host}:{port}/{database}"


def sqlalchemy_uri(user: str, password: str, host: str, port: int, database: str = DATABASE) -> str:
    """The Mishards ``SQLALCHEMY_DATABASE_URI`` form."""
    return f"mysql+pymysql://{user}:{password}@{host}:{port}/{database}?charset=utf8mb4"


def can_connect(params: dict[str, Any], timeout: float = 2.0) -> bool:
    import pymysql

    try:
        conn = pymysql.connect(connect_timeout=timeout, **params)
    except pymysql.MySQLError:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        return True
    except pymysql.MySQLError:
        return False
    finally:
        conn.close()


def _open_accounts(cur: Any) -> list[tuple[str, str]]:
    """Accounts anyone could log in to: anonymous, or unlocked with no password (roles excluded)."""
    cur.execute(
        "SELECT user, host FROM mysql.global_priv WHERE user = '' OR ("
        " IFNULL(JSON_VALUE(priv, '$.authentication_string'), '') = ''"
        " AND IFNULL(JSON_VALUE(priv, '$.account_locked'), 'false') <> 'true'"
        " AND IFNULL(JSON_VALUE(priv, '$.is_role'), 'false') <> 'true')")
    return [(str(u), str(h)) for u, h in cur.fetchall()]


class MySQLBase(Service):
    """What both backends share: credentials and URIs."""

    kind = "mysql"

    def password(self) -> str:
        return self.state.secret("mysql_password")

    def root_password(self) -> str:
        return self.state.secret("mysql_root_password")

    def params(self) -> dict[str, Any]:
        rec = self.record
        return {"host": rec.get("host", "127.0.0.1"), "port": int(rec.get("port") or 0),
                "user": USER, "password": self.password(), "database": DATABASE}

    def url(self) -> str:
        p = self.params()
        return meta_uri(p["user"], p["password"], p["host"], p["port"])

    def sqlalchemy_url(self) -> str:
        p = self.params()
        return sqlalchemy_uri(p["user"], p["password"], p["host"], p["port"])

    def healthy(self) -> bool:
        return bool(self.record.get("port")) and can_connect(self.params())

    def _admin(self):
        """A root connection (autocommit); backends say how."""
        raise NotImplementedError

    def create_database(self, name: str) -> dict[str, Any]:
        """An empty database ``name`` the milvus user may use; returns its pymysql params."""
        if not name.replace("_", "").isalnum() or len(name) > 64:
            raise LabError(f"Invalid database name {name!r}; use letters, digits and '_'.")
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                cur.execute(f"CREATE DATABASE `{name}`")
                for host in ("%", "localhost"):
                    cur.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO %s@%s", (USER, host))
        finally:
            conn.close()
        return {**self.params(), "database": name}

    def drop_database(self, name: str) -> None:
        if name == DATABASE or not name.replace("_", "").isalnum():
            raise LabError(f"Refusing to drop database {name!r}.")
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()


@register
class LocalMySQL(MySQLBase):
    backend = "local"

    # -- paths ---------------------------------------------------------------
    @property
    def base(self) -> Path:
        return self.state.home / "mysql"

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def socket(self) -> Path:
        return self.base / "mysqld.sock"

    @property
    def log(self) -> Path:
        return self.base / "mysqld.err"

    @property
    def files_dir(self) -> Path:
        """The only folder LOAD_FILE / LOAD DATA / INTO OUTFILE may touch (``secure_file_priv``)."""
        return self.base / "files"

    def _server_binary(self) -> str:
        return binaries.require(["mariadbd", "mysqld"], "MySQL (MariaDB)")

    def _install_binary(self) -> str:
        return binaries.require(["mariadb-install-db", "mysql_install_db"], "MySQL (MariaDB)")

    def preflight(self) -> None:
        self._server_binary()
        self._install_binary()

    def _server_cmd(self, port: int) -> list[str]:
        cmd = [self._server_binary(), "--no-defaults", f"--datadir={self.datadir}",
               f"--socket={self.socket}", f"--port={port}", "--bind-address=127.0.0.1",
               f"--pid-file={self.base / 'mysqld.pid'}", f"--log-error={self.log}",
               f"--secure-file-priv={self.files_dir}", "--skip-name-resolve", "--performance-schema=OFF",
               "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M",
               "--max-connections=200", "--character-set-server=utf8mb4",
               "--collation-server=utf8mb4_general_ci"]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        return cmd

    def commands(self) -> list[str]:
        port = self.record.get("port") or ARTICLE_PORT
        try:
            install = [self._install_binary(), "--no-defaults", "--auth-root-authentication-method=normal",
                       f"--datadir={self.datadir}", "--user=root"]
            server = self._server_cmd(port)
        except LabError:
            return []
        return [" ".join(install), " ".join(server)]

    # -- lifecycle -------------------------------------------------------------
    def ensure(self) -> dict[str, Any]:
        rec = self.record
        expect = str(self.datadir)
        if procs.alive(rec.get("pid"), expect) and self.healthy():
            if f"--secure-file-priv={self.files_dir}" in procs.cmdline(rec["pid"]):
                return rec
            # started by an older labkit (no file limit, root open over TCP): restart, which secures it
            procs.stop(rec["pid"], expect=expect, timeout=30)
        if procs.alive(rec.get("pid"), expect):
            # running but not answering: give it a moment (it may still be starting), else restart
            try:
                procs.wait_until(self.healthy, 15, "MySQL", pid=rec["pid"])
                return self.record
            except LabError:
                procs.stop(rec["pid"], expect=expect)
        self.preflight()
        self.state.ensure_home()
        self.base.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.files_dir.mkdir(exist_ok=True, mode=0o700)
        if not (self.datadir / "mysql").is_dir():
            self._install_db()
        return start_on_free_port("MySQL", self.options.get("port"), rec.get("port"), ARTICLE_PORT,
                                  self._start)

    def _start(self, port: int) -> dict[str, Any]:
        expect = str(self.datadir)
        if self.socket.exists():
            self.socket.unlink()  # left by a crashed server; mariadbd refuses to start over it
        pid = procs.spawn(self._server_cmd(port), self.base / "mysqld.out")
        self.state.record(self.name, kind=self.kind, backend=self.backend, stopped=False, pid=pid,
                          host="127.0.0.1", port=port, socket=str(self.socket), expect=expect,
                          datadir=str(self.datadir), log=str(self.log))
        procs.wait_until(lambda: self.socket.exists() and self._root_conn_ok(), 60, "MariaDB",
                         pid=pid, log=self.log)
        self._bootstrap()
        procs.wait_until(self.healthy, 20, "MariaDB (user login)", pid=pid, log=self.log)
        return self.state.record(self.name, bootstrapped=True)

    def _install_db(self) -> None:
        if self.datadir.exists():
            shutil.rmtree(self.datadir)  # a half-initialised datadir from a failed earlier run
        cmd = [self._install_binary(), "--no-defaults", "--auth-root-authentication-method=normal",
               f"--datadir={self.datadir}", "--skip-test-db"]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        log = self.base / "install-db.log"
        with open(log, "ab") as out:
            rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                timeout=300).returncode
        if rc != 0:
            raise LabError(f"mariadb-install-db failed (exit {rc}). Last lines of {log}:\n{procs.tail(log)}")

    def _root_connect(self):
        import pymysql

        for password in (self.root_password(), ""):
            try:
                return pymysql.connect(unix_socket=str(self.socket), user="root", password=password,
                                       connect_timeout=2, autocommit=True)
            except pymysql.MySQLError:
                continue
        return None

    def _admin(self):
        conn = self._root_connect()
        if conn is None:
            raise LabError(f"Cannot log in to MariaDB as root through {self.socket}; is the lab up?")
        return conn

    def _root_conn_ok(self) -> bool:
        conn = self._root_connect()
        if conn is None:
            return False
        conn.close()
        return True

    def _bootstrap(self) -> None:
        """Database, user and passwords; idempotent, so it also runs on every restart."""
        conn = self._root_connect()
        if conn is None:
            raise LabError(f"Cannot log in to MariaDB as root through {self.socket}; "
                           "run `labkit down --purge` to start the lab afresh.")
        pw, root_pw = self.password(), self.root_password()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{DATABASE}`")
                for host in ("%", "localhost"):
                    cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (USER, host, pw))
                    cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (USER, host, pw))
                    cur.execute(f"GRANT ALL PRIVILEGES ON `{DATABASE}`.* TO %s@%s", (USER, host))
                # install-db makes root@localhost, @127.0.0.1, @::1 and @<hostname>, only the first
                # with a password: the addresses get the root password; a host name is never matched
                # under --skip-name-resolve (nor can it be altered), so that account goes
                cur.execute("SELECT user, host FROM mysql.global_priv WHERE user = 'root'")
                for user, host in cur.fetchall():
                    if host in ("localhost", "127.0.0.1", "::1", "%"):
                        cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, root_pw))
                    else:
                        cur.execute("DROP USER %s@%s", (user, host))
                for user, host in _open_accounts(cur):  # anonymous or password-less: nobody's
                    cur.execute("DROP USER %s@%s", (user, host))
                cur.execute("FLUSH PRIVILEGES")
        finally:
            conn.close()

    def stop(self, purge: bool = False) -> None:
        self.stop_process(str(self.datadir), purge, self.base, timeout=30)

    def status(self) -> ServiceStatus:
        rec = self.record
        pid = rec.get("pid")
        running = procs.alive(pid, str(self.datadir))
        healthy = running and self.healthy()
        if healthy or running:
            detail = "accepting logins" if healthy else "process running, not answering"
        else:
            detail = "stopped (data kept)" if rec.get("stopped") else "not running"
        return ServiceStatus(self.name, self.kind, self.backend, f"127.0.0.1:{rec.get('port', '?')}",
                             pid if running else None, healthy, detail)
