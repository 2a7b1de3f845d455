"""``python -m labkit.node --config server_config.yaml``: one Milvus 1.1 lab node (rw or ro).

Validates the config as 1.1 does (a refused value stops the start with 1.1's message), sets up
logging from ``logs.*``, starts the Store (meta, locks, WAL replay, background threads), then
serves gRPC (and pushes metrics when ``metric.enable``) until SIGTERM or SIGINT; then stops
accepting calls, lets running ones finish (2 s) and closes the Store.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from labkit.node.config import NodeConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m labkit.node", description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="path of a Milvus 1.1 server_config.yaml")
    ap.add_argument("--workers", type=int, default=16, help="gRPC worker threads")
    args = ap.parse_args(argv)
    try:
        config = NodeConfig.load(args.config)
    except ValueError as exc:
        print(f"labkit.node: {exc}", file=sys.stderr)
        return 1
    from labkit.node import live, logs
    from labkit.node.frame_server import FrameServer
    from labkit.node.server import MilvusServicer, build_server, frame_handlers
    from labkit.node.store import Store

    logs.configure(config)
    log = logging.getLogger("labkit.node")
    for key in config.ignored:
        log.warning("server_config.yaml: %s is not a Milvus 1.1 setting; ignored", key)
    live.apply_engine_config(config)
    settings = config.to_settings()
    store = Store(settings)
    try:
        store.start()
    except Exception as exc:
        log.exception("store failed to start")
        print(f"labkit.node: the store could not start: {exc}", file=sys.stderr)
        return 1
    live.register(config, store)
    servicer = MilvusServicer(store, config)
    pusher = None
    if config.flag("metric", "enable"):
        from labkit.node.metrics import NodeMetrics, Pusher, sampler_for

        servicer.metrics = NodeMetrics()
        pusher = Pusher(servicer.metrics, str(config.get("metric", "address")),
                        int(config.get("metric", "port")), config.port, sample=sampler_for(store)).start()
    try:
        server = build_server(servicer, config.address, config.port, args.workers)
    except (OSError, RuntimeError) as exc:
        store.close()
        print(f"labkit.node: {exc}", file=sys.stderr)
        return 1
    http = None
    if config.http_enabled:
        from labkit.node.http_api import HttpServer

        try:
            http = HttpServer(servicer, config.address, config.http_port).start()
        except OSError as exc:
            store.close()
            print(f"labkit.node: {exc}", file=sys.stderr)
            return 1
    # the router's per-search calls, framed on plain TCP (labkit.milvus.frames); gRPC serves them too
    try:
        frame_server = FrameServer(frame_handlers(servicer), config.address).start()
        servicer.frame_port = frame_server.port
    except OSError as exc:  # the router then calls this node over gRPC only
        log.warning("no frame port (%s); the router will use gRPC for every call", exc)
        frame_server = None
    done = threading.Event()

    def _stop(signum, frame):  # noqa: ARG001
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.start()
    log.info("Milvus 1.1 lab node (%s) listening on %s:%s%s, storage %s, meta %s",
             config.role, config.address, config.port, f" (HTTP {config.http_port})" if http else "",
             settings.storage_path, settings.meta_uri.split("@")[-1])
    done.wait()
    log.info("stopping")
    if frame_server is not None:
        frame_server.stop()
    server.stop(grace=2).wait()
    if http is not None:
        http.stop()
    if pusher is not None:
        pusher.stop()
    store.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
