"""Test backends that minibinder sees as its own sessions: tests/support/backend.py running in a
container labelled like a session of one installation, on the sessions network. The record
the test adds points at that container, so the restart reconciler treats it like any other
session (nothing in minibinder special-cases tests)."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
import urllib.request
from pathlib import Path

import docker

from minibinder.identity import instance_id
from minibinder.sessions.launcher import INSTANCE_LABEL, JUPYTER_PORT, SESSION_LABEL
from minibinder.settings_load import load_config
from minibinder.store import SessionRecord, Store

from ..conftest import TEST_IMAGE_PREFIX

BACKEND = Path(__file__).with_name("backend.py")
BASE_IMAGE = load_config().base_images[load_config().default_python]


class SessionBackend:
    """One container; `serve=False` makes a session whose port answers nothing (a dead route)."""

    def __init__(
        self,
        data_dir: Path,
        session_id: str,
        name: str,
        serve: bool = True,
        network: str = "minibinder-sessions",
    ):
        self.session_id, self.data_dir = session_id, data_dir
        self.client = docker.from_env()
        config = load_config(overrides={"data_dir": str(data_dir)})
        if not self.client.networks.list(names=[network]):
            self.client.networks.create(
                network, driver="bridge", options={"com.docker.network.bridge.enable_icc": "false"}
            )
        command = (
            ["python3", "/backend.py", name, str(JUPYTER_PORT)] if serve else ["sleep", "infinity"]
        )
        self.container = self.client.containers.run(
            BASE_IMAGE,
            command,
            detach=True,
            network=network,
            user="1000",
            name=f"minibinder-test-backend-{session_id}-{secrets.token_hex(3)}",
            volumes={str(BACKEND): {"bind": "/backend.py", "mode": "ro"}},
            labels={
                SESSION_LABEL: session_id,
                INSTANCE_LABEL: instance_id(config),
                "minibinder.image": f"{TEST_IMAGE_PREFIX}backend",
            },
        )
        self.container.reload()
        address = self.container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        self.target = f"{address}:{JUPYTER_PORT}"
        if serve:
            self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.requests()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"test backend did not start: {self.container.logs().decode()}")

    def peers(self) -> list[tuple[str, int]]:
        """(path, the proxy's source port) of every request, in order."""
        with urllib.request.urlopen(f"http://{self.target}/_peers", timeout=5) as response:
            return [(path, port) for path, port in json.loads(response.read())]

    def requests(self) -> list[str]:
        with urllib.request.urlopen(f"http://{self.target}/_requests", timeout=5) as response:
            return json.loads(response.read())

    def add_route(self, store: Store, last_activity: float | None = None) -> None:
        now = time.time()
        store.add_session(
            SessionRecord(
                self.session_id,
                "token",
                self.container.id,
                self.target,
                f"{TEST_IMAGE_PREFIX}backend",
                "gh",
                "test/backend/HEAD",
                "",
                "",
                "running",
                now,
                now - 3600 if last_activity is None else last_activity,
            )
        )

    def remove(self) -> None:
        with contextlib.suppress(docker.errors.NotFound):  # a test's cleanup got there first
            self.container.remove(force=True)
        self.client.close()
