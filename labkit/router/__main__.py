"""``python -m labkit.router [--env-file FILE] [--port N]``: run the Mishards-compatible router.

Settings come from the environment and ``--env-file`` (Mishards's variable names; see
``labkit.router.config``). Stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from labkit.errors import LabError
from labkit.router import config, logs, server


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m labkit.router", description=__doc__.splitlines()[0])
    ap.add_argument("--env-file", help="a Mishards-style .env file (environment variables win)")
    ap.add_argument("--port", type=int, help="client port (overrides SERVER_PORT)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = config.load(env_file=args.env_file)
        if args.port:
            cfg.server_port = args.port
        logs.configure(cfg)
        grpc_server, router = server.serve(cfg)
    except LabError as exc:
        print(f"labkit router: {exc}", file=sys.stderr)
        return 1
    pusher = None
    if cfg.pushgateway:
        from labkit.router.metrics import RouterPusher

        stats = router.stats
        snapshot = stats.snapshot if hasattr(stats, "snapshot") else (lambda: dict(stats))
        pusher = RouterPusher(snapshot, cfg.pushgateway, f"{cfg.server_bind}:{cfg.server_port}").start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server.wait_forever(grpc_server, stop)
    finally:
        if pusher is not None:
            pusher.stop()
        router.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
