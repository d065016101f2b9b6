"""Run `minibinder serve` (gunicorn) as a subprocess, the way people run it."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .gitserver import free_port


class ServeProcess:
    def __init__(
        self,
        config_file: Path,
        log_file: Path,
        tls_context: ssl.SSLContext | None = None,
        prefix: str = "",
        docker_host: str = "",
        bind_host: str = "127.0.0.1",
    ):
        """`tls_context`: the service serves HTTPS, which this context trusts. `prefix`: the
        path it is served under (public_url's path, without the trailing slash).
        `docker_host`: another engine than the host's Docker. `bind_host`: where it listens
        (the tests always reach it on loopback)."""
        self.docker_host, self.bind_host = docker_host, bind_host
        self.port, self.admin_port = free_port(), free_port()
        scheme = "https" if tls_context else "http"
        self.tls_context = tls_context
        self.url = f"{scheme}://127.0.0.1:{self.port}{prefix}"
        self.admin_url = f"{scheme}://127.0.0.1:{self.admin_port}{prefix}"  # the operator's
        self.config_file, self.log_file = config_file, log_file
        self.process: subprocess.Popen | None = None

    def start(self) -> ServeProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINIBINDER_")}
        if self.docker_host:
            env["DOCKER_HOST"] = self.docker_host
        self._log = open(self.log_file, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "minibinder",
                "--config",
                str(self.config_file),
                "serve",
                "--bind",
                f"{self.bind_host}:{self.port}",
                "--admin-bind",
                f"127.0.0.1:{self.admin_port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(
                    self.url + "/versions", timeout=1, context=self.tls_context
                ).read()
                return self
            except OSError:
                if self.process.poll() is not None:
                    self._log.close()
                    raise RuntimeError(
                        f"minibinder serve exited: {self.log_file.read_text()}"
                    ) from None
                time.sleep(0.1)
        raise RuntimeError(f"minibinder serve did not answer: {self.log_file.read_text()}")

    def again(self, log_file: Path) -> ServeProcess:
        """Another serve of the same settings, engine and ports (not started): the service
        after a restart, at the addresses its users already have."""
        prefix = self.url.split(f":{self.port}", 1)[1]
        again = ServeProcess(
            self.config_file, log_file, self.tls_context, prefix, self.docker_host, self.bind_host
        )
        again.port, again.admin_port = self.port, self.admin_port
        again.url, again.admin_url = self.url, self.admin_url
        return again

    def kill_9(self) -> None:
        """Kill the master and its workers at once, as a crash or an OOM kill would."""
        for pid in [*self.worker_pids(), self.process.pid]:
            os.kill(pid, signal.SIGKILL)
        self.process.wait()

    def worker_pids(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout
        return [int(pid) for pid in out.split()]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def write_config(path: Path, data_dir: Path, **settings) -> Path:
    lines = [f"data_dir = {json.dumps(str(data_dir))}"]
    for name, value in settings.items():
        # JSON strings, numbers and lists of strings are valid TOML too; tables are not.
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, dict):
            text = (
                "{"
                + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items())
                + "}"
            )
        else:
            text = json.dumps(value)
        lines.append(f"{name} = {text}")
    path.write_text("\n".join(lines) + "\n")
    return path


def remove_test_sessions(image_prefix: str) -> None:
    """Remove every session container whose image carries `image_prefix`, running or not, with
    its volumes."""
    import docker

    client = docker.from_env()
    try:
        # Sparse: a full listing inspects each container, and fails when one (another test
        # run's) goes away between the listing and its inspection.
        found = client.containers.list(
            all=True, sparse=True, filters={"label": "minibinder.session"}
        )
        for container in found:
            labels = container.attrs.get("Labels") or {}
            if labels.get("minibinder.image", "").startswith(image_prefix):
                try:
                    container.remove(force=True, v=True)  # with the volumes its image declares
                except docker.errors.NotFound:
                    pass  # gone meanwhile (its server removed it as it stopped)
                except docker.errors.APIError as error:
                    if "already in progress" not in str(error):
                        raise
    finally:
        client.close()
