"""Sessions: start a hardened Jupyter container, wait until it answers, stop it."""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass

from . import __version__, jupyter_api, metrics
from .config import Config
from .culler import Limits, Usage, should_cull
from .docker_client import Docker
from .errors import LaunchError
from .quota import Occupancy, check_admission, host_memory_bytes
from .routes import RouteTable
from .store import SessionRecord, Store

log = logging.getLogger(__name__)

JUPYTER_PORT = 8888
SESSION_LABEL = "minibinder.session"
INSTANCE_LABEL = "minibinder.instance"


def instance_id(config: Config) -> str:
    """This installation's id (kept in its data directory): several minibinders may share one
    Docker daemon, and each adopts or removes only its own containers."""
    path = config.data_path / "instance_id"
    if not path.exists():
        config.data_path.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(8))
    return path.read_text().strip()


@dataclass(frozen=True)
class LaunchRequest:
    image: str
    provider: str
    spec: str
    repo_url: str
    resolved_ref: str
    binder_env: dict[str, str]


def jupyter_command(prefix: str, config: Config) -> list[str]:
    return ["jupyter", "lab", "--ip=0.0.0.0", f"--port={JUPYTER_PORT}", "--no-browser",
            f"--ServerApp.base_url={prefix}", "--ServerApp.trust_xheaders=True",
            "--ServerApp.allow_remote_access=True",
            f"--ServerApp.allow_origin={config.jupyter_allow_origin}"]


def new_session_id() -> str:
    # Letters and digits only: the id is a path segment, a container name and a label value.
    return secrets.token_hex(8)


