"""Install without the Makefile (#20): the built wheel installed with `pipx install` by an
unprivileged user, then that user's `minibinder serve` against rootless Docker (the user who
runs it, as scripts/ensure-rootless-docker.sh sets it up) serves the home page. No
configuration file, no root, nothing of the checkout on the path: what a lab server's user
does. pipx is Debian's (installed when missing); the dependencies come from the package index
the host reaches (PIP_CERT names the CA file behind an intercepting proxy)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from ..support.engines import ensure
from ..support.gitserver import free_port
from ..support.wheel import build_wheel


@pytest.fixture(scope="module")
def rootless(build_config):
    base = build_config.base_images[build_config.default_python]
    return ensure("docker-rootless", (base,))


def ensure_pipx() -> str:
    if not shutil.which("pipx"):
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "pipx"],
            check=True,
            capture_output=True,
            timeout=600,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    return shutil.which("pipx") or "pipx"


def test_pipx_install_then_serve_as_an_unprivileged_user(rootless, tmp_path, build_config):
    pipx = ensure_pipx()
    user = pwd.getpwuid(os.stat(rootless.socket_path()).st_uid)
    work = Path(user.pw_dir) / "minibinder-pipx-test"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    started = time.monotonic()
    wheel = build_wheel(tmp_path)
    shutil.copy(wheel, work / wheel.name)
    for path in (work, work / wheel.name):
        os.chown(path, user.pw_uid, user.pw_gid)
    as_user = [
        "setpriv",
        f"--reuid={user.pw_uid}",
        f"--regid={user.pw_gid}",
        "--init-groups",
        "env",
        "-i",
        f"HOME={user.pw_dir}",
        f"USER={user.pw_name}",
        "PATH=/usr/bin:/bin",
        f"PIPX_HOME={work / 'pipx'}",
        f"PIPX_BIN_DIR={work / 'bin'}",
        f"PIP_CERT={build_config.extra_ca_file or '/etc/ssl/certs/ca-certificates.crt'}",
        f"XDG_DATA_HOME={work / 'data'}",
        f"XDG_RUNTIME_DIR=/run/user/{user.pw_uid}",
        f"DOCKER_HOST={rootless.docker_host}",
    ]
    installed = subprocess.run(
        [*as_user, pipx, "install", str(work / wheel.name)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=work,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    install_seconds = time.monotonic() - started
    port, admin_port = free_port(), free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        serve = subprocess.Popen(
            [
                *as_user,
                str(work / "bin" / "minibinder"),
                "serve",
                "--bind",
                f"127.0.0.1:{port}",
                "--admin-bind",
                f"127.0.0.1:{admin_port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=work,
        )
    try:
        page = _wait_for_page(f"http://127.0.0.1:{port}/", serve, log_path)
        assert "Turn a git repository into a collection of interactive notebooks" in page
        text = log_path.read_text()
        assert "rootless Docker" in text and "published on the engine host's loopback" in text
        # The data went where an unprivileged user's data goes, owned by that user.
        database = work / "data" / "minibinder" / "minibinder.sqlite"
        assert database.exists() and database.stat().st_uid == user.pw_uid
        print(f"pipx: wheel built and installed in {install_seconds:.1f} s")
    finally:
        serve.terminate()
        try:
            serve.wait(timeout=15)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
        shutil.rmtree(work, ignore_errors=True)


def _wait_for_page(url: str, process: subprocess.Popen, log_path: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            if process.poll() is not None:
                raise AssertionError(f"minibinder serve exited: {log_path.read_text()}") from None
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer: {log_path.read_text()}")
