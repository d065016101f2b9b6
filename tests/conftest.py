"""Test tiers and shared settings.

tests/unit: pure (a guard in its conftest refuses processes, sockets and SQLite), runs in
seconds with `make unit`. tests/integration: the real thing — Docker, a git daemon on loopback,
`minibinder serve`, browsers — marked `integration`. Tests marked `restarts_docker` run last,
because every other integration test needs the daemon up.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from minibinder.settings_load import load_config

from .support.gitserver import GitServer

# `make test` runs some suites beside the rest (scripts/integration-tests.sh), sharing the host's
# Docker. That run names its images apart, so each run's cleanup by prefix (images, session
# containers) touches only its own; the host's netfilter and build networks the script sweeps
# once both runs are over (tests/support/host_sweep.py).
# (Not MINIBINDER_*: minibinder reads every such variable as a setting, and refuses unknown ones.)
BESIDE = os.environ.get("MBTESTS_BESIDE") == "1"
TEST_IMAGE_PREFIX = "minibinder-beside-" if BESIDE else "minibinder-test-"


def make_config(data_dir: Path, server: GitServer | None = None, **overrides):
    """Settings for tests: loopback git allowed, the host's CA bundle trusted in builds."""
    values = {
        "data_dir": str(data_dir),
        "image_prefix": TEST_IMAGE_PREFIX,
        "allowed_clone_schemes": ["https", "git"],
        "internal_hosts": ["127.0.0.1"],  # the loopback git server and conda channel
        "clone_timeout": 60,
    }
    if server is not None:
        values.update(
            github_url=server.base_url, gitlab_url=server.base_url, gist_url=server.base_url
        )
    ca_file = os.environ.get("MINIBINDER_EXTRA_CA_FILE", "")
    if ca_file:
        values["extra_ca_file"] = ca_file
    values.update(overrides)
    return load_config(overrides=values)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/integration/" in str(item.path) or "/security/" in str(item.path):
            item.add_marker(pytest.mark.integration)
    # A stable sort: everything keeps its order, the Docker restart moves to the end.
    items.sort(key=lambda item: item.get_closest_marker("restarts_docker") is not None)


# -- measurements tests report (shown at the end of the run, also when everything passes) --------

_MEASURED: list[str] = []


@pytest.fixture
def measured():
    """Append a line of what a test measured; it is printed in the run's summary."""
    return _MEASURED.append


def pytest_terminal_summary(terminalreporter):
    if _MEASURED:
        terminalreporter.section("measured")
        for line in _MEASURED:
            terminalreporter.write_line(line)
