"""Fault drills against a throw-away cluster on the running lab: what clients see, and whether it heals.

``labkit bench faults [--drills mysql-restart,redis-restart,...] --json``

Each drill builds its own small cluster (``EphemeralCluster``: fresh database and storage folder),
writes rows the client sees acknowledged, injects one fault as an operator would (stop a service,
kill -9 or SIGSTOP a process, kill a JuiceFS client), and measures: rows acknowledged vs found
afterwards, seconds from the fault's end until the system answers again (``recovery_s``), calls
that failed for clients during the fault (``client_errors``), and latency percentiles during it.
``recovery_s`` starts when the service is back (``service_restart_s`` is how long it took to start),
or, for a dead mount, when ``labkit up`` starts.
The tests in tests/faults run the same drills and assert on these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from labkit.bench import add_output_args, emit
from labkit.bench.ephemeral import EphemeralCluster
from labkit.errors import LabError
from labkit.lab import cluster, procs

DIM = 8


def vectors(n: int, seed: int) -> list[list[float]]:
    return np.random.default_rng(seed).random((n, DIM), dtype=np.float32).tolist()


def ok(call: Callable[[], Any]) -> bool:
    """True if a pymilvus call returned an OK status (a raised error counts as a failure)."""
    try:
        out = call()
    except Exception:  # noqa: BLE001 - any client-side failure is what a user would see
        return False
    status = out[0] if isinstance(out, tuple) else out
    return bool(getattr(status, "OK", lambda: False)())


def seconds_until(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> float | None:
    """Seconds until ``check()`` is first true (an exception counts as false); None after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if check():
                return round(time.monotonic() - start, 3)
        except Exception:  # noqa: BLE001 - still failing
            pass
        time.sleep(interval)
    return None


def wait_ok(call: Callable[[], Any], timeout: float, interval: float = 0.1) -> float | None:
    """Seconds until the pymilvus ``call`` first succeeds, None if it never did within ``timeout``."""
    return seconds_until(lambda: ok(call), timeout, interval)


def count(client: Any, name: str) -> int | None:
    try:
        status, n = client.count_entities(name)
    except Exception:  # noqa: BLE001
        return None
    return int(n) if status.OK() else None


def percentiles(samples: list[float]) -> dict[str, float | None]:
    if not samples:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    a = np.asarray(samples) * 1000.0
    return {"p50_ms": round(float(np.percentile(a, 50)), 1), "p99_ms": round(float(np.percentile(a, 99)), 1),
            "max_ms": round(float(a.max()), 1)}


def new_collection(client: Any, name: str) -> None:
    status = client.create_collection({"collection_name": name, "dimension": DIM, "index_file_size": 1,
                                       "metric_type": 1})
    if not status.OK():
        raise LabError(f"Could not create collection {name}: {status.message}")


def insert_acked(client: Any, name: str, n: int, seed: int) -> int:
    """Insert ``n`` rows; the number the server acknowledged (0 if it refused)."""
    try:
        status, ids = client.insert(name, vectors(n, seed))
    except Exception:  # noqa: BLE001
        return 0
    return len(ids) if status.OK() else 0


def seeded(client: Any, name: str) -> int:
    """A new collection ``name`` with 1,000 rows flushed; the rows acknowledged."""
    new_collection(client, name)
    acked = insert_acked(client, name, 1000, 1)
    client.flush([name])
    return acked


def restart_seconds(service: Any) -> float:
    """Start a stopped storage service again (``ensure``: back and answering); seconds it took."""
    start = time.monotonic()
    service.ensure()
    return round(time.monotonic() - start, 3)


def node_health(lab: Any, name: str) -> tuple[bool, str]:
    """(healthy, detail) of node ``name`` as `labkit status` shows it."""
    from labkit.lab.services.base import get_service

    row = get_service("node", "local", lab.state, name).status()
    return row.healthy, row.detail


# -- drills ----------------------------------------------------------------------------------------

