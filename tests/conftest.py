"""Shared fixtures: settings pointing at a loopback git server, and the server itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from minibinder.config import load_config

from .gitserver import GitServer

TEST_IMAGE_PREFIX = "minibinder-test-"


@pytest.fixture(scope="session")
def git_server(tmp_path_factory):
    server = GitServer(tmp_path_factory.mktemp("git-server")).start()
    yield server
    server.stop()


def make_config(data_dir: Path, server: GitServer | None = None, **overrides):
    """Settings for tests: loopback git allowed, the host's CA bundle trusted in builds."""
    values = {"data_dir": str(data_dir), "image_prefix": TEST_IMAGE_PREFIX,
              "allowed_clone_schemes": ["https", "git"], "clone_timeout": 60}
    if server is not None:
        values.update(github_url=server.base_url, gitlab_url=server.base_url,
                      gist_url=server.base_url)
    ca_file = os.environ.get("MINIBINDER_EXTRA_CA_FILE", "")
    if ca_file:
        values["extra_ca_file"] = ca_file
    values.update(overrides)
    return load_config(overrides=values)


@pytest.fixture
def config(tmp_path, git_server):
    return make_config(tmp_path / "data", git_server)
