"""The lab's storage, as one object the notebooks and the CLI share.

``Lab()`` finds the running lab through ``LabState``; ``up()`` is idempotent and
repairs only what is broken; ``down()`` stops every recorded service of any kind
(routers and nodes first, then mounts, Redis, MySQL, the object store) by PID.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.lab import procs
from labkit.lab.services import juicefs as jfs
from labkit.lab.services.base import REGISTRY, Service, ServiceStatus, _load_all, backends, get_service
from labkit.lab.state import LabState

# storage services in start order; `down` stops in the reverse of STOP_ORDER's position
STORAGE = ("objectstore", "mysql", "redis", "juicefs")
STOP_ORDER = ("router", "node", "pushgateway", "mount", "juicefs", "redis", "mysql", "objectstore")
# what `down --purge` deletes inside the lab home (never the home itself if other files live there)
PURGE_ITEMS = ("mysql", "redis", "objects", "mounts", "shared", "nodes", "routers", "docker", "pushgateway",
               "juicefs-format.log", "state.json", ".state.lock", "state.tmp")


class Lab:
    """Storage for the cluster: MySQL, Redis, object store, JuiceFS volume and per-node mounts."""

    def __init__(self, home: Path | str | None = None, backend: str | None = None,
                 object_store: str | None = None, mysql_port: int | None = None,
                 redis_port: int | None = None, state: LabState | None = None) -> None:
        self.state = state or LabState(home)
        recorded = self.state.get("mysql") or {}
        store_rec = self.state.get("objectstore") or {}
        self.backend = backend or recorded.get("backend") or "local"
        self.object_store = object_store or store_rec.get("store") or "file"
        self.ports = {"mysql": mysql_port, "redis": redis_port}

    # -- services --------------------------------------------------------------
    @property
    def home(self) -> Path:
        return self.state.home

    @property
    def fuse(self) -> bool:
        """False when nodes share a plain directory instead of JuiceFS mounts."""
        return jfs.fuse_available()[0]

    def service(self, kind: str) -> Service:
        """The storage service of ``kind`` (mysql, redis, objectstore, juicefs) on this lab's backend."""
        backend = self.backend if kind != "juicefs" else "local"
        opts: dict[str, Any] = {}
        if kind in self.ports and self.ports[kind]:
            opts["port"] = self.ports[kind]
        if kind == "objectstore":
            opts["store"] = self.object_store
        return get_service(kind, backend, self.state, kind, **opts)

    def check(self) -> None:
        """Bad input and missing programs, before anything is started or deleted."""
        _load_all()
        for kind in STORAGE[:3]:
            if (kind, self.backend) not in REGISTRY:
                known = sorted(set(backends("mysql")) & set(backends("redis")))
                raise LabError(f"Unknown backend {self.backend!r}; choose one of: {', '.join(known)}.")
        from labkit.lab.services.objectstore import STORES

        if self.object_store not in STORES:
            raise LabError(f"Unknown object store {self.object_store!r}; choose one of: {', '.join(STORES)}.")
        self.state.ensure_home()
        running = {k: (self.state.get(k) or {}) for k in ("mysql", "objectstore")}
        if running["mysql"].get("backend", self.backend) != self.backend:
            raise LabError(f"The lab in {self.home} uses the {running['mysql']['backend']} backend; "
                           "run `labkit down --purge` before switching to another.")
        if running["objectstore"].get("store", self.object_store) != self.object_store:
            raise LabError(f"The lab in {self.home} keeps its JuiceFS data in "
                           f"{running['objectstore']['store']}; "
                           "run `labkit down --purge` before switching the object store.")
        for kind, port in self.ports.items():
            rec = self.state.get(kind) or {}
            if port and rec.get("port") != port and not procs.port_free(port):
                raise LabError(f"Port {port} for {kind} is already in use on 127.0.0.1; "
                               "choose another port or leave it out to pick a free one.")
        for kind in STORAGE[:3]:
            svc = self.service(kind)
            getattr(svc, "store", None)  # validates the object store name
            preflight = getattr(svc, "preflight", None)
            if preflight:
                preflight()
        from labkit.lab.services import binaries

        binaries.juicefs()

    def up(self) -> list[ServiceStatus]:
        """Start (or repair) MySQL, Redis, the object store and the JuiceFS volume, and recorded mounts."""
        self.check()
        for kind in STORAGE:
            self.service(kind).ensure()
        for name, rec in sorted(self.state.services().items()):
            if rec.get("kind") == "mount":
                get_service("mount", rec.get("backend", "local"), self.state, name).ensure()
        return self.status()

    def commands(self) -> dict[str, list[str]]:
        """The commands each storage service runs (secrets masked), e.g. the docker dry run.

        Also the JuiceFS format/mount lines (with placeholders before ``up``) and, for
        comparison, the article's Azure Blob form, which the lab never runs.
        """
        out = {kind: [self.state.mask(c) for c in self.service(kind).commands()] for kind in STORAGE[:3]}
        meta = "redis://:****@127.0.0.1:<redis port>/1"
        if self.state.get("redis") and self.state.get("objectstore"):
            vol = self.volume()
            out["juicefs"] = vol.commands()
            meta = vol.masked_meta_url()
        else:
            bucket = (f"{self.home / 'objects'}/" if self.object_store == "file"
                      else "http://127.0.0.1:<s3 port>/milvus-jfs --access-key testing --secret-key testing")
            out["juicefs"] = [f"juicefs format --storage {self.object_store} --bucket {bucket} "
                              f"--trash-days 0 {meta} {jfs.VOLUME}"]
        node = self.home / "mounts" / "<node>"
        out["juicefs"].append(f"juicefs mount --cache-dir {node}/cache -d --no-usage-report "
                              "--cache-size 1024 --metrics 127.0.0.1:<free port> "
                              f"--log {node}/juicefs.log {meta} {node}/jfs")
        from labkit.lab.services.objectstore import azure_commands

        out["azure (the article's form, not run here)"] = azure_commands(meta)
        return {k: [self.state.mask(c) for c in v] for k, v in out.items()}

    # -- connection facts ------------------------------------------------------
    def meta_uri(self, database: str | None = None) -> str:
        """Milvus ``general.meta_uri``; ``database`` picks another one (see ``create_database``)."""
        url = self.service("mysql").url()
        return url.rsplit("/", 1)[0] + f"/{database}" if database else url

    def create_database(self, name: str) -> dict[str, Any]:
        """A fresh, empty MySQL database for the milvus user (e.g. one per test); pymysql params."""
        return self.service("mysql").create_database(name)  # type: ignore[attr-defined]

    def drop_database(self, name: str) -> None:
        self.service("mysql").drop_database(name)  # type: ignore[attr-defined]

    def sqlalchemy_uri(self) -> str:
        return self.service("mysql").sqlalchemy_url()  # type: ignore[attr-defined]

    def mysql_params(self) -> dict[str, Any]:
        return self.service("mysql").params()  # type: ignore[attr-defined]

    def redis_url(self) -> str:
        return self.service("redis").url()

    def restart(self, kind: str) -> dict[str, Any]:
        """Stop one storage service (data kept) and start it again on the same port; its new record."""
        if kind not in STORAGE[:3]:
            raise LabError(f"Cannot restart {kind!r}; choose one of: {', '.join(STORAGE[:3])}.")
        svc = self.service(kind)
        svc.stop()
        return svc.ensure()

    def juicefs_status(self) -> dict[str, Any]:
        """`juicefs status` of the volume, parsed (Setting, Sessions, Stat)."""
        return self.volume().juicefs_status()

    def volume(self) -> jfs.JuiceFSVolume:
        return self.service("juicefs")  # type: ignore[return-value]

    def fsck(self) -> tuple[bool, str]:
        return self.volume().fsck()

    # -- mounts ----------------------------------------------------------------
    def mount(self, node_name: str, read_only: bool = False) -> Path:
        """This node's own JuiceFS mount (or, without FUSE, the shared local directory)."""
        if not node_name or "/" in node_name or node_name.startswith("."):
            raise LabError(f"Invalid node name {node_name!r}; use letters, digits, '-' or '_'.")
        svc = get_service("mount", "local", self.state, f"mount-{node_name}", node=node_name,
                          read_only=read_only)
        return Path(svc.ensure()["path"])

    def umount(self, node_name: str) -> None:
        name = f"mount-{node_name}"
        if self.state.get(name):
            get_service("mount", "local", self.state, name).stop()

    # -- inspection and teardown -----------------------------------------------
    def _service_for(self, name: str, rec: dict[str, Any]) -> Service | None:
        try:
            return get_service(rec.get("kind", ""), rec.get("backend", "local"), self.state, name)
        except LabError:
            return None  # a kind whose module is not available: handled by PID below

    def status(self) -> list[ServiceStatus]:
        """Every recorded service, any kind, as seen right now."""
        rows = []
        for name, rec in sorted(self.state.services().items(), key=lambda kv: _order(kv[1], start=True)):
            svc = self._service_for(name, rec)
            if svc is not None:
                try:
                    rows.append(svc.status())
                    continue
                except Exception as exc:  # a broken record must not hide the other rows
                    rows.append(ServiceStatus(name, rec.get("kind", "?"), rec.get("backend", "?"), "?",
                                              rec.get("pid"), False, f"status failed: {exc}"))
                    continue
            running = procs.alive(rec.get("pid"), rec.get("expect"))
            rows.append(ServiceStatus(name, rec.get("kind", "?"), rec.get("backend", "?"),
                                      f"{rec.get('host', '')}:{rec.get('port', '')}",
                                      rec.get("pid") if running else None, running, "recorded"))
        return rows

    def down(self, purge: bool = False) -> None:
        """Stop everything recorded (by PID), unmount, and with ``purge`` delete the lab's data."""
        errors = []
        for name, rec in sorted(self.state.services().items(), key=lambda kv: _order(kv[1], start=False)):
            svc = self._service_for(name, rec)
            try:
                if svc is not None:
                    svc.stop(purge=purge)
                else:
                    procs.stop(rec.get("pid"), expect=rec.get("expect"))
                    self.state.forget(name)
            except LabError as exc:
                errors.append(f"{name}: {exc}")
        # mounts nobody recorded (a crashed kernel between mount and record)
        for mp, _ in jfs.mounts_under(self.home):
            jfs.force_unmount(mp)
        if errors:
            raise LabError("Some services did not stop: " + "; ".join(errors))
        if purge:
            self._purge()

    def _purge(self) -> None:
        if jfs.mounts_under(self.home):
            raise LabError(f"Something is still mounted under {self.home}; nothing was deleted.")
        for item in PURGE_ITEMS:
            path = self.home / item
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
        try:
            self.home.rmdir()  # only if nothing else lives there
        except OSError:
            pass


def _order(rec: dict[str, Any], start: bool) -> float:
    """Stop order: routers, nodes, unknown kinds (they may use mounts), mounts, volume, redis, mysql,
    store."""
    kind = rec.get("kind", "")
    pos = STOP_ORDER.index(kind) if kind in STOP_ORDER else 1.5
    return -pos if start else pos
