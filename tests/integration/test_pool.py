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
    return [
        c
        for c in sdk.containers.list(filters={"label": "minibinder.session"})
        if c.labels.get("minibinder.spec") == spec
    ]


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