def mysql_restart(lab: Any, down_s: float = 3.0) -> dict[str, Any]:
    """Stop MariaDB under a running rw node, start it again: the node must answer without a restart."""
    with EphemeralCluster(lab, "fd-mysql", ro=1, router=False) as ec:
        client, name = ec.node_clients[ec.rw_name], "fd_mysql"
        acked = seeded(client, name)
        node_pid = ec.records[ec.rw_name]["pid"]
        mysql = lab.service("mysql")
        mysql.stop()
        errors, calls = 0, 0
        try:
            deadline = time.monotonic() + down_s
            while time.monotonic() < deadline:
                calls += 1
                errors += count(client, name) is None
                time.sleep(0.2)
            healthy_during, detail_during = node_health(lab, ec.rw_name)
        finally:
            service_s = restart_seconds(mysql)  # MariaDB back and accepting logins
        recovery = wait_ok(lambda: client.count_entities(name), 30)
        acked += insert_acked(client, name, 500, 2)
        client.flush([name])
        found = count(client, name)
        healthy_after, _ = node_health(lab, ec.rw_name)
        return {"drill": "mysql-restart", "acked": acked, "found": found, "recovery_s": recovery,
                "service_restart_s": service_s,
                "client_errors": errors, "client_calls": calls,
                "node_restarted": (lab.state.get(ec.rw_name) or {}).get("pid") != node_pid,
                "reported_unhealthy_during": not healthy_during, "detail_during": detail_during,
                "healthy_after": healthy_after}


def kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    procs.wait_until(lambda: not procs.alive(pid), 10, f"killed process {pid}")


def redis_restart(lab: Any, down_s: float = 2.0) -> dict[str, Any]:
    """kill -9 Redis (JuiceFS metadata) under a cluster, start it again: mounts and flushes heal."""
    with EphemeralCluster(lab, "fd-redis", ro=1, router=False) as ec:
        client, name = ec.node_clients[ec.rw_name], "fd_redis"
        acked = seeded(client, name)
        redis = lab.service("redis")
        kill9(int(redis.record["pid"]))
        try:
            # inserts are acknowledged from the WAL (local disk) while the JuiceFS metadata is gone
            acked += insert_acked(client, name, 300, 2)
            time.sleep(down_s)
        finally:
            service_s = restart_seconds(redis)
        mount = ec.mounts[ec.rw_name]

        def mount_works() -> bool:
            probe = mount / ec.storage_dir / "fault-probe"
            probe.write_bytes(b"x" * 4096)
            return probe.read_bytes() == b"x" * 4096

        mount_s = seconds_until(mount_works, 30)
        recovery = wait_ok(lambda: client.flush([name]), 30)
        found = count(client, name)
        rows = {r.name: r for r in lab.status()}
        mounts_ok = all(rows[f"mount-{n}"].healthy for n in ec.names)
        return {"drill": "redis-restart", "acked": acked, "found": found, "recovery_s": recovery,
                "service_restart_s": service_s,
                "mount_recovery_s": mount_s, "client_errors": 0 if mount_s is not None else 1,
                "mounts_healthy_after": mounts_ok}


def rw_kill(lab: Any, batch: int = 200, seconds: float = 3.0) -> dict[str, Any]:
    """kill -9 the rw node while a client inserts; restart it: every acknowledged row is found."""
    with EphemeralCluster(lab, "fd-rwkill", ro=1, router=False) as ec:
        rec = ec.records[ec.rw_name]
        client, name = ec.node_clients[ec.rw_name], "fd_rwkill"
        new_collection(client, name)
        acked, sent, failed, stop = [0], [0], [0], threading.Event()

        def writer() -> None:
            c = cluster.connect(rec)
            seed = 10
            while not stop.is_set():
                seed += 1
                sent[0] += batch
                got = insert_acked(c, name, batch, seed)
                if not got:
                    failed[0] += 1
                    break  # the node died under us
                acked[0] += got
            c.close()

        t = threading.Thread(target=writer)
        t.start()
        time.sleep(seconds)
        kill9(int(rec["pid"]))
        # the writer stops on its own at the first refused insert; ``stop`` only bounds a writer
        # that never notices (setting it right after the kill could end a writer between two
        # acknowledged batches, with no insert refused)
        t.join(30)
        stop.set()
        t.join(30)
        start = time.monotonic()
        rec = cluster.start_node(lab, ec.rw_name, role="rw", meta_uri=ec.meta_uri, port=int(rec["port"]),
                                 storage_path=rec["storage_path"])
        ec.records[ec.rw_name] = rec
        c = cluster.connect(rec)
        try:
            recovery = wait_ok(lambda: c.flush([name]), 30)
            restart_s = round(time.monotonic() - start, 3)
            found = count(c, name)
        finally:
            c.close()
        return {"drill": "rw-kill", "acked": acked[0], "found": found, "in_flight": sent[0] - acked[0],
                "recovery_s": recovery, "restart_s": restart_s, "client_errors": failed[0]}


