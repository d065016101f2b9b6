"""The running service: forged Host headers, tokens in logs, the operator's pages' input."""

from __future__ import annotations

import http.client
import time

from ..support.sse import events
from .conftest import ADMIN_TOKEN, launch


def raw_get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    status, body = response.status, response.read()
    connection.close()
    return status, body


def test_a_forged_host_is_refused_and_never_stored(serve_with, git_server):
    git_server.create("sec/host", {"README.md": "x"})
    serve = serve_with()
    status, body = raw_get(serve.port, "/build/gh/sec/host/HEAD", {"Host": "attacker.example"})
    assert status == 400 and b"does not answer to the host name 'attacker.example'" in body
    status, _ = raw_get(serve.port, "/", {"Host": f"attacker.example:{serve.port}"})
    assert status == 400
    from minibinder.store import Store

    stored = Store(serve.data_dir / "minibinder.sqlite").last_host_url() or ""
    assert "attacker" not in stored


def test_tokens_never_reach_the_access_log(serve_with, git_server):
    git_server.create("sec/logs", {"README.md": "x"})
    serve = serve_with()
    ready = launch(serve, "gh/sec/logs/HEAD")
    raw_get(
        serve.port,
        f"/user/{ready['url'].split('/user/')[1]}lab?token={ready['token']}",
        {
            "Host": f"127.0.0.1:{serve.port}",
            "Referer": f"{ready['url']}tree?token={ready['token']}",
        },
    )
    raw_get(
        serve.admin_port, f"/admin/?token={ADMIN_TOKEN}", {"Host": f"127.0.0.1:{serve.admin_port}"}
    )
    time.sleep(0.5)
    log = serve.log_file.read_text()
    assert "token=[secret]" in log
    assert ready["token"] not in log and ADMIN_TOKEN not in log


def test_operator_pages_answer_bad_input_with_4xx(serve_with):
    serve = serve_with()
    host = {"Host": f"127.0.0.1:{serve.admin_port}"}
    assert raw_get(serve.admin_port, "/admin/?token=%C3%A9t%C3%A9", host)[0] == 401
    headers = {**host, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert raw_get(serve.admin_port, "/admin/launches.jsonl?since=abc", headers)[0] == 400
    assert raw_get(serve.admin_port, "/admin/launches.jsonl?since=0", headers)[0] == 200
    assert events(f"{serve.url}/build/gh/sec/nothing/HEAD")[-1]["phase"] == "failed"


def test_the_operators_pages_have_their_own_origin(serve_with):
    serve = serve_with()
    main = {"Host": f"127.0.0.1:{serve.port}"}
    admin = {"Host": f"127.0.0.1:{serve.admin_port}", "Authorization": f"Bearer {ADMIN_TOKEN}"}
    status, body = raw_get(serve.port, "/admin/", {**main, "Authorization": admin["Authorization"]})
    assert status == 404 and b"their own address" in body
    assert raw_get(serve.admin_port, "/admin/", admin)[0] == 200
    # Nothing but the operator's pages on their listener: no sessions, no launch pages.
    for path in ("/user/0123456789abcdef/lab", "/v2/gh/o/r/HEAD", "/build/gh/o/r/HEAD"):
        assert raw_get(serve.admin_port, path, admin)[0] == 404
    # A Host naming the main port is refused on the operator's listener, and the other way.
    assert raw_get(serve.admin_port, "/admin/", {**admin, "Host": main["Host"]})[0] == 400
