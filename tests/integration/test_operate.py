"""Running it for real: behind a proxy the operator trusts, the client's address and scheme come
from its forwarding headers; from anybody else those headers are ignored."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from minibinder.store import Store

from .conftest import ADMIN_TOKEN, launch, wait_for

CLIENT = "198.51.100.23"  # a documentation address: only ever a header's text here


def stream(serve, path: str, headers: dict, source: str = "127.0.0.1") -> tuple[int, list]:
    connection = http.client.HTTPConnection(
        "127.0.0.1", serve.port, timeout=300, source_address=(source, 0)
    )
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    received = []
    for raw in response:
        line = raw.decode().strip()
        if line.startswith("data: "):
            received.append(json.loads(line[6:]))
            if received[-1]["phase"] in ("ready", "failed"):
                break
    connection.close()
    return response.status, received


def test_a_trusted_proxy_names_the_client(serve_with, git_server):
    git_server.create("ops/forwarded", {"README.md": "x"})
    serve = serve_with(trusted_proxies=["127.0.0.1"], max_sessions_per_address=1)
    path = "/build/gh/ops/forwarded/HEAD"
    forwarded = {"X-Forwarded-For": f"6.6.6.6, {CLIENT}", "X-Forwarded-Proto": "https"}
    status, received = stream(serve, path, forwarded)
    assert status == 200 and received[-1]["phase"] == "ready"
    assert received[-1]["url"].startswith("https://")  # the scheme the browser used
    # Another forwarded client is another client for the per-client limits.
    _, other = stream(serve, path, {"X-Forwarded-For": "198.51.100.24"})
    assert other[-1]["phase"] == "ready"
    # The same client again is over its limit of one session.
    status, refused = stream(serve, path, forwarded)
    assert status == 200 and refused[-1]["phase"] == "failed"
    assert "max_sessions_per_address = 1" in refused[-1]["message"]
    # From an address that is not a trusted proxy, forwarding headers mean nothing.
    claims = {"X-Forwarded-For": "198.51.100.99", "X-Forwarded-Proto": "https"}
    _, untrusted = stream(serve, path, claims, source="127.0.0.2")
    assert untrusted[-1]["url"].startswith("http://")
    # A trusted proxy sending nonsense gets a clear 400.
    status, _ = stream(serve, path, {"X-Forwarded-For": "<script>"})
    assert status == 400
    clients = [row["client_ip"] for row in Store(serve.data_dir / "minibinder.sqlite").launches()]
    assert clients.count(CLIENT) == 1 and "198.51.100.24" in clients and "127.0.0.2" in clients
    assert "6.6.6.6" not in clients and "198.51.100.99" not in clients


def test_forwarding_headers_are_ignored_without_trusted_proxies(serve_with, git_server):
    git_server.create("ops/plain", {"README.md": "x"})
    serve = serve_with()
    ready = launch(serve, "gh/ops/plain/HEAD")
    assert ready["url"].startswith("http://")
    _, received = stream(
        serve, "/build/gh/ops/plain/HEAD", {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"}
    )
    assert received[-1]["url"].startswith("http://")  # gunicorn's own trust of loopback is off
    clients = [row["client_ip"] for row in Store(serve.data_dir / "minibinder.sqlite").launches()]
    assert CLIENT not in clients


def test_sessions_and_stop_from_the_shell_while_serve_runs(serve_with, git_server):
    from .test_cli import minibinder

    git_server.create("ops/shell-a", {"README.md": "x"})
    git_server.create("ops/shell-b", {"README.md": "x"})
    serve = serve_with()
    first = launch(serve, "gh/ops/shell-a/HEAD")
    second = launch(serve, "gh/ops/shell-b/HEAD")
    third = launch(serve, "gh/ops/shell-b/HEAD")
    ids = [ready["url"].rstrip("/").rsplit("/", 1)[1] for ready in (first, second, third)]
    config = serve.config_file
    listed = minibinder("sessions", config_file=config)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "REPOSITORY", "STATE", "AGE", "IDLE", "MEMORY", "CLIENT"]
    assert {row.split()[0] for row in rows} == set(ids)
    assert all("127.0.0.1" in row and "MiB" in row for row in rows)
    stopped = minibinder("stop", ids[0], config_file=config)
    assert stopped.returncode == 0 and f"stopped {ids[0]}" in stopped.stdout
    assert http_status(first["url"] + "api/status") == 404  # its route is gone too
    by_repo = minibinder("stop", "--repo", "shell-b$", config_file=config)
    assert sorted(line.split()[1] for line in by_repo.stdout.splitlines()) == sorted(ids[1:])
    assert minibinder("sessions", config_file=config).stdout.splitlines()[1:] == []
    # Bad input: a clear message and nothing else happens.
    unknown = minibinder("stop", "0123456789abcdef", config_file=config)
    assert unknown.returncode == 1 and "no such session: 0123456789abcdef" in unknown.stderr
    assert (
        "not a regular expression" in minibinder("stop", "--repo", "(", config_file=config).stderr
    )
    assert minibinder("stop", config_file=config).returncode == 2  # usage: nothing named


def http_status(url: str) -> int:
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 10  # the proxy caches routes for two seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        if status == 404 or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


def test_doctor_says_what_is_wrong_and_what_to_do(tmp_path, build_config, git_server):
    from ..support.serving import write_config
    from .test_cli import minibinder

    healthy = write_config(
        tmp_path / "ok.toml",
        tmp_path / "data",
        github_url=git_server.base_url,
        conda_channel_alias=git_server.base_url,
    )
    result = minibinder("doctor", config_file=healthy)
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout
    for name in (
        "docker",
        "cgroup memory limits",
        "base image",
        "disk",
        "extra CA file",
        "package index",
        "git provider",
    ):
        assert any(line.startswith(f"ok    {name}:") for line in lines), (name, result.stdout)
    broken = write_config(
        tmp_path / "broken.toml",
        tmp_path / "data",
        github_url="git://127.0.0.1:1",
        extra_ca_file=str(tmp_path / "no.pem"),
        base_images={"3.11": "minibinder-test-no-such-base:1"},
    )
    result = minibinder("doctor", config_file=broken)
    assert result.returncode == 1
    text = result.stdout
    assert "FAIL  base image: minibinder-test-no-such-base:1 is missing" in text
    assert "→ build it: minibinder base-image" in text
    assert f"FAIL  extra CA file: {tmp_path / 'no.pem'}" in text
    assert "FAIL  git provider: git://127.0.0.1:1 does not answer" in text


CELL_IN_THE_BROWSER = """async ([base, token]) => {
  const made = await fetch(base + "api/kernels", {method: "POST", body: "{}",
    headers: {Authorization: "token " + token}});
  const kernel = await made.json();
  return await new Promise((resolve) => {
    const ws = new WebSocket(base.replace(/^http/, "ws") + "api/kernels/" + kernel.id +
      "/channels?token=" + token);
    ws.onopen = () => ws.send(JSON.stringify({channel: "shell", parent_header: {}, metadata: {},
      content: {code: "print(6 * 7)", silent: false, store_history: false,
                user_expressions: {}, allow_stdin: false},
      header: {msg_id: "1", username: "t", session: "s", version: "5.3",
               msg_type: "execute_request"}}));
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.header.msg_type === "stream") resolve(location.protocol + " " +
        message.content.text.trim());
    };
    ws.onerror = () => resolve("websocket error");
    setTimeout(() => resolve("timeout"), 60000);
  });
}"""


def binder_client_cell(url: str, spec: str, ca) -> dict:
    """Launch `spec` with the BinderHub JavaScript client (trusting the test's CA) and run
    print(6 * 7) in it; the client's last report line."""
    import shutil
    import subprocess

    from .test_e2e import ROOT

    node = subprocess.run(
        [shutil.which("node") or "node", "binder_client.mjs", url + "/", spec, "print(6 * 7)"],
        cwd=ROOT / "tests" / "js",
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "NODE_EXTRA_CA_CERTS": str(ca)},
    )
    assert node.returncode == 0, node.stdout + node.stderr
    return json.loads(node.stdout.strip().splitlines()[-1])