class Sessions:
    def __init__(self, config: Config, docker: Docker, store: Store, routes: RouteTable):
        self.config, self.docker, self.store, self.routes = config, docker, store, routes
        self.instance = instance_id(config)

    @property
    def own_label(self) -> str:
        """The label filter that selects this installation's session containers."""
        return f"{INSTANCE_LABEL}={self.instance}"

    def launch(self, request: LaunchRequest, warm: bool = False) -> SessionRecord:
        """Start a session for a built image and return it once Jupyter answers.

        A `warm` session waits unclaimed (and unroutable) in the pool until `claim` hands it out.
        """
        config = self.config
        session_id, token, now = new_session_id(), secrets.token_urlsafe(24), time.time()
        record = SessionRecord(
            id=session_id, token=token, container_id="", target="", image=request.image,
            provider=request.provider, spec=request.spec, repo_url=request.repo_url,
            resolved_ref=request.resolved_ref, state="launching", created=now,
            last_activity=now)
        with self._admission_lock():  # check and claim in one step, across worker processes
            self.check_admission(f"{request.provider}/{request.spec}", request.repo_url)
            self.store.add_session(record)
        try:
            self.docker.ensure_network(config.session_network)
            container_id = self.docker.start_container(
                image=request.image, name=f"minibinder-session-{session_id}",
                command=jupyter_command(record.prefix, config),
                environment={**request.binder_env, "JUPYTER_TOKEN": token},
                labels={SESSION_LABEL: session_id, INSTANCE_LABEL: self.instance,
                        "minibinder.image": request.image,
                        "minibinder.spec": f"{request.provider}/{request.spec}",
                        "minibinder.repo": request.repo_url,
                        "minibinder.ref": request.resolved_ref,
                        "minibinder.version": __version__},
                network=config.session_network, user="1000",
                mem_limit=config.size("session_memory_limit"),
                mem_reservation=config.size("session_memory_reservation"),
                nano_cpus=int(config.session_cpu_limit * 1e9),
                pids_limit=config.session_pids_limit)
            self.store.update_session(session_id, container_id=container_id)
            address = self.docker.container_address(container_id, config.session_network)
            target = f"{address}:{JUPYTER_PORT}"
            self._wait_until_ready(container_id, target, record.prefix)
        except BaseException:
            self.stop(session_id)
            raise
        self.store.update_session(session_id, target=target,
                                  state="warm" if warm else "running", last_activity=time.time())
        return self.store.get_session(session_id) or record

    def claim(self, image: str) -> SessionRecord | None:
        """A warm session of `image`, now the caller's: its token was never given to anyone."""
        record = self.store.claim_warm(image, time.time())
        if record:
            self.routes.forget(record.id)
        return record

    def check_admission(self, provider_spec: str, repo_url: str) -> None:
        """Raise QuotaExceeded when one more session of this repository may not start."""
        occupancy = Occupancy(self.store.count_sessions(), self.store.count_sessions(repo_url),
                              host_memory_bytes())
        check_admission(provider_spec, occupancy, self.config)

    @contextmanager
    def _admission_lock(self):
        path = self.config.data_path / "admission.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _wait_until_ready(self, container_id: str, target: str, prefix: str) -> None:
        deadline = time.monotonic() + self.config.launch_timeout
        delay = 0.05
        while time.monotonic() < deadline:
            if jupyter_api.answers(target, prefix):
                return
            state = self.docker.container_state(container_id)
            if not state or not state.get("Running"):
                logs = self.docker.container_logs(container_id)
                raise LaunchError("the session stopped while starting"
                                  + (f"; its last output:\n{logs}" if logs else ""))
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        logs = self.docker.container_logs(container_id)
        raise LaunchError(f"the session did not answer within {self.config.launch_timeout} s "
                          f"(launch_timeout); its last output:\n{logs}")

    def stop(self, session_id: str, reason: str = "stopped") -> None:
        """Remove the container and the route; nothing of the session survives."""
        record = self.store.get_session(session_id)
        self.routes.forget(session_id)
        if record and record.container_id:
            self.docker.remove_container(record.container_id)
        self.store.delete_session(session_id)
        if record and record.state == "running":
            metrics.SESSIONS_ENDED.labels(reason).inc()
            log.info("session %s of %s/%s stopped: %s", session_id, record.provider,
                     record.spec, reason)

    def extend(self, session_id: str, seconds: float) -> None:
        record = self.store.get_session(session_id)
        if record:
            self.store.update_session(session_id, extra_seconds=record.extra_seconds + seconds,
                                      last_activity=time.time())

    # -- what a session is doing -----------------------------------------------------------

    def usage(self, record: SessionRecord, with_cpu: bool = True,
              status: dict | None = None) -> Usage:
        """Combine the proxy's activity with Jupyter's own, and the cgroup's CPU time.

        `status` is Jupyter's /api/status when the caller has already asked for it.
        """
        last_activity = record.last_activity
        status = status if status is not None else jupyter_api.status(record)
        busy = 0
        if status:
            reported = jupyter_api.parse_time(status.get("last_activity"))
            if reported:
                last_activity = max(last_activity, reported)
            if status.get("kernels"):
                busy = jupyter_api.busy_kernels(record)
        cpu = self.docker.usage(record.container_id)[0] if with_cpu else None
        return Usage(record.created, last_activity, busy, cpu, record.extra_seconds)

    def cull(self, now: float | None = None) -> list[tuple[str, str]]:
        """Stop every running session past a limit; return (session id, reason) pairs."""
        limits = Limits.from_config(self.config)
        culled = []
        for record in self.store.sessions("running") + self.store.sessions("warm"):
            now_ = now if now is not None else time.time()
            reason = should_cull(self.usage(record), now_, limits)
            if reason:
                self.stop(record.id, reason)
                culled.append((record.id, reason))
        return culled

    def reconcile(self) -> None:
        """Make SQLite and Docker agree (restart safety): Docker labels plus SQLite are the truth.

        Running containers of known sessions are kept and their routes refreshed (an address
        changes when Docker restarts); containers of unknown sessions (no token on record) and
        stopped ones are removed; records without a container are dropped.
        """
        containers = self.docker.containers(self.own_label)
        records = {record.id: record for record in self.store.sessions()}
        now, grace = time.time(), self.config.launch_timeout + 30

        def launching_now(record: SessionRecord) -> bool:  # a launcher still owns it
            return record.state == "launching" and now - record.created < grace

        seen = set()
        for container in containers:
            session_id = container["Labels"].get(SESSION_LABEL, "")
            record = records.get(session_id)
            seen.add(session_id)
            if record is None:  # no token on record: it can never be reached again
                self.docker.remove_container(container["Id"])
                continue
            if launching_now(record):
                continue
            if container["State"] != "running":
                self.stop(session_id, "container exited")
                continue
            networks = container.get("NetworkSettings", {}).get("Networks", {})
            address = (networks.get(self.config.session_network) or {}).get("IPAddress")
            target = f"{address}:{JUPYTER_PORT}" if address else ""
            if record.state == "launching":  # its launcher died half way
                if target and jupyter_api.answers(target, record.prefix):
                    self.store.update_session(session_id, state="running", target=target,
                                              container_id=container["Id"])
                else:
                    self.stop(session_id, "launch abandoned")
            elif target and target != record.target:
                self.store.update_session(session_id, target=target)
                self.routes.forget(session_id)
        for session_id, record in records.items():
            # A record without a container id is a route to a backend of its own (tests and
            # benchmarks use them); only sessions minibinder started are reconciled.
            if session_id not in seen and record.container_id and not launching_now(record):
                self.store.delete_session(session_id)
                self.routes.forget(session_id)