def ro_kill(lab: Any, seconds: float = 6.0, clients: int = 2) -> dict[str, Any]:
    """kill -9 a read node during routed searches: no client error, no partial result."""
    with EphemeralCluster(lab, "fd-rokill", ro=2, router=True) as ec:
        name = "fd_rokill"
        new_collection(ec.client, name)
        acked = 0
        for i in range(4):  # several segments, spread over both read nodes
            acked += insert_acked(ec.client, name, 2000, 20 + i)
            ec.client.flush([name])
        queries = vectors(5, 99)
        status, expected = ec.client.search(name, 10, queries, params={})
        if not status.OK():
            raise LabError(f"search before the fault failed: {status.message}")
        want = [[hit.id for hit in row] for row in expected]
        errors, partial, latencies, lock, stop = [0], [0], [], threading.Lock(), threading.Event()

        def searcher() -> None:
            c = cluster.connect(ec.router)
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    st, res = c.search(name, 10, queries, params={})
                    good = st.OK()
                    ids = [[hit.id for hit in row] for row in res] if good else None
                except Exception:  # noqa: BLE001
                    good, ids = False, None
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    errors[0] += not good
                    partial[0] += good and ids != want
            c.close()

        threads = [threading.Thread(target=searcher) for _ in range(clients)]
        for t in threads:
            t.start()
        time.sleep(seconds / 3)
        kill9(int(ec.records[_busiest_read_node(ec, name)]["pid"]))
        time.sleep(seconds * 2 / 3)
        stop.set()
        for t in threads:
            t.join(30)
        return {"drill": "ro-kill", "acked": acked, "found": count(ec.client, name),
                "client_errors": errors[0],
                "partial_results": partial[0], "searches": len(latencies), **percentiles(latencies)}


def _raw_call(address: str, method: str, payload: bytes, timeout: float = 30.0) -> tuple[str, int | None]:
    """Send ``payload`` as the request bytes of ``method``: (gRPC code name, Milvus error code or None)."""
    import grpc

    from labkit.milvus.proto import messages

    pb, status_pb, _ = messages()
    with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", -1)]) as channel:
        call = channel.unary_unary(f"/milvus.grpc.MilvusService/{method}", request_serializer=None,
                                   response_deserializer=None)
        try:
            reply = call(payload, timeout=timeout)
        except grpc.RpcError as exc:
            return exc.code().name, None
    # every reply message carries a Status first (field 1) or is a Status itself
    for cls in (pb.BoolReply, status_pb.Status):
        try:
            msg = cls.FromString(reply)
        except Exception:  # noqa: BLE001
            continue
        status = msg.status if cls is pb.BoolReply else msg
        return "OK", int(status.error_code)
    return "OK", None


