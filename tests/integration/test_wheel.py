"""What ships is what is tested: a wheel built from the repository, installed in a fresh
virtualenv outside the checkout, serves every page."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile

import pytest

from ..support.gitserver import free_port
from ..support.wheel import build_wheel

TOKEN = "wheel-test-operator-token-0123456789"  # at least 32 characters


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(folder / "dist")
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], check=True, cwd=folder
    )
    return wheel, venv, folder


def test_the_wheel_carries_templates_static_files_and_the_base_image_recipe(installed):
    wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "minibinder/templates/home.html",
        "minibinder/templates/admin.html",
        "minibinder/static/loading.js",
        "minibinder/static/badge_logo.svg",
        "minibinder/builds/base.Dockerfile",
        "minibinder/builds/environments/conda_to_pypi.toml",
        "minibinder/sessions/zip_home.py",
        "minibinder/__main__.py",
    ):
        assert expected in names
    metadata = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: BSD-3-Clause" in text
    requires = [line for line in text.splitlines() if line.startswith("Requires-Dist:")]
    assert not any("gitpython" in line.lower() for line in requires)
    assert any(line.startswith("Requires-Dist: jinja2") for line in requires)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_installed_package_serves_every_page(installed):
    _, venv, folder = installed
    port, admin_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("MINIBINDER_")}
    env.update(MINIBINDER_DATA_DIR=str(folder / "data"), MINIBINDER_ADMIN_TOKEN=TOKEN)
    log = open(folder / "serve.log", "wb")  # noqa: SIM115 - closed below
    # Started from outside the checkout, with `python -m minibinder`: nothing can come from ROOT.
    process = subprocess.Popen(
        [
            str(venv / "bin" / "python"),
            "-m",
            "minibinder",
            "serve",
            "--bind",
            f"127.0.0.1:{port}",
            "--admin-bind",
            f"127.0.0.1:{admin_port}",
        ],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while get_or_none(f"{base}/versions") is None:
            assert process.poll() is None, (folder / "serve.log").read_text()
            assert time.monotonic() < deadline, (folder / "serve.log").read_text()
            time.sleep(0.2)
        status, body = get(f"{base}/")
        assert status == 200 and b"Get the launch link" in body
        status, body = get(f"{base}/static/loading.js")
        assert status == 200 and len(body) > 100
        status, body = get(f"{base}/badge_logo.svg")
        assert status == 200 and b"<svg" in body
        status, body = get(f"{base}/v2/gh/owner/repo/HEAD")
        assert status == 200 and b"data-build-url" in body
        status, body = get(
            f"http://127.0.0.1:{admin_port}/admin/", {"Authorization": f"Bearer {TOKEN}"}
        )
        assert status == 200 and b"Sessions" in body
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
    assert "TemplateNotFound" not in (folder / "serve.log").read_text()


def get_or_none(url: str) -> int | None:
    try:
        return get(url)[0]
    except OSError:
        return None
