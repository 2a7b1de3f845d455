"""The node's logging from the ``logs`` section of server_config.yaml, as Milvus 1.1 lays it out.

``logs.path`` holds one file per level (``milvus-debug.log`` .. ``milvus-fatal.log``), each with
only its own level's records; levels below ``logs.level`` are not written. A file that reaches
``logs.max_log_file_size`` is rotated, keeping ``logs.log_rotate_num`` old files (0 = no limit in
1.1; here 0 keeps 1024, the largest number 1.1 accepts). ``log_to_file`` / ``log_to_stdout`` switch
the files and standard output. Python has no trace level: ``trace.enable`` is read and ignored.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from labkit.node.config import NodeConfig

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR, "fatal": logging.CRITICAL}
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MARK = "_labkit_node_log"


class OnlyLevel(logging.Filter):
    """Pass records of exactly one level (1.1's per-level log files)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno == self.level


def configure(config: NodeConfig, stderr_fallback: bool = True) -> list[Path]:
    """Install the handlers on the root logger (replacing earlier ones of ours); returns the files."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _MARK, False):
            root.removeHandler(h)
            h.close()
    min_level = LEVELS[str(config.get("logs", "level"))]
    root.setLevel(min_level)
    fmt = logging.Formatter(FORMAT)
    files: list[Path] = []
    if config.flag("logs", "log_to_file"):
        folder = Path(str(config.get("logs", "path")))
        folder.mkdir(parents=True, exist_ok=True)
        size = config.size("logs", "max_log_file_size")
        keep = int(config.get("logs", "log_rotate_num")) or 1024
        for name, level in LEVELS.items():
            if level < min_level:
                continue
            path = folder / f"milvus-{name}.log"
            h = logging.handlers.RotatingFileHandler(path, maxBytes=size, backupCount=keep)
            h.addFilter(OnlyLevel(level))
            _add(root, h, fmt)
            files.append(path)
    if config.flag("logs", "log_to_stdout"):
        _add(root, logging.StreamHandler(sys.stdout), fmt)
    elif not files and stderr_fallback:  # nowhere else to go: keep errors visible
        h = logging.StreamHandler(sys.stderr)
        h.setLevel(logging.WARNING)
        _add(root, h, fmt)
    return files


def _add(root: logging.Logger, handler: logging.Handler, fmt: logging.Formatter) -> None:
    handler.setFormatter(fmt)
    setattr(handler, _MARK, True)
    root.addHandler(handler)