def bad_messages(lab: Any, oversize_mb: int = 600) -> dict[str, Any]:
    """Garbage, truncated and oversized gRPC requests to a node and the router: clear errors, no crash."""
    from labkit.milvus.proto import messages

    pb, _, _ = messages()
    with EphemeralCluster(lab, "fd-badmsg", ro=1, router=True) as ec:
        name = "fd_badmsg"
        new_collection(ec.client, name)
        acked = insert_acked(ec.client, name, 500, 5)
        ec.client.flush([name])
        search = pb.SearchParam(collection_name=name, topk=5, extra_params=[pb.KeyValuePair(key="params",
                                                                                            value="{}")])
        search.query_record_array.add().float_data.extend(vectors(1, 6)[0])
        good = search.SerializeToString()
        insert = pb.InsertParam(collection_name=name)
        insert.row_record_array.add().float_data.extend([0.5] * DIM)
        cases = {
            "garbage": ("Search", b"\xff\xfe\x00garbage\x12\x99"),
            "truncated": ("Search", good[: len(good) // 2]),
            "truncated_insert": ("Insert", insert.SerializeToString()[:-3]),
            "wrong_type": ("CreateCollection", good),
            "oversized": ("Insert", b"\x0a" + b"\xff" * 4 + b"\x7f" + b"\x00" * (oversize_mb << 20)),
        }
        out: dict[str, dict[str, Any]] = {}
        errors = 0
        for target, rec in (("node", ec.records[ec.rw_name]), ("router", ec.router)):
            address = f"{rec.get('host', '127.0.0.1')}:{rec['port']}"
            for case, (method, payload) in cases.items():
                grpc_code, milvus_code = _raw_call(address, method, payload)
                alive = ok(lambda r=rec: cluster.connect(r).server_version())
                # an OK gRPC reply must carry a Milvus error; a gRPC error must be a clean one
                clear = (grpc_code == "OK" and milvus_code not in (None, 0)) or grpc_code in (
                    "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "INTERNAL", "UNKNOWN")
                errors += not clear
                out[f"{target}.{case}"] = {"grpc": grpc_code, "milvus_code": milvus_code, "clear": clear,
                                           "answers_after": alive}
        found = count(ec.client, name)
        all_alive = all(v["answers_after"] for v in out.values())
        return {"drill": "bad-messages", "acked": acked, "found": found, "unclear_errors": errors,
                "servers_answer_after": all_alive, "client_errors": 0, "cases": out}


def many_clients(lab: Any, clients: int = 200, seconds: float = 10.0) -> dict[str, Any]:
    """``clients`` concurrent pymilvus clients searching (and one inserting) through the router."""
    with EphemeralCluster(lab, "fd-many", ro=1, router=True) as ec:
        name = "fd_many"
        new_collection(ec.client, name)
        acked = insert_acked(ec.client, name, 2000, 7)
        ec.client.flush([name])
        queries = vectors(1, 8)
        errors, latencies, lock = [0], [], threading.Lock()
        start_gate, stop = threading.Barrier(clients + 1), threading.Event()

        def searcher() -> None:
            try:
                c = cluster.connect(ec.router)
            except Exception:  # noqa: BLE001
                with lock:
                    errors[0] += 1
                start_gate.wait()
                return
            start_gate.wait()
            while not stop.is_set():
                t0 = time.perf_counter()
                good = ok(lambda c=c: c.search(name, 5, queries, params={}))
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    errors[0] += not good
            c.close()

        threads = [threading.Thread(target=searcher, daemon=True) for _ in range(clients)]
        for t in threads:
            t.start()
        start_gate.wait()
        end = time.monotonic() + seconds
        while time.monotonic() < end:  # writes keep going under the load
            acked += insert_acked(ec.client, name, 100, int(end * 1000) % 100000)
        ec.client.flush([name])
        stop.set()
        for t in threads:
            t.join(60)
        recovery = wait_ok(lambda: ec.client.search(name, 5, queries, params={}), 10)
        return {"drill": "many-clients", "clients": clients, "acked": acked, "found": count(ec.client, name),
                "client_errors": errors[0], "searches": len(latencies), "recovery_s": recovery,
                **percentiles(latencies)}


def juicefs_quota(lab: Any, *args: str) -> str:
    """``juicefs quota ARGS`` on the lab's volume; its output (logs included)."""
    import subprocess

    from labkit.lab.services import binaries

    vol = lab.volume()
    proc = subprocess.run([binaries.juicefs(), "quota", *args, vol.meta_url()], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **vol.meta_env()},
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise LabError(f"juicefs quota {args[0]} failed: {lab.state.mask(proc.stderr.strip()[-300:])}")
    return proc.stdout + proc.stderr


def quota_full(lab: Any, timeout: float = 30.0) -> dict[str, Any]:
    """A JuiceFS directory quota runs out under the rw node: flush fails cleanly, then heals."""
    import errno

    with EphemeralCluster(lab, "fd-quota", ro=1, router=False) as ec:
        client, name = ec.node_clients[ec.rw_name], "fd_quota"
        acked = seeded(client, name)
        folder = ec.mounts[ec.rw_name] / ec.storage_dir
        juicefs_quota(lab, "set", "--path", f"/{ec.storage_dir}", "--inodes", "1", "--strict")

        def full() -> bool:  # JuiceFS clients load quotas every ~12 s
            probe = folder / f"quota-probe-{time.monotonic_ns()}"
            try:
                probe.write_bytes(b"x")
            except OSError as exc:
                return exc.errno == errno.EDQUOT
            probe.unlink()
            return False

        try:
            procs.wait_until(full, timeout, "the JuiceFS quota to take effect", interval=0.5)
            acked += insert_acked(client, name, 1000, 2)  # into the WAL: acknowledged
            t0 = time.monotonic()
            flushed_when_full = ok(lambda: client.flush([name]))
            flush_s = round(time.monotonic() - t0, 2)
            answers_when_full = count(client, name) is not None
        finally:
            juicefs_quota(lab, "delete", "--path", f"/{ec.storage_dir}")
        recovery = wait_ok(lambda: client.flush([name]), timeout, interval=0.5)
        return {"drill": "quota-full", "acked": acked, "found": count(client, name),
                "flush_failed_when_full": not flushed_when_full, "flush_s_when_full": flush_s,
                "answers_when_full": answers_when_full, "recovery_s_after_quota_removed": recovery,
                "client_errors": int(not flushed_when_full)}


def mount_kill(lab: Any) -> dict[str, Any]:
    """kill -9 the rw node's JuiceFS client: status says so, `labkit up` heals, rw restarts at once."""
    from labkit.lab.services import juicefs as jfs

    with EphemeralCluster(lab, "fd-mount", ro=1, router=False) as ec:
        client, name = ec.node_clients[ec.rw_name], "fd_mount"
        acked = seeded(client, name)
        for pid in jfs.client_pids(ec.mounts[ec.rw_name]):
            os.kill(pid, signal.SIGKILL)
        procs.wait_until(lambda: jfs.is_stale(ec.mounts[ec.rw_name]), 10, "the killed mount to go stale")
        healthy_during, detail_during = node_health(lab, ec.rw_name)
        acked += insert_acked(client, name, 300, 2)  # into the WAL: acknowledged while storage is down
        flush_failed = not ok(lambda: client.flush([name]))
        start = time.monotonic()
        lab.up()  # remounts the dead mount
        up_s = round(time.monotonic() - start, 3)
        wait_ok(lambda: client.flush([name]), 30)
        recovery = round(time.monotonic() - start, 3)
        healthy_after, _ = node_health(lab, ec.rw_name)
        # a restart of rw after its mount was killed: the lock of the dead client's session is stale
        rec = ec.records[ec.rw_name]
        cluster.stop_node(lab, ec.rw_name)
        start = time.monotonic()
        rec = cluster.start_node(lab, ec.rw_name, role="rw", meta_uri=ec.meta_uri, port=int(rec["port"]),
                                 storage_path=rec["storage_path"])
        restart_s = round(time.monotonic() - start, 3)
        ec.records[ec.rw_name] = rec
        c = cluster.connect(rec)
        try:
            c.flush([name])
            found = count(c, name)
        finally:
            c.close()
        return {"drill": "mount-kill", "acked": acked, "found": found, "recovery_s": recovery, "up_s": up_s,
                "rw_restart_s": restart_s, "client_errors": int(flush_failed),
                "reported_unhealthy_during": not healthy_during, "detail_during": detail_during,
                "healthy_after": healthy_after}


def settle(ec: EphemeralCluster, name: str, timeout: float = 20.0) -> None:
    """Wait until background merges of the new segments are done and no read node is suspended.

    A merge committed between the router reading a file list and a node searching it makes the
    node answer an error (the file is gone) and the router suspend it for SUSPEND_SECONDS; the
    drill's fault should meet a quiet cluster.
    """
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        ec.client.search(name, 1, vectors(1, 0), params={})
        stats = json.loads(ec.client._cmd("conn_stats")[1])
        files = json.loads(ec.client._cmd(f"routing {name}")[1])["files"]
        now = sorted(f["id"] for f in files)
        if not stats.get("suspended") and now == last:
            return
        last = now
        time.sleep(1.0)


def _busiest_read_node(ec: EphemeralCluster, name: str) -> str:
    """The read node the router gives most of ``name``'s files now (the ring may leave one idle)."""
    status, text = ec.client._cmd(f"routing {name}")  # the router's admin command
    plan = json.loads(text)["by_node"] if status.OK() else {}
    by_addr = {f"127.0.0.1:{ec.records[n]['port']}": n for n in ec.ro_names}
    ranked = sorted(plan.items(), key=lambda kv: -len(kv[1]))
    return next((by_addr[a] for a, _ in ranked if a in by_addr), ec.ro_names[0])


def ro_hang(lab: Any, search_timeout: float = 3.0, hang_s: float = 10.0, clients: int = 2) -> dict[str, Any]:
    """SIGSTOP a read node (hung, not dead) during routed searches, SIGCONT it later.

    Goal: no search waits for the hung node twice nor longer than one ``search_timeout``; searches
    are fast again soon after the router suspends it.
    """
    with EphemeralCluster(lab, "fd-hang", ro=2, router=True,
                          router_options={"search_timeout": search_timeout}) as ec:
        name = "fd_hang"
        new_collection(ec.client, name)
        acked = 0
        for i in range(4):
            acked += insert_acked(ec.client, name, 2000, 30 + i)
            ec.client.flush([name])
        queries = vectors(3, 98)
        status, expected = ec.client.search(name, 10, queries, params={})
        if not status.OK():
            raise LabError(f"search before the fault failed: {status.message}")
        want = [[hit.id for hit in row] for row in expected]
        settle(ec, name)
        samples: list[tuple[float, float, bool, bool]] = []  # (start, seconds, ok, complete)
        lock, stop = threading.Lock(), threading.Event()

        def searcher() -> None:
            c = cluster.connect(ec.router, timeout=60)
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    st, res = c.search(name, 10, queries, params={}, timeout=120)
                    good = st.OK()
                    complete = good and [[hit.id for hit in row] for row in res] == want
                except Exception:  # noqa: BLE001
                    good = complete = False
                with lock:
                    samples.append((t0, time.monotonic() - t0, good, complete))
            c.close()

        threads = [threading.Thread(target=searcher) for _ in range(clients)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        victim_name = _busiest_read_node(ec, name)
        victim = int(ec.records[victim_name]["pid"])
        hung_at = time.monotonic()
        os.kill(victim, signal.SIGSTOP)
        try:
            time.sleep(hang_s)
            suspended = json.loads(ec.client._cmd("conn_stats")[1]).get("suspended", [])
        finally:
            os.kill(victim, signal.SIGCONT)
        resumed_at = time.monotonic()
        time.sleep(3.0)
        stop.set()
        for t in threads:
            t.join(180)
        during = [s for s in samples if s[0] + s[1] >= hung_at and s[0] < resumed_at]  # overlapping the hang
        slow = [s[0] + s[1] - hung_at for s in during if s[1] > 1.0]
        return {"drill": "ro-hang", "acked": acked, "found": count(ec.client, name),
                "search_timeout_s": search_timeout, "hang_s": hang_s,
                "searches_during_hang": len(during), "client_errors": sum(not s[2] for s in samples),
                "partial_results": sum(s[2] and not s[3] for s in samples),
                "slow_searches_during_hang": len(slow), "victim": victim_name,
                "suspended_at_end_of_hang": suspended,
                "normal_after_s": round(max(slow), 2) if slow else 0.0,
                **percentiles([s[1] for s in during])}


DRILLS: dict[str, Callable[..., dict[str, Any]]] = {
    "mysql-restart": mysql_restart,
    "redis-restart": redis_restart,
    "rw-kill": rw_kill,
    "ro-kill": ro_kill,
    "bad-messages": bad_messages,
    "many-clients": many_clients,
    "quota-full": quota_full,
    "mount-kill": mount_kill,
    "ro-hang": ro_hang,
}


def run(lab: Any, names: list[str]) -> dict[str, Any]:
    """Run the named drills in order; per-drill figures and the totals."""
    unknown = [n for n in names if n not in DRILLS]
    if unknown:
        raise LabError(f"Unknown drill {unknown[0]!r}; choose from: {', '.join(DRILLS)}.")
    rows = []
    for name in names:
        start = time.monotonic()
        row = DRILLS[name](lab)
        row["wall_s"] = round(time.monotonic() - start, 1)
        rows.append(row)
    acked = sum(r.get("acked") or 0 for r in rows)
    found = sum(r.get("found") or 0 for r in rows)
    recovery = {r["drill"]: r.get("recovery_s") for r in rows if "recovery_s" in r}
    return {"drills": rows,
            "totals": {"acked": acked, "found": found, "lost": acked - found,
                       "client_errors": sum(r.get("client_errors") or 0 for r in rows),
                       "max_recovery_s": max((v for v in recovery.values() if v is not None), default=None),
                       "unrecovered": sorted(k for k, v in recovery.items() if v is None)}}


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="labkit bench faults", description=__doc__.splitlines()[0])
    parser.add_argument("--drills", default=",".join(DRILLS),
                        help=f"comma-separated drills to run (default: all: {', '.join(DRILLS)})")
    add_output_args(parser)
    args = parser.parse_args(argv)
    from labkit.lab.api import Lab

    names = [n.strip() for n in args.drills.split(",") if n.strip()]
    result = run(Lab(), names)
    summary = [{k: v for k, v in r.items() if not isinstance(v, dict | list)} for r in result["drills"]]
    emit(result, args, [*summary, {"totals": result["totals"]}])
    return 0 if result["totals"]["lost"] == 0 and not result["totals"]["unrecovered"] else 1
