"""The warm pool for real: sessions started ahead, handed out at once, refilled, counted, culled."""

from __future__ import annotations

import json
import sqlite3
import time

import docker as docker_sdk
import pytest

from ..support.jupyter import api
from ..support.sse import events
from .conftest import wait_for

SPEC = "gh/pool/demo/HEAD"


@pytest.fixture(scope="module")
def pool_repo(git_server, builder):
    git_server.create(
        "pool/demo",
        {
            "index.ipynb": json.dumps(
                {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
            )
        },
    )
    builder.built(SPEC)
    return SPEC


def warm_sessions(serve) -> int:
    """Sessions ready and waiting in the pool (started containers may still be booting)."""
    with sqlite3.connect(serve.data_dir / "minibinder.sqlite") as db:
        return db.execute("SELECT count(*) FROM sessions WHERE state = 'warm'").fetchone()[0]


def warm_containers(spec: str) -> list:
    sdk = docker_sdk.from_env()
    # ignore_removed: another run's session may go between the listing and its inspection.
    listed = sdk.containers.list(filters={"label": "minibinder.session"}, ignore_removed=True)
    return [c for c in listed if c.labels.get("minibinder.spec") == spec]


def test_a_launch_is_handed_a_warm_session_and_the_pool_refills(serve_with, pool_repo):
    serve = serve_with(warm_pool={SPEC: 2})
    wait_for(lambda: warm_sessions(serve) == 2, 90, message="two warm sessions")
    before = {c.id for c in warm_containers(SPEC)}
    started = time.monotonic()
    received = events(f"{serve.url}/build/{SPEC}")
    elapsed = time.monotonic() - started
    assert [e["phase"] for e in received] == ["built", "launching", "ready"]
    ready = received[-1]
    assert elapsed < 5  # no container was started for this request (the benchmark measures it)
    session_id = ready["url"].rstrip("/").rsplit("/", 1)[1]
    claimed = [c for c in warm_containers(SPEC) if c.labels["minibinder.session"] == session_id]
    assert claimed and claimed[0].id in before
    status, body = api(ready, "api/status")
    assert status == 200
    env = dict(item.split("=", 1) for item in claimed[0].attrs["Config"]["Env"])
    assert env["BINDER_REQUEST"] == f"v2/{SPEC}"
    assert env["BINDER_PERSISTENT_REQUEST"] == ready["binder_persistent_request"]
    # The pool refills to two unclaimed sessions besides the one handed out.
    wait_for(
        lambda: warm_sessions(serve) == 2 and len(warm_containers(SPEC)) == 3,
        90,
        message="the pool to refill",
    )
    # Another request gets another session, with a token of its own.
    second = events(f"{serve.url}/build/{SPEC}")[-1]
    assert second["token"] != ready["token"] and second["url"] != ready["url"]
    assert api({**second, "token": ready["token"]}, "api/status")[0] == 403


def test_warm_sessions_count_against_admission(serve_with, pool_repo, git_server):
    git_server.create("pool/other", {"a.txt": "a\n"})
    serve = serve_with(warm_pool={SPEC: 2}, max_sessions=2)
    wait_for(lambda: warm_sessions(serve) == 2, 90, message="two warm sessions")
    refused = events(f"{serve.url}/build/gh/pool/other/HEAD")[-1]
    assert refused["phase"] == "failed" and "This server is full" in refused["message"]
    assert events(f"{serve.url}/build/{SPEC}")[-1]["phase"] == "ready"  # warm ones still go


def test_unclaimed_warm_sessions_are_culled_and_replaced(serve_with, pool_repo):
    serve_with(warm_pool={SPEC: 1}, idle_timeout=6, cull_warning=2, cull_interval=1)
    wait_for(lambda: len(warm_containers(SPEC)) == 1, 90, message="a warm session")
    first = warm_containers(SPEC)[0].id
    wait_for(
        lambda: first not in {c.id for c in warm_containers(SPEC)},
        60,
        message="the unclaimed session to be culled",
    )
    wait_for(lambda: len(warm_containers(SPEC)) == 1, 60, message="a replacement")


# -- sizes set while running, shortfalls, emptying, shutdown (issue 22) ----------------------


def installation_containers(serve, spec: str = SPEC) -> list:
    """Session containers of this test's own installation (other test runs share the daemon
    and may use the same spec)."""
    instance = (serve.data_dir / "instance_id").read_text().strip()
    sdk = docker_sdk.from_env()
    return [
        c
        for c in sdk.containers.list(filters={"label": f"minibinder.instance={instance}"})
        if c.labels.get("minibinder.spec") == spec
    ]


def admin_page(serve) -> str:
    import html
    import urllib.request

    from .conftest import ADMIN_TOKEN

    request = urllib.request.Request(
        f"{serve.admin_url}/admin/", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return html.unescape(response.read().decode())


def set_on_the_page(serve, spec: str, size: int) -> None:
    import re
    import urllib.parse
    import urllib.request

    from .conftest import ADMIN_TOKEN

    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', admin_page(serve)).group(1)
    request = urllib.request.Request(
        f"{serve.admin_url}/admin/pool",
        data=urllib.parse.urlencode({"csrf": csrf, "spec": spec, "size": size}).encode(),
        headers={
            "Authorization": f"Bearer {ADMIN_TOKEN}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def test_a_size_set_on_the_page_holds_until_the_settings_file_changes(
    serve_with, pool_repo, tmp_path
):
    data = tmp_path / "pool-data"
    serve = serve_with(data_dir=data, warm_pool={SPEC: 1})
    wait_for(lambda: warm_sessions(serve) == 1, 90, message="a warm session")
    set_on_the_page(serve, SPEC, 0)
    wait_for(lambda: not installation_containers(serve), 30, message="the pool to empty")
    page = admin_page(serve)
    assert "set by the operator's page at" in page and "the settings file says 1" in page
    serve.stop()
    # Restarted with the file as it was: the page's 0 is still in force, and says why.
    again = serve_with(data_dir=data, warm_pool={SPEC: 1})
    time.sleep(12)  # two refill rounds at least
    assert warm_sessions(again) == 0 and not installation_containers(again)
    assert "the settings file says 1, and a change of the file's value" in admin_page(again)
    again.stop()
    # Workshop morning: the file says 2 now, and the file wins.
    morning = serve_with(data_dir=data, warm_pool={SPEC: 2})
    wait_for(lambda: warm_sessions(morning) == 2, 90, message="the file's two warm sessions")
    page = admin_page(morning)
    assert "warm_pool in the settings file" in page and "set by the operator's page" not in page
    assert "the settings file's 2 replaces the 0 set by the operator's page" in (
        morning.log_file.read_text()
    )


def test_serve_stops_its_unclaimed_warm_sessions_when_it_stops(serve_with, pool_repo):
    serve = serve_with(warm_pool={SPEC: 2})
    wait_for(lambda: warm_sessions(serve) == 2, 90, message="two warm sessions")
    claimed = events(f"{serve.url}/build/{SPEC}")[-1]
    claimed_id = claimed["url"].rstrip("/").rsplit("/", 1)[1]
    wait_for(
        lambda: warm_sessions(serve) == 2 and len(installation_containers(serve)) == 3,
        90,
        message="the pool to refill",
    )
    serve.stop()
    left = installation_containers(serve)
    assert [c.labels["minibinder.session"] for c in left] == [claimed_id]  # work stays
    assert warm_sessions(serve) == 0
    assert "stopped 2 unclaimed warm sessions" in serve.log_file.read_text()


def test_stop_all_empties_the_pool_and_keep_pool_keeps_it(serve_with, pool_repo):
    from .test_cli import minibinder

    serve = serve_with(warm_pool={SPEC: 1})
    wait_for(lambda: warm_sessions(serve) == 1, 90, message="a warm session")
    claimed = events(f"{serve.url}/build/{SPEC}")[-1]
    claimed_id = claimed["url"].rstrip("/").rsplit("/", 1)[1]
    wait_for(
        lambda: warm_sessions(serve) == 1 and len(installation_containers(serve)) == 2,
        90,
        message="the pool to refill",
    )
    kept = minibinder("stop", "--all", "--keep-pool", config_file=serve.config_file)
    assert kept.returncode == 0 and kept.stdout.split() == ["stopped", claimed_id, f"({SPEC})"]
    assert len(installation_containers(serve)) == 1 and warm_sessions(serve) == 1
    emptied = minibinder("stop", "--all", config_file=serve.config_file)
    assert emptied.returncode == 0, emptied.stderr
    assert f"warm pool {SPEC}: 0 (was 1)" in emptied.stdout
    time.sleep(12)  # a refill round would have started one again within seconds
    assert not installation_containers(serve) and warm_sessions(serve) == 0
    assert "set by `minibinder stop --all`" in admin_page(serve)


def test_a_pool_short_of_memory_says_why_on_the_page_and_in_doctor(serve_with, pool_repo):
    from minibinder.sessions.admission import host_memory_bytes

    from .test_cli import minibinder

    # Room for exactly one session on this host, whatever its memory.
    room = host_memory_bytes() - 2**30
    reservation = int(room * 0.6)
    serve = serve_with(
        warm_pool={SPEC: 3},
        memory_headroom="1G",
        session_memory_reservation=reservation,
        session_memory_limit=reservation,
    )
    wait_for(lambda: warm_sessions(serve) == 1, 90, message="the one warm session that fits")
    wait_for(lambda: "the host is full" in admin_page(serve), 30, message="the page's reason")
    page = admin_page(serve)
    assert "1 of 3" in page
    assert "the host is full (1 session running or starting): this host admits 1 session" in page
    assert "Not every pool can be full: the warm pools want 3 sessions but this host admits 1" in (
        page
    )
    doctor = minibinder("doctor", config_file=serve.config_file)
    line = next(line for line in doctor.stdout.splitlines() if "warm pool:" in line)
    assert line.startswith("warn  warm pool: gh/pool/demo/HEAD 3, short: the host is full")
    assert "the warm pools want 3 sessions but this host admits 1 session (memory" in line
