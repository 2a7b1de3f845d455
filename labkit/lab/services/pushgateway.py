"""A Prometheus Pushgateway (Debian's ``prometheus-pushgateway``) on 127.0.0.1, where nodes push metrics.

Milvus 1.1 pushes its metrics to ``metric.address:metric.port`` (default 127.0.0.1:9091) every
second; the lab starts one gateway and writes its port into the node configs when metrics are on.
``scrape()`` reads back what the gateway holds, in the Prometheus text format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.lab import procs
from labkit.lab.services import binaries
from labkit.lab.services.base import Service, ServiceStatus, register
from labkit.lab.services.ports import start_on_free_port

DEFAULT_PORT = 9091
PROGRAM = "prometheus-pushgateway"


def healthy(port: int, host: str = "127.0.0.1") -> bool:
    import requests

    try:
        return requests.get(f"http://{host}:{port}/-/healthy", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text format -> {family sample name: [(labels, value), ...]} (comments skipped)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


@register
class LocalPushgateway(Service):
    kind = "pushgateway"
    backend = "local"

    @property
    def base(self) -> Path:
        return self.state.home / "pushgateway"

    @property
    def log(self) -> Path:
        return self.base / "pushgateway.log"

    def url(self) -> str:
        return f"http://127.0.0.1:{self.record.get('port')}"

    @staticmethod
    def _expect(port: Any) -> str:
        return f"--web.listen-address=127.0.0.1:{port}"

    def _cmd(self, port: int) -> list[str]:
        return [binaries.require([PROGRAM], "The Pushgateway"), self._expect(port),
                f"--persistence.file={self.base / 'metrics.store'}", "--persistence.interval=5s"]

    def commands(self) -> list[str]:
        try:
            return [" ".join(self._cmd(int(self.record.get("port") or DEFAULT_PORT)))]
        except LabError:
            return []

    def ensure(self) -> dict[str, Any]:
        rec = self.record
        if procs.alive(rec.get("pid"), self._expect(rec.get("port"))) and healthy(int(rec["port"])):
            return rec
        binaries.require([PROGRAM], "The Pushgateway")
        return start_on_free_port("Pushgateway", self.options.get("port"), rec.get("port"), DEFAULT_PORT,
                                  self._start)

    def _start(self, port: int) -> dict[str, Any]:
        self.base.mkdir(parents=True, exist_ok=True)
        pid = procs.spawn(self._cmd(port), self.log)
        rec = self.state.record(self.name, kind=self.kind, backend=self.backend, stopped=False, pid=pid,
                                host="127.0.0.1", port=port, expect=self._expect(port), log=str(self.log))
        try:
            procs.wait_until(lambda: healthy(port), 20, "Pushgateway", pid=pid, log=self.log)
        except LabError as exc:
            if "address already in use" in procs.tail(self.log).lower():
                procs.stop(pid, expect=self._expect(port))
                raise LabError(f"Pushgateway: address already in use (port {port})") from exc
            raise
        return rec

    def scrape(self) -> str:
        """The gateway's /metrics page (what Prometheus would scrape)."""
        import requests

        resp = requests.get(self.url() + "/metrics", timeout=5)
        resp.raise_for_status()
        return resp.text

    def stop(self, purge: bool = False) -> None:
        self.stop_process(self._expect(self.record.get("port")), purge, self.base)

    def status(self) -> ServiceStatus:
        rec = self.record
        running = procs.alive(rec.get("pid"), self._expect(rec.get("port")))
        ok = running and healthy(int(rec["port"]))
        detail = "healthy" if ok else ("process running, not healthy" if running else "not running")
        return ServiceStatus(self.name, self.kind, self.backend, f"127.0.0.1:{rec.get('port', '?')}",
                             rec.get("pid") if running else None, ok, detail)
