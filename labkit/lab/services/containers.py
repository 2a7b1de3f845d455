"""One container lifecycle for every docker service, through the docker SDK.

A service describes its container as a ``RunSpec`` (image, command, environment, bind mounts,
health check); ``run`` starts it with host networking (every port on 127.0.0.1), a restart policy
and labkit labels; ``remove`` stops it by container id and deletes it with its anonymous volumes.
``render`` gives the same container as a ``docker run`` line for dry runs, secrets as ``-e NAME``.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.errors import LabError

LABEL_HOME = "labkit.home"
LABEL_SERVICE = "labkit.service"
RESTART = {"Name": "on-failure", "MaximumRetryCount": 3}
SECOND_NS = 1_000_000_000


@dataclass
class RunSpec:
    """What a service's container is made of."""

    image: str
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, str] = field(default_factory=dict)  # shown as `-e NAME` only
    binds: dict[str, str] = field(default_factory=dict)  # host path -> container path (suffix ":ro" allowed)
    health_port: int | None = None  # TCP check inside the container (bash /dev/tcp)

    def healthcheck(self) -> dict[str, Any] | None:
        if not self.health_port:
            return None
        return {"test": ["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{self.health_port}"],
                "interval": 2 * SECOND_NS, "timeout": 2 * SECOND_NS, "retries": 5,
                "start_period": 2 * SECOND_NS}


def container_name(home: Path, name: str) -> str:
    """``labkit-<hash of the lab home>-<service>``: two labs on one engine never collide."""
    tag = hashlib.sha256(str(home).encode()).hexdigest()[:8]
    return f"labkit-{tag}-{name}"


def render(argv: list[str], env_names: list[str]) -> str:
    """A shell line for ``argv``; secret env values shown as ****."""
    prefix = " ".join(f"{name}=****" for name in env_names)
    return (prefix + " " if prefix else "") + shlex.join(argv)


def docker_run_line(spec: RunSpec, name: str) -> str:
    """The ``docker run`` line equivalent to ``run(spec)`` (secrets as ``-e NAME``)."""
    argv = ["docker", "run", "-d", "--name", name, "--network", "host", "--restart", "on-failure:3", "--init"]
    if spec.health_port:
        argv += ["--health-cmd", f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{spec.health_port}'",
                 "--health-interval", "2s"]
    for key in sorted(spec.secret_env):
        argv += ["-e", key]
    for key, value in spec.env.items():
        argv += ["-e", f"{key}={value}"]
    for host, inside in spec.binds.items():
        argv += ["-v", f"{host}:{inside}"]
    argv.append(spec.image)
    argv += spec.command or []
    return render(argv, sorted(spec.secret_env))


def _binds(spec: RunSpec) -> dict[str, dict[str, str]]:
    out = {}
    for host, inside in spec.binds.items():
        path, _, mode = inside.partition(":")
        out[str(host)] = {"bind": path, "mode": mode or "rw"}
    return out


def run(client, spec: RunSpec, name: str, home: Path, service: str):
    """Start the container (any old one of that name is removed first); returns the SDK Container."""
    import docker

    remove(client, name)
    try:
        return client.containers.run(
            spec.image, spec.command, name=name, detach=True, network_mode="host",
            environment={**spec.env, **spec.secret_env}, volumes=_binds(spec),
            healthcheck=spec.healthcheck(), restart_policy=RESTART,
            labels={LABEL_HOME: str(home), LABEL_SERVICE: service}, init=True)
    except docker.errors.ImageNotFound:
        raise LabError(f"The image {spec.image} is not on this engine; `labkit images build` makes the local "
                       "set (LABKIT_IMAGES=local).") from None
    except docker.errors.APIError as exc:
        raise LabError(f"Docker could not start {name}: {exc.explanation or exc}") from None


def get(client, name: str):
    import docker

    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        return None


def remove(client, name: str, timeout: int = 20) -> bool:
    """Stop (SIGTERM, then SIGKILL after ``timeout`` s); delete the container and its anonymous volumes."""
    import docker

    box = get(client, name)
    if box is None:
        return False
    try:
        if box.status in {"running", "restarting"}:
            box.stop(timeout=timeout)
        box.remove(v=True, force=True)
    except docker.errors.NotFound:
        pass
    return True


def state(box) -> dict[str, Any]:
    """Running flag, health (healthy / starting / unhealthy / none), host PID, restarts, exit code."""
    box.reload()
    st = box.attrs.get("State", {})
    return {"running": bool(st.get("Running")), "health": (st.get("Health") or {}).get("Status", "none"),
            "pid": st.get("Pid") or None, "restarts": box.attrs.get("RestartCount", 0),
            "exit_code": st.get("ExitCode")}


def logs(box, lines: int = 20) -> str:
    try:
        return box.logs(tail=lines).decode(errors="replace").rstrip()
    except Exception:  # a removed container has no logs: say nothing rather than fail the caller
        return ""


def labelled(client, home: Path | None = None) -> list:
    """Every container (any state) labkit made, for ``home`` or for all labs."""
    label = f"{LABEL_HOME}={home}" if home else LABEL_HOME
    return client.containers.list(all=True, filters={"label": label})


PORT_TAKEN = ("address already in use", "another server running on port", "bind: address")


def wait_ready(box, check, timeout: float, what: str, interval: float = 0.3) -> None:
    """Poll ``check()`` until true; fail at once (with the container's log) when the container stops.

    A log that says the port was taken ends the message with "address already in use", which
    ``ports.start_on_free_port`` takes as the cue to retry on another port.
    """
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = state(box)
        if st["running"] and box.attrs["State"].get("Status") == "running" and check():
            return
        if box.attrs["State"].get("Status") in {"exited", "dead", "restarting"}:
            break
        time.sleep(interval)
    st = state(box)
    text = logs(box, 30)
    reason = (f"exited with code {st['exit_code']}" if not st["running"] or st["restarts"]
              else f"was not ready after {timeout:.0f} s")
    taken = " (address already in use)" if any(p in text.lower() for p in PORT_TAKEN) else ""
    raise LabError(f"{what} {reason}{taken}. Container log:\n{text}")


def lookup(container: str) -> Any:
    """The container named ``container`` through the running engine; None without one or without it."""
    from labkit.lab import engine as engines

    eng = engines.find()
    return get(eng.client(), container) if eng else None


def find(container: str) -> tuple[Any, dict[str, Any]]:
    """(``lookup(container)``, its ``state``); no container: not running."""
    box = lookup(container)
    return box, state(box) if box is not None else {"running": False, "pid": None}


def stop_service(state: Any, name: str, container: str, purge: bool) -> None:
    """Remove a service's container (when an engine runs); ``purge`` forgets its record, else it is
    kept as stopped so a plain ``labkit up`` brings the service back."""
    from labkit.lab import engine as engines

    eng = engines.find()
    if eng is not None:
        remove(eng.client(), container)
    if purge:
        state.forget(name)
    elif state.get(name):
        state.record(name, pid=None, stopped=True)
