"""Disk: clones are capped by apparent size and by file count, however well the repository
compresses or however git lays the files out."""

from __future__ import annotations

import urllib.request

import pytest

from minibinder.errors import FetchError
from minibinder.repos.fetch import FetchLimits, fetch_commit

SCHEMES = ["https", "git"]
LOOPBACK = ["127.0.0.1"]  # the test's own git server


def test_a_file_of_zeros_counts_by_its_apparent_size(tmp_path, git_server):
    # 64 MiB of zeros: a few KB over the wire, a sparse file on disk.
    zeros = git_server.create("hostile/zeros", {"zeros.bin": bytes(64 * 2**20)})
    with pytest.raises(FetchError, match="larger than 32 MiB .clone_max_size"):
        limits = FetchLimits(SCHEMES, 60, 32 * 2**20, internal_hosts=LOOPBACK)
        list(fetch_commit(zeros.url, zeros.head, tmp_path / "c", limits))


def test_many_empty_files_count(tmp_path, git_server):
    many = git_server.create("hostile/many", {f"d{i // 100}/f{i}": "" for i in range(3000)})
    with pytest.raises(FetchError, match="more than 2000 files and folders .clone_max_files"):
        limits = FetchLimits(SCHEMES, 60, 2**30, max_files=2000, internal_hosts=LOOPBACK)
        list(fetch_commit(many.url, many.head, tmp_path / "c", limits))


def test_a_session_past_its_disk_limit_is_warned_then_stopped(serve_with, git_server):
    from ..integration.conftest import launch, wait_for
    from ..support.jupyter import api, execute, start_kernel

    git_server.create("hostile/fill", {"README.md": "x"})
    serve = serve_with(session_disk_limit="60M", cull_interval=1)
    ready = launch(serve, "gh/hostile/fill/HEAD")
    kernel = start_kernel(ready)
    execute(ready, kernel, "open('/tmp/fill', 'wb').write(b'x' * 50 * 2**20)")
    status, body = api(ready, "_minibinder/status")
    assert status == 200 and body["warning"]["reason"] == "disk"
    assert "of the 60 MiB it may" in body["warning"]["message"]
    execute(ready, kernel, "open('/tmp/fill2', 'wb').write(b'x' * 30 * 2**20)")
    wait_for(lambda: api(ready, "api/status")[0] != 200, 60, message="the session to stop")
    # The proxy stops answering as soon as the container goes; the stop is counted once the
    # culler's call returns, a moment later.
    wait_for(lambda: 'reason="disk"' in _metrics(serve), 30, message="the disk stop counted")


def _metrics(serve) -> str:
    with urllib.request.urlopen(f"{serve.url}/metrics") as response:
        return response.read().decode()


def test_a_build_log_past_its_limit_is_cut_and_the_build_goes_on(serve_with, git_server):
    from ..support.sse import events

    git_server.create(
        "hostile/loud",
        {
            "postBuild": '#!/bin/bash\npython3 -c "import sys\nfor _ in range(20000): '
            "sys.stdout.write('y' * 1000 + '\\\\n')\"\n"
        },
        executable=("postBuild",),
    )
    serve = serve_with(build_log_limit="1M")
    received = events(f"{serve.url}/build/gh/hostile/loud/HEAD?build_only=true")
    assert received[-1]["phase"] == "ready", received[-1]
    shown = sum(len(event.get("message", "")) for event in received)
    assert 2**20 <= shown < 2**20 + 200_000  # 20 MB printed, about 1 MiB shown
    assert any("build_log_limit" in event.get("message", "") for event in received)
    (log,) = (serve.data_dir / "builds").glob("*hostile-loud*.log")
    assert log.stat().st_size < 2 * 2**20
