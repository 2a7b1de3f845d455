"""The router's logging from Mishards's settings: LOG_LEVEL (DEBUG when DEBUG), LOG_PATH, LOG_NAME, TIMEZONE.

Records go to stderr and, when LOG_PATH is set, to ``<LOG_PATH>/<LOG_NAME>-<level>.log`` (one file
per level, each with its own level's records); timestamps are in TIMEZONE.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from labkit.node.logs import OnlyLevel
from labkit.router.config import RouterConfig

LEVELS = ("debug", "info", "warning", "error", "critical")


class _ZoneFormatter(logging.Formatter):
    def __init__(self, zone: str) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.zone = ZoneInfo(zone)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, self.zone).isoformat(timespec="milliseconds")


def configure(cfg: RouterConfig) -> list[Path]:
    """Install the root handlers; returns the log files."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    level = logging.getLevelName(cfg.log_level)
    root.setLevel(level)
    fmt = _ZoneFormatter(cfg.timezone)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(fmt)
    root.addHandler(console)
    files: list[Path] = []
    if cfg.log_path:
        folder = Path(cfg.log_path)
        folder.mkdir(parents=True, exist_ok=True)
        for name in LEVELS:
            lv = logging.getLevelName(name.upper())
            if lv < level:
                continue
            path = folder / f"{cfg.log_name}-{name}.log"
            h = logging.FileHandler(path)
            h.addFilter(OnlyLevel(lv))
            h.setFormatter(fmt)
            root.addHandler(h)
            files.append(path)
    if cfg.sql_echo:
        logging.getLogger("labkit.router.sql").setLevel(logging.INFO)
    return files