def cell_in_the_browser(tmp_path, launch_url: str) -> str:
    """Open a launch link in a real browser; once it lands in its session, run a cell over the
    kernel WebSocket from that page. What the cell printed, after the page's scheme."""
    from ..support.browser import chromium

    with chromium(tmp_path / "profile", ignore_https_errors=True) as browser:
        page = browser.new_page()
        landings: list[str] = []  # the launch page sends the browser on with the token
        page.on(
            "request",
            lambda request: (
                landings.append(request.url)
                if "/user/" in request.url and "token=" in request.url
                else None
            ),
        )
        page.goto(launch_url)
        page.wait_for_url("**/user/**", timeout=300_000)
        landing = urllib.parse.urlsplit(landings[0])
        token = urllib.parse.parse_qs(landing.query)["token"][0]
        root, _, rest = landing.path.partition("/user/")
        base = f"{landing.scheme}://{landing.netloc}{root}/user/{rest.split('/')[0]}/"
        return page.evaluate(CELL_IN_THE_BROWSER, [base, token])


def test_https_directly_with_websockets(tmp_path, build_config, git_server):

    import websocket

    from ..support.serving import ServeProcess, remove_test_sessions
    from ..support.sse import events
    from ..support.tls import make_certificates
    from .conftest import serve_config

    certs = make_certificates(tmp_path / "tls")
    git_server.create("ops/tls", {"README.md": "x"})
    config = serve_config(
        tmp_path / "minibinder.toml",
        tmp_path / "data",
        build_config,
        git_server,
        tls_certificate=str(certs.certificate),
        tls_key=str(certs.key),
    )
    serve = ServeProcess(config, tmp_path / "serve.log", certs.client_context()).start()
    try:
        ready = events(f"{serve.url}/build/gh/ops/tls/HEAD", context=certs.client_context())[-1]
        assert ready["phase"] == "ready" and ready["url"].startswith("https://127.0.0.1:")
        # A kernel's WebSocket over TLS, from Python.
        connection = http.client.HTTPSConnection(
            "127.0.0.1", serve.port, timeout=30, context=certs.client_context()
        )
        path = ready["url"].split(str(serve.port), 1)[1]
        connection.request(
            "POST",
            f"{path}api/kernels",
            body="{}",
            headers={"Authorization": f"token {ready['token']}"},
        )
        kernel = json.loads(connection.getresponse().read())["id"]
        ws = websocket.create_connection(
            f"{ready['url'].replace('https', 'wss', 1)}api/kernels/{kernel}/channels",
            header=[f"Authorization: token {ready['token']}"],
            timeout=30,
            sslopt={"ca_certs": str(certs.ca)},
        )
        ws.close()
        # The BinderHub JavaScript client, trusting the test's CA, runs a cell.
        assert binder_client_cell(serve.url, "gh/ops/tls/HEAD", certs.ca)["output"] == "42\n"
        # A real browser launches through the HTTPS launch page and talks to a kernel.
        assert cell_in_the_browser(tmp_path, f"{serve.url}/v2/gh/ops/tls/HEAD") == "https: 42"
        # Plain HTTP on the HTTPS ports gets a one-line hint, and nothing else.
        for port in (serve.port, serve.admin_port):
            plain = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            plain.request("GET", "/versions")
            answer = plain.getresponse()
            assert answer.status == 400 and answer.getheader("Connection") == "close"
            assert answer.read() == (
                b"This port speaks HTTPS: use https:// instead of http:// in the address.\n"
            )
        # A client that connects and says nothing is let go; HTTPS still answers after it.
        with socket.create_connection(("127.0.0.1", serve.port), timeout=30) as silent:
            silent.settimeout(30)
            assert silent.recv(1) == b""  # closed after request_header_timeout
        https = http.client.HTTPSConnection(
            "127.0.0.1", serve.port, timeout=10, context=certs.client_context()
        )
        https.request("GET", "/versions")
        assert https.getresponse().status == 200
    finally:
        serve.stop()
        remove_test_sessions(build_config.image_prefix)


