"""Sessions: start a hardened Jupyter container, wait until it answers, stop it."""

from __future__ import annotations

import http.client
import secrets
import time
from dataclasses import dataclass

from . import __version__
from .config import Config
from .docker_client import Docker
from .errors import LaunchError
from .routes import RouteTable
from .store import SessionRecord, Store

JUPYTER_PORT = 8888
SESSION_LABEL = "minibinder.session"


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

    def launch(self, request: LaunchRequest) -> SessionRecord:
        """Start a session for a built image and return it once Jupyter answers."""
        config = self.config
        session_id, token, now = new_session_id(), secrets.token_urlsafe(24), time.time()
        record = SessionRecord(
            id=session_id, token=token, container_id="", target="", image=request.image,
            provider=request.provider, spec=request.spec, repo_url=request.repo_url,
            resolved_ref=request.resolved_ref, state="launching", created=now,
            last_activity=now)
        self.store.add_session(record)
        try:
            self.docker.ensure_network(config.session_network)
            container_id = self.docker.start_container(
                image=request.image, name=f"minibinder-session-{session_id}",
                command=jupyter_command(record.prefix, config),
                environment={**request.binder_env, "JUPYTER_TOKEN": token},
                labels={SESSION_LABEL: session_id, "minibinder.image": request.image,
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
        self.store.update_session(session_id, target=target, state="running",
                                  last_activity=time.time())
        return self.store.get_session(session_id) or record

    def _wait_until_ready(self, container_id: str, target: str, prefix: str) -> None:
        host, port = target.rsplit(":", 1)
        deadline = time.monotonic() + self.config.launch_timeout
        delay = 0.05
        while time.monotonic() < deadline:
            if _answers(host, int(port), f"{prefix}api"):
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

    def stop(self, session_id: str) -> None:
        """Remove the container and the route; nothing of the session survives."""
        record = self.store.get_session(session_id)
        self.routes.forget(session_id)
        if record and record.container_id:
            self.docker.remove_container(record.container_id)
        self.store.delete_session(session_id)


def _answers(host: str, port: int, path: str) -> bool:
    connection = http.client.HTTPConnection(host, port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()
