"""Router settings: Mishards variable names, .env files, host:port entries, clear errors."""

import pytest

from labkit.errors import LabError
from labkit.router import config

URI = "mysql+pymysql://root:p%40ss@127.0.0.1:3307/milvus?charset=utf8mb4"


def test_mishards_names_and_defaults():
    cfg = config.load({"WOSERVER": "tcp://127.0.0.1:19540", "SQLALCHEMY_DATABASE_URI": URI,
                       "DISCOVERY_STATIC_HOSTS": "127.0.0.1:19541, 127.0.0.1:19542,10.0.0.5"})
    assert cfg.woserver == "127.0.0.1:19540"
    assert cfg.db == {"host": "127.0.0.1", "port": 3307, "user": "root", "password": "p@ss",
                      "database": "milvus", "charset": "utf8mb4"}
    assert cfg.static_hosts == ["127.0.0.1:19541", "127.0.0.1:19542", "10.0.0.5:19530"]
    assert (cfg.server_port, cfg.max_retry, cfg.max_workers, cfg.discovery) == (19530, 3, 50, "static")


def test_env_file_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# mishards\nexport WOSERVER='tcp://127.0.0.1:1'\nSQLALCHEMY_DATABASE_URI=" + URI + "\n"
        'SERVER_PORT="19531"\nDISCOVERY_PLUGIN_PATH=static\nDISCOVERY_STATIC_PORT=19600\n'
        "DISCOVERY_STATIC_HOSTS=127.0.0.1\nMAX_RETRY=1\n")
    cfg = config.load({"WOSERVER": "tcp://127.0.0.1:2"}, env_file=env_file)
    assert cfg.woserver == "127.0.0.1:2"
    assert cfg.server_port == 19531 and cfg.max_retry == 1
    assert cfg.static_hosts == ["127.0.0.1:19600"]


@pytest.mark.parametrize("env, words", [
    ({"SQLALCHEMY_DATABASE_URI": URI}, "WOSERVER"),
    ({"WOSERVER": "tcp://h:1"}, "SQLALCHEMY_DATABASE_URI"),
    ({"WOSERVER": "tcp://h:1", "SQLALCHEMY_DATABASE_URI": "sqlite:///x"}, r"mysql\+pymysql"),
    ({"WOSERVER": "http://h:1", "SQLALCHEMY_DATABASE_URI": URI}, "tcp://host:port"),
    ({"WOSERVER": "tcp://h:1", "SQLALCHEMY_DATABASE_URI": URI, "MAX_RETRY": "x"}, "MAX_RETRY"),
    ({"WOSERVER": "tcp://h:1", "SQLALCHEMY_DATABASE_URI": URI, "DISCOVERY_STATIC_HOSTS": "h:99999"}, "host:port"),
    ({"WOSERVER": "tcp://h:1", "SQLALCHEMY_DATABASE_URI": URI, "DISCOVERY_CLASS_NAME": "kubernetes"}, "static"),
])
def test_bad_settings_are_one_clear_error(env, words):
    with pytest.raises(LabError, match=words):
        config.load(env)


def test_labkit_discovery_may_omit_woserver():
    cfg = config.load({"SQLALCHEMY_DATABASE_URI": URI, "DISCOVERY_CLASS_NAME": "labkit"})
    assert cfg.woserver == "" and cfg.discovery == "labkit"


def test_hosts_file_is_reread_when_it_changes(tmp_path):
    import os

    from labkit.router.discovery import Discovery

    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1:1\n")
    cfg = config.load({"WOSERVER": "tcp://127.0.0.1:9", "SQLALCHEMY_DATABASE_URI": URI,
                       "DISCOVERY_STATIC_HOSTS_FILE": str(hosts), "DISCOVERY_STATIC_HOSTS": "127.0.0.1:5"})
    d = Discovery(cfg)
    assert d.read_nodes() == ["127.0.0.1:5", "127.0.0.1:1"]
    hosts.write_text("127.0.0.1:2, 127.0.0.1:3\n")
    os.utime(hosts, (1, 1))  # a distinct mtime even within one clock tick
    assert d.read_nodes() == ["127.0.0.1:5", "127.0.0.1:2", "127.0.0.1:3"]
    d.remove("127.0.0.1:5")
    d.add("127.0.0.1:4")
    d.suspend("127.0.0.1:2")
    assert d.read_nodes() == ["127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"]
    assert d.live_nodes() == ["127.0.0.1:3", "127.0.0.1:4"]
    assert d.suspended() == ["127.0.0.1:2"]