def test_tls_settings_that_cannot_work_stop_the_start(tmp_path):
    from minibinder.errors import ConfigError
    from minibinder.settings_load import load_config

    from ..support.tls import make_certificates

    certs = make_certificates(tmp_path / "tls")
    other = make_certificates(tmp_path / "other")
    cases = [
        ({"tls_certificate": str(certs.certificate)}, "tls_key: HTTPS needs both"),
        (
            {"tls_certificate": str(tmp_path / "none.pem"), "tls_key": str(certs.key)},
            "is not a readable file",
        ),
        (
            {"tls_certificate": str(certs.certificate), "tls_key": str(other.key)},
            "cannot serve HTTPS",
        ),
    ]
    for settings, message in cases:
        try:  # checked as the settings are read: `minibinder serve` says so and stops
            load_config(overrides={"data_dir": str(tmp_path / "d"), **settings})
        except ConfigError as error:
            assert message in str(error), (settings, str(error))
        else:
            raise AssertionError(f"{settings} was accepted")


def test_install_service_writes_a_unit_systemd_accepts(tmp_path):
    import shutil
    import subprocess

    from .test_cli import minibinder

    unit, settings = tmp_path / "minibinder.service", tmp_path / "etc" / "minibinder.toml"
    (tmp_path / "unused.toml").write_text("")
    result = minibinder(
        "install-service",
        "--unit",
        str(unit),
        "--settings",
        str(settings),
        "--link",
        "",
        config_file=tmp_path / "unused.toml",
    )
    assert result.returncode == 0, result.stderr
    assert "systemctl enable --now minibinder" in result.stdout
    text = unit.read_text()
    assert f"--config {settings} serve" in text and "Restart=on-failure" in text
    assert "MINIBINDER_DATA_DIR" not in text and "PrivateTmp" not in text
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is required (Debian's systemd package)"
    verified = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # The settings file it wrote is every default, and minibinder reads it.
    assert minibinder("settings", config_file=settings).returncode == 0
    # An unwritable place is named.
    blocked = tmp_path / "file"
    blocked.write_text("")
    result = minibinder(
        "install-service",
        "--unit",
        str(blocked / "x.service"),
        "--settings",
        str(settings),
        "--link",
        "",
        config_file=tmp_path / "unused.toml",
    )
    assert result.returncode == 1 and f"cannot write {blocked}" in result.stderr


def get_or_none(url: str):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read()
    except OSError:
        return None


def test_the_shell_sees_the_installation_the_service_runs(tmp_path, build_config):
    """#22 item 1: install-service into a temporary root, start the service as its unit says,
    then the operator's commands (as the unit: through the settings file) see the service's
    data directory, its admin token and its sessions."""
    import shlex
    import subprocess

    from ..support.gitserver import free_port
    from .test_cli import minibinder

    root = tmp_path / "root"
    unit, settings = root / "etc/systemd/system/minibinder.service", root / "etc/minibinder.toml"
    data, link = root / "var/lib/minibinder", root / "usr/local/bin/minibinder"
    (tmp_path / "none.toml").write_text("")
    env_ca = {"MINIBINDER_EXTRA_CA_FILE": build_config.extra_ca_file or ""}
    result = minibinder(
        "install-service",
        "--unit",
        str(unit),
        "--settings",
        str(settings),
        "--data-dir",
        str(data),
        "--link",
        str(link),
        config_file=tmp_path / "none.toml",
        env=env_ca,
    )
    assert result.returncode == 0, result.stderr
    written = settings.read_text()
    assert f'data_dir = "{data}"' in written
    if build_config.extra_ca_file:  # the CA `make serve` passes travels into the service
        assert f'extra_ca_file = "{build_config.extra_ca_file}"' in written
    assert oct(settings.stat().st_mode & 0o777) == "0o600"
    assert link.is_symlink() and link.resolve().name == "minibinder"
    # The service, started exactly as the unit says (other ports: this one is a test).
    exec_start = next(
        line for line in unit.read_text().splitlines() if line.startswith("ExecStart=")
    )
    port, admin = free_port(), free_port()
    command = [
        *shlex.split(exec_start.split("=", 1)[1]),
        "--bind",
        f"127.0.0.1:{port}",
        "--admin-bind",
        f"127.0.0.1:{admin}",
    ]
    # The unit's environment: none of the test run's MINIBINDER_* settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIBINDER_")}
    service = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_for(
            lambda: get_or_none(f"http://127.0.0.1:{port}/health") is not None,
            60,
            message="the service to answer",
        )
        for shell in (["admin-token"], ["doctor"], ["sessions"], ["stop", "--all"]):
            ran = minibinder(*shell, config_file=settings)
            assert ran.returncode in (0, 1), (shell, ran.stderr)
            if shell == ["admin-token"]:  # the service's token, not a new one of the shell's
                request = urllib.request.Request(
                    f"http://127.0.0.1:{admin}/admin/",
                    headers={"Authorization": f"Bearer {ran.stdout.strip()}"},
                )
                with urllib.request.urlopen(request, timeout=30) as page:
                    assert page.status == 200
            if shell == ["doctor"]:
                assert str(data) in ran.stdout  # the service's data directory
    finally:
        service.terminate()
        service.wait(30)


def post_form(serve, path: str, fields: dict, source: str = "127.0.0.1", cookie: str = ""):
    body = urllib.parse.urlencode(fields)
    connection = http.client.HTTPConnection(
        "127.0.0.1", serve.port, timeout=60, source_address=(source, 0)
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if cookie:
        headers["Cookie"] = cookie
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    return response


def get(serve, path: str, headers: dict | None = None, source: str = "127.0.0.1", port=None):
    connection = http.client.HTTPConnection(
        "127.0.0.1", port or serve.port, timeout=60, source_address=(source, 0)
    )
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.body = response.read()
    return response


def test_a_workshop_access_code(serve_with, git_server):
    from minibinder.identity import hash_code

    git_server.create("ops/code", {"README.md": "x"})
    serve = serve_with(access="code", access_code_hash=hash_code("sesame"))
    home = get(serve, "/")
    assert home.status == 302 and home.getheader("Location") == "/access?next=%2F"
    assert get(serve, "/build/gh/ops/code/HEAD").status == 401
    assert b"access code" in get(serve, "/access").body
    assert post_form(serve, "/access", {"code": "wrong", "next": "/"}).status == 403
    right = post_form(serve, "/access", {"code": "sesame", "next": "//evil.example/x"})
    assert right.status == 302 and right.getheader("Location") == "/"  # never off-site
    cookie = right.getheader("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    value = cookie.split(";", 1)[0]
    status, received = stream(serve, "/build/gh/ops/code/HEAD", {"Cookie": value})
    assert status == 200 and received[-1]["phase"] == "ready"
    # The session itself needs only its token.
    assert (
        get(
            serve,
            f"{urllib.parse.urlsplit(received[-1]['url']).path}api/status",
            {"Authorization": f"token {received[-1]['token']}"},
        ).status
        == 200
    )
    forged = value.rsplit(".", 1)[0] + ".0000"
    assert get(serve, "/", {"Cookie": forged}).status == 302
    # 1,000 wrong codes from one address: ten are checked, the rest wait; others are not held up.
    statuses = [
        post_form(serve, "/access", {"code": f"guess{n}"}, source="127.0.0.3").status
        for n in range(1000)
    ]
    assert statuses[:10] == [403] * 10 and set(statuses[10:]) == {429}
    assert post_form(serve, "/access", {"code": "sesame"}, source="127.0.0.3").status == 429
    assert post_form(serve, "/access", {"code": "sesame"}).status == 302


def test_typos_lock_out_one_browser_not_the_room(serve_with):
    """#22 item 7: wrong codes count per browser (its anonymous cookie); the address has a
    ceiling sized for a room."""
    from minibinder.identity import hash_code

    serve = serve_with(
        access="code",
        access_code_hash=hash_code("sesame"),
        access_code_attempts=3,
        access_code_attempts_per_address=5,
    )

    def browser(source):
        page = get(serve, "/access", source=source)
        return page.getheader("Set-Cookie").split(";", 1)[0]

    careless, careful = browser("127.0.0.4"), browser("127.0.0.4")  # one classroom address
    statuses = [
        post_form(serve, "/access", {"code": f"typo{n}"}, "127.0.0.4", careless).status
        for n in range(4)
    ]
    assert statuses == [403, 403, 403, 429]
    assert post_form(serve, "/access", {"code": "sesame"}, "127.0.0.4", careless).status == 429
    # The careful student behind the same address gets in.
    assert post_form(serve, "/access", {"code": "sesame"}, "127.0.0.4", careful).status == 302
    # Past the room's ceiling (5 wrong codes from the address), everyone there waits.
    assert post_form(serve, "/access", {"code": "typo"}, "127.0.0.4", careful).status == 403
    assert post_form(serve, "/access", {"code": "typo"}, "127.0.0.4", careful).status == 403
    third = browser("127.0.0.4")
    assert post_form(serve, "/access", {"code": "sesame"}, "127.0.0.4", third).status == 429


def test_a_lab_sign_in_proxy_names_the_user(serve_with, git_server):
    git_server.create("ops/header", {"README.md": "x"})
    serve = serve_with(
        access="header",
        trusted_proxies=["127.0.0.1"],
        auth_users=["alice"],
        auth_email_domains=["lab.example.edu"],
        admin_users=["bob"],
        max_sessions_per_client=1,
    )
    path = "/build/gh/ops/header/HEAD"
    status, received = stream(serve, path, {"X-Forwarded-User": "alice"})
    assert status == 200 and received[-1]["phase"] == "ready"
    status, received = stream(serve, path, {"X-Forwarded-User": "carol@lab.example.edu"})
    assert status == 200 and received[-1]["phase"] == "ready"
    refused = get(serve, path, {"X-Forwarded-User": "mallory"})
    assert refused.status == 403 and b"mallory may not launch here" in refused.body
    assert get(serve, path).status == 403  # nobody named
    spoofed = get(serve, path, {"X-Forwarded-User": "alice"}, source="127.0.0.2")
    assert spoofed.status == 403 and b"did not come through it" in spoofed.body
    # Per-user limits: alice has her one session, wherever she comes from.
    _, again = stream(serve, path, {"X-Forwarded-User": "alice", "X-Forwarded-For": "198.51.100.5"})
    assert again[-1]["phase"] == "failed" and "max_sessions_per_client" in again[-1]["message"]
    # An admin the proxy names opens the operator's pages without the token.
    admin = get(serve, "/admin/", {"X-Forwarded-User": "bob"}, port=serve.admin_port)
    assert admin.status == 200 and b"Sessions" in admin.body
    assert get(serve, "/admin/", {"X-Forwarded-User": "alice"}, port=serve.admin_port).status == 401
    users = [row["user"] for row in Store(serve.data_dir / "minibinder.sqlite").launches()]
    assert "alice" in users and "carol@lab.example.edu" in users


def serve_under_prefix(tmp_path, build_config, git_server, prefix="/binder", **settings):
    """`minibinder serve` with public_url naming a path; the caller stops it."""
    from ..support.serving import ServeProcess
    from .conftest import serve_config

    config_file = tmp_path / "minibinder.toml"
    serve = ServeProcess(
        config_file,
        tmp_path / "serve.log",
        prefix=prefix,
        tls_context=settings.pop("tls_context", None),
    )
    public = settings.pop("public_url", f"http://127.0.0.1:{serve.port}{prefix}/")
    serve_config(
        config_file,
        tmp_path / "data",
        build_config,
        git_server,
        public_url=public,
        admin_token=ADMIN_TOKEN,
        **settings,
    )
    serve.data_dir = tmp_path / "data"
    return serve.start()


def test_everything_lives_under_a_path_prefix(tmp_path, build_config, git_server):
    from ..support.jupyter import execute, start_kernel
    from ..support.serving import remove_test_sessions
    from ..support.sse import events

    git_server.create("ops/prefix", {"README.md": "x"})
    serve = serve_under_prefix(tmp_path, build_config, git_server)
    root = f"http://127.0.0.1:{serve.port}"
    try:
        home = urllib.request.urlopen(f"{serve.url}/").read().decode()
        assert 'href="/binder/static/' in home and 'action="/binder/' in home
        assert get(serve, "/").getheader("Location") == "/binder/"
        assert get(serve, "/versions").status == 404  # outside the prefix: only a pointer
        launch_page = urllib.request.urlopen(f"{serve.url}/v2/gh/ops/prefix/HEAD").read()
        assert b"/binder/build/gh/ops/prefix/HEAD" in launch_page
        ready = events(f"{serve.url}/build/gh/ops/prefix/HEAD")[-1]
        assert ready["url"].startswith(f"{root}/binder/user/")
        assert ready["binder_launch_host"] == f"{root}/binder/"
        session_path = urllib.parse.urlsplit(ready["url"]).path
        lab = get(serve, f"{session_path}lab?token={ready['token']}")
        assert lab.status in (200, 302)
        kernel = start_kernel(ready)
        assert (
            execute(ready, kernel, "import os; print(os.environ['BINDER_LAUNCH_HOST'])")["stdout"]
            == f"{root}/binder/\n"
        )
        page = get(serve, f"{session_path}lab", {"Authorization": f"token {ready['token']}"})
        assert page.status == 200 and b"/binder/static/session_notice.js" in page.body
        assert f'"baseUrl": "{session_path}"'.encode() in page.body.replace(b"'", b'"')
        # The operator's pages: under the prefix, with their cookie scoped to it.
        admin = get(serve, f"/binder/admin/?token={ADMIN_TOKEN}", port=serve.admin_port)
        assert admin.status == 302 and admin.getheader("Location") == "/binder/admin/"
        assert "Path=/binder/admin" in admin.getheader("Set-Cookie")
        overview = get(
            serve,
            "/binder/admin/",
            {"Authorization": f"Bearer {ADMIN_TOKEN}"},
            port=serve.admin_port,
        )
        assert ready["url"].encode() in overview.body
    finally:
        serve.stop()
        remove_test_sessions(build_config.image_prefix)


@pytest.mark.parametrize(("public_url", "message"), [
    ("https://lab.example.edu/binder", "a path must end with /"),
    ("lab.example.edu/binder/", "expected an http(s) URL"),
    ("https://lab.example.edu/binder/?x=1", "no query or fragment"),
    ("https://lab.example.edu/a/../b/", "is not a plain path"),
])  # fmt: skip
def test_bad_public_urls_are_named(public_url, message):
    from minibinder.errors import ConfigError
    from minibinder.settings_load import load_config

    with pytest.raises(ConfigError, match=f"public_url: .*{re.escape(message)}"):
        load_config(overrides={"public_url": public_url})


def test_behind_nginx_with_tls_and_a_prefix(tmp_path, build_config, git_server):

    from ..support.nginx import Nginx
    from ..support.serving import ServeProcess, remove_test_sessions
    from ..support.tls import make_certificates
    from .conftest import serve_config

    certs = make_certificates(tmp_path / "tls")
    git_server.create("ops/nginx", {"README.md": "x"})
    serve = ServeProcess(tmp_path / "minibinder.toml", tmp_path / "serve.log", prefix="/binder")
    proxy = Nginx(tmp_path / "nginx", serve.port, certs)
    serve_config(
        tmp_path / "minibinder.toml",
        tmp_path / "data",
        build_config,
        git_server,
        public_url=f"https://127.0.0.1:{proxy.port}/binder/",
        allowed_hosts=[f"127.0.0.1:{serve.port}"],  # the test's own direct look
        trusted_proxies=["127.0.0.1"],
    )
    serve.data_dir = tmp_path / "data"
    serve.start()
    proxy.start()
    try:
        # The BinderHub JavaScript client through nginx: TLS, the prefix, a kernel WebSocket.
        report = binder_client_cell(proxy.url, "gh/ops/nginx/HEAD", certs.ca)
        assert report["output"] == "42\n"
        assert report["ready"]["url"].startswith(f"https://127.0.0.1:{proxy.port}/binder/user/")
        # A real browser launches through nginx's launch page and talks to a kernel.
        assert cell_in_the_browser(tmp_path, f"{proxy.url}/v2/gh/ops/nginx/HEAD") == "https: 42"
        # The launch log records the browser's address, as nginx forwarded it.
        connection = http.client.HTTPSConnection(
            "127.0.0.1",
            proxy.port,
            timeout=300,
            context=certs.client_context(),
            source_address=("127.0.0.2", 0),
        )
        connection.request("GET", "/binder/build/gh/ops/nginx/HEAD")
        body = connection.getresponse().read().decode()
        assert '"phase": "ready"' in body
        clients = [
            row["client_ip"] for row in Store(serve.data_dir / "minibinder.sqlite").launches()
        ]
        assert "127.0.0.2" in clients
    finally:
        proxy.stop()
        serve.stop()
        remove_test_sessions(build_config.image_prefix)


def test_behind_a_sign_in_proxy_that_names_the_user(tmp_path, build_config, git_server):
    import base64

    from ..support.nginx import Nginx
    from ..support.serving import ServeProcess, remove_test_sessions
    from ..support.tls import make_certificates
    from .conftest import serve_config

    certs = make_certificates(tmp_path / "tls")
    git_server.create("ops/basic", {"README.md": "x"})
    serve = ServeProcess(tmp_path / "minibinder.toml", tmp_path / "serve.log", prefix="/binder")
    proxy = Nginx(
        tmp_path / "nginx", serve.port, certs, users={"alice": "wonderland", "mallory": "guess"}
    )
    serve_config(
        tmp_path / "minibinder.toml",
        tmp_path / "data",
        build_config,
        git_server,
        public_url=f"https://127.0.0.1:{proxy.port}/binder/",
        allowed_hosts=[f"127.0.0.1:{serve.port}"],
        trusted_proxies=["127.0.0.1"],
        access="header",
        auth_users=["alice"],
    )
    serve.data_dir = tmp_path / "data"
    serve.start()
    proxy.start()

    def through_nginx(user: str, password: str, extra: dict | None = None):
        connection = http.client.HTTPSConnection(
            "127.0.0.1", proxy.port, timeout=300, context=certs.client_context()
        )
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers = {"Authorization": f"Basic {credentials}", **(extra or {})}
        connection.request("GET", "/binder/build/gh/ops/basic/HEAD", headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode()

    try:
        status, body = through_nginx("alice", "wonderland")
        assert status == 200 and '"phase": "ready"' in body
        status, body = through_nginx("mallory", "guess")
        assert status == 403 and "mallory may not launch here" in body
        # A user cannot name somebody else: nginx sets the header from who signed in.
        status, body = through_nginx("mallory", "guess", {"X-Forwarded-User": "alice"})
        assert status == 403 and "mallory may not launch here" in body
        assert through_nginx("alice", "wrong")[0] == 401  # nginx's own refusal
        users = [row["user"] for row in Store(serve.data_dir / "minibinder.sqlite").launches()]
        assert users == ["alice"]
    finally:
        proxy.stop()
        serve.stop()
        remove_test_sessions(build_config.image_prefix)


def test_minibinder_in_a_container_launches_a_session(tmp_path, build_config, git_server):
    """deploy/Dockerfile, built from this checkout's wheel on the same Debian base the tests
    bootstrap, run as deploy/compose.yaml runs it (host network, the Docker socket)."""
    import docker as docker_sdk

    from ..support.deploy_image import build_minibinder_image
    from ..support.gitserver import free_port
    from ..support.serving import remove_test_sessions, write_config
    from ..support.sse import events

    ca = build_config.extra_ca_file
    tag = f"{build_config.image_prefix}minibinder-itself:test"
    build_minibinder_image(tmp_path, tag, ca)
    sdk = docker_sdk.from_env()
    port = free_port()
    git_server.create("ops/container", {"README.md": "x"})
    settings = write_config(
        tmp_path / "minibinder.toml",
        Path("/var/lib/minibinder"),
        bind=f"127.0.0.1:{port}",
        admin_bind=f"127.0.0.1:{free_port()}",
        image_prefix=build_config.image_prefix,
        allowed_clone_schemes=["https", "git"],
        internal_hosts=["127.0.0.1"],
        github_url=git_server.base_url,
        extra_ca_file="/usr/local/share/ca-certificates/extra-ca.crt" if ca else "",
        egress_filter="off",  # the tests' own rules stay the host's business here
    )
    container = sdk.containers.run(
        tag,
        detach=True,
        network_mode="host",
        volumes={
            "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
            str(tmp_path / "data"): {"bind": "/var/lib/minibinder", "mode": "rw"},
            str(settings): {"bind": "/etc/minibinder/minibinder.toml", "mode": "ro"},
        },
        environment={"MINIBINDER_CONFIG": "/etc/minibinder/minibinder.toml"},
        name=f"minibinder-itself-{port}",
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/versions", timeout=2).read()
                break
            except OSError:
                container.reload()
                if time.monotonic() > deadline or container.status == "exited":
                    raise AssertionError(container.logs().decode()[-3000:]) from None
                time.sleep(0.5)
        ready = events(f"{url}/build/gh/ops/container/HEAD")[-1]
        assert ready["phase"] == "ready", (ready, container.logs().decode()[-2000:])
        status = urllib.request.urlopen(
            urllib.request.Request(
                f"{ready['url']}api/status", headers={"Authorization": f"token {ready['token']}"}
            ),
            timeout=30,
        ).status
        assert status == 200
    finally:
        container.remove(force=True)
        remove_test_sessions(build_config.image_prefix)
