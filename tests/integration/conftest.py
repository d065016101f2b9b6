"""Integration fixtures: the real Docker daemon, the base image, and cleanup by image prefix."""

from __future__ import annotations

import os
import time

import docker as docker_sdk
import pytest

from minibinder.builds.images import build_image, target_for_directory, target_for_source
from minibinder.docker_client import Docker
from minibinder.errors import DockerUnavailable
from minibinder.repos.providers import parse_spec

from ..conftest import TEST_IMAGE_PREFIX, make_config
from ..support import host_sweep
from ..support.gitserver import GitServer
from ..support.serving import ServeProcess, remove_test_sessions, write_config
from ..support.sse import events

# The operator's token in every test service (at least 32 characters).
ADMIN_TOKEN = "operator-secret-0123456789abcdef0123"
# `make test` sweeps the host once after all its pytests (scripts/integration-tests.sh).
SWEPT_AFTER = os.environ.get("MBTESTS_SWEEP_AFTER") == "1"


@pytest.fixture(scope="session")
def git_server(tmp_path_factory):
    server = GitServer(tmp_path_factory.mktemp("git-server")).start()
    yield server
    server.stop()


@pytest.fixture
def config(tmp_path, git_server):
    return make_config(tmp_path / "data", git_server)


@pytest.fixture(scope="session", autouse=True)
def egress_rules_removed():
    """Every `minibinder serve` and `build` a test runs installs its egress rules (as it would
    for an operator): remove the chains and build networks the test run added once it is
    over. Under `make test`, whose two pytests run at once, the script sweeps once after both
    (MBTESTS_SWEEP_AFTER, tests/support/host_sweep.py)."""
    if SWEPT_AFTER:
        yield
        return
    before = host_sweep.snapshot()
    yield
    host_sweep.sweep(before)


@pytest.fixture(scope="session")
def docker():
    try:
        client = Docker.connect()
    except DockerUnavailable as error:  # never skip: CI must exercise the real daemon
        pytest.fail(f"{error}. `make test` starts one.")
    yield client
    sdk = docker_sdk.from_env()
    for image in sdk.images.list():
        for tag in image.tags:
            if tag.startswith(TEST_IMAGE_PREFIX):
                sdk.images.remove(tag, force=True)


@pytest.fixture(scope="session")
def build_config(tmp_path_factory, git_server, docker):
    config = make_config(tmp_path_factory.mktemp("data"), git_server)
    base = config.base_images[config.default_python]
    if docker.image_labels(base) is None:
        pytest.fail(f"base image {base} is missing; `make test` (or `make base-image`) builds it")
    return config


class Builder:
    """Build helper: events of a build, and commands run inside the built image as jovyan."""

    def __init__(self, config, docker):
        self.config, self.docker = config, docker
        self.sdk = docker_sdk.from_env()

    def build(self, spec_or_dir, no_cache=False, config=None):
        config = config or self.config
        if spec_or_dir.startswith(("gh/", "gl/", "git/", "gist/")):
            target = target_for_source(parse_spec(spec_or_dir, config), config)
        else:
            from pathlib import Path

            target = target_for_directory(Path(spec_or_dir), config)
        events = list(build_image(target, config, self.docker, no_cache))
        return target, events

    def built(self, spec_or_dir, **kwargs):
        target, events = self.build(spec_or_dir, **kwargs)
        assert events[-1].phase == "built", events[-1].message
        return target.image, events

    def run(self, image, command, user="1000"):
        output = self.sdk.containers.run(image, ["bash", "-c", command], remove=True, user=user)
        return output.decode().strip()


@pytest.fixture(scope="session")
def builder(build_config, docker):
    return Builder(build_config, docker)


def log_text(events) -> str:
    return "".join(e.message for e in events if e.phase == "building")


def serve_config(path, data_dir, build_config, git_server, **settings):
    """A settings file for `minibinder serve` against the test's git server and base image."""
    settings = {
        "allowed_clone_schemes": ["https", "git"],
        "internal_hosts": ["127.0.0.1"],
        **settings,
    }
    return write_config(
        path,
        data_dir,
        image_prefix=build_config.image_prefix,
        github_url=git_server.base_url,
        extra_ca_file=build_config.extra_ca_file,
        **settings,
    )


@pytest.fixture
def serve_with(tmp_path, git_server, build_config):
    """Start `minibinder serve` with extra settings; stop it and its sessions afterwards."""
    started = []

    def start(data_dir=None, **settings):
        folder = tmp_path / f"serve{len(started)}"
        folder.mkdir()
        config = serve_config(
            folder / "minibinder.toml",
            data_dir or (tmp_path / "data"),
            build_config,
            git_server,
            admin_token=ADMIN_TOKEN,
            **settings,
        )
        serve = ServeProcess(config, folder / "serve.log").start()
        serve.data_dir = data_dir or (tmp_path / "data")
        started.append(serve)
        return serve

    yield start
    for serve in started:
        serve.stop()
    remove_test_sessions(build_config.image_prefix)


def launch(serve, spec):
    received = events(f"{serve.url}/build/{spec}")
    assert received[-1]["phase"] == "ready", received[-1]
    return received[-1]


def wait_for(predicate, timeout, interval=0.5, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")
