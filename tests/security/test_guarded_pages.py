"""minibinder's own pages (#18, items 4, 7, 8 and the admin token): the listener decision reads
the path routing reads, no page of minibinder's can be framed, the data directory is for
minibinder's user alone, the operator's cookie stays out of scripts and other sites.

Against the previous main: `//admin/` answered the operator's page (with its CSRF value) on the
session listener, and `POST //admin/sessions/<id>/stop` stopped a session with only the sign-in
proxy's header; no page sent an anti-framing header; minibinder.sqlite was 0644.
"""

from __future__ import annotations

import http.client
import stat
import subprocess
import sys

import pytest

from minibinder.errors import ConfigError
from minibinder.settings_load import load_config

from . import corpus
from .conftest import ADMIN_TOKEN

ADMIN = ADMIN_TOKEN


def request(port: int, path: str, headers: dict[str, str], method: str = "GET", body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value)
    if body is not None:
        connection.putheader("Content-Type", "application/x-www-form-urlencoded")
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    answer = (response.status, dict(response.getheaders()), response.read())
    connection.close()
    return answer


@pytest.mark.parametrize("path", corpus.unnormalised_paths("/admin/"))
def test_the_operators_pages_never_answer_on_the_session_listener(serve_with, path):
    serve = serve_with()
    host = {"Host": f"127.0.0.1:{serve.port}", "Authorization": f"Bearer {ADMIN}"}
    status, _, body = request(serve.port, path, host)
    assert status in (400, 404), (path, status)
    assert b"csrf" not in body.lower() and b"Sessions" not in body


def test_a_sign_in_header_opens_no_operator_page_on_the_session_listener(serve_with):
    serve = serve_with(
        access="header", trusted_proxies=["127.0.0.1"], auth_users=["boss"], admin_users=["boss"]
    )
    boss = {"Host": f"127.0.0.1:{serve.port}", "X-Forwarded-User": "boss"}
    for path in corpus.unnormalised_paths("/admin/"):
        assert request(serve.port, path, boss)[0] in (400, 404), path
    stop = "//admin/sessions/0123456789abcdef/stop"
    assert request(serve.port, stop, boss, "POST", b"csrf=x")[0] in (400, 404)
    admin = {"Host": f"127.0.0.1:{serve.admin_port}", "X-Forwarded-User": "boss"}
    assert request(serve.admin_port, "//admin/", admin)[0] == 200  # its own listener: fine


def test_no_page_of_minibinders_can_be_framed(serve_with):
    serve = serve_with()
    main = {"Host": f"127.0.0.1:{serve.port}"}
    admin = {"Host": f"127.0.0.1:{serve.admin_port}", "Authorization": f"Bearer {ADMIN}"}
    answers = [
        request(serve.port, path, main)
        for path in (
            "/",
            "/v2/gh/o/r/HEAD",
            "/health",
            "/no-such-page",
            "/user/0123456789abcdef/lab",
        )
    ]
    answers += [request(serve.admin_port, path, admin) for path in ("/admin/", "/admin/launches")]
    for status, headers, _ in answers:
        assert headers.get("X-Frame-Options") == "DENY", (status, headers)
        assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), headers


def test_the_operators_cookie_is_httponly_and_strict(serve_with):
    serve = serve_with()
    host = {"Host": f"127.0.0.1:{serve.admin_port}"}
    status, headers, _ = request(serve.admin_port, f"/admin/?token={ADMIN}", host)
    cookie = headers.get("Set-Cookie", "")
    assert status in (200, 302, 303) and cookie, headers
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert "httponly" in attributes and "samesite=strict" in attributes, cookie


def test_the_data_directory_is_for_minibinders_user_alone(serve_with, tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "left-by-an-older-version").write_text("x")
    (data / "left-by-an-older-version").chmod(0o644)
    serve = serve_with(data_dir=data)
    assert request(serve.port, "/health", {"Host": f"127.0.0.1:{serve.port}"})[0] == 200
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    made = [path for path in data.iterdir() if path.is_file()]
    assert any(path.name.startswith("minibinder.sqlite") for path in made)
    loose = {
        path.name: oct(stat.S_IMODE(path.stat().st_mode))
        for path in made
        if stat.S_IMODE(path.stat().st_mode) & 0o077
    }
    assert loose == {}
    data.chmod(0o755)  # the doctor notices
    command = [sys.executable, "-m", "minibinder", "--config", str(serve.config_file), "doctor"]
    doctor = subprocess.run(command, capture_output=True, text=True)
    assert "data directory: readable by other users" in doctor.stdout, doctor.stdout
    data.chmod(0o700)


@pytest.mark.parametrize("token", ["short", "a" * 31])
def test_a_guessable_admin_token_is_refused_at_start(token):
    with pytest.raises(ConfigError, match="admin_token: .* is guessable"):
        load_config(overrides={"admin_token": token})
    assert load_config(overrides={"admin_token": "a" * 32}).admin_token == "a" * 32
