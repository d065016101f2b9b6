"""Running it for real: behind a proxy the operator trusts, the client's address and scheme come
from its forwarding headers; from anybody else those headers are ignored."""

from __future__ import annotations

import http.client
import json

from minibinder.store import Store

from .conftest import launch

CLIENT = "198.51.100.23"  # a documentation address: only ever a header's text here


def stream(serve, path: str, headers: dict, source: str = "127.0.0.1") -> tuple[int, list]:
    connection = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=300,
                                            source_address=(source, 0))  # fmt: skip
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
    serve = serve_with(trusted_proxies=["127.0.0.1"], max_sessions_per_client=1)
    path = "/build/gh/ops/forwarded/HEAD"
    forwarded = {"X-Forwarded-For": f"6.6.6.6, {CLIENT}", "X-Forwarded-Proto": "https"}
    status, received = stream(serve, path, forwarded)
    assert status == 200 and received[-1]["phase"] == "ready"
    assert received[-1]["url"].startswith("https://")  # the scheme the browser used
    # Another forwarded client is another client for the per-client limits.
    _, other = stream(serve, path, {"X-Forwarded-For": "198.51.100.24"})
    assert other[-1]["phase"] == "ready"
    # The same client again is over its limit of one session.
    status, _ = stream(serve, path, forwarded)
    assert status == 429
    # From an address that is not a trusted proxy, forwarding headers mean nothing.
    claims = {"X-Forwarded-For": "198.51.100.99", "X-Forwarded-Proto": "https"}
    _, untrusted = stream(serve, path, claims, source="127.0.0.2")
    assert untrusted[-1]["url"].startswith("http://")
    # A trusted proxy sending nonsense gets a clear 400.
    status, _ = stream(serve, path, {"X-Forwarded-For": "<script>"})
    assert status == 400
    clients = [row["client_ip"] for row in
               Store(serve.data_dir / "minibinder.sqlite").launches()]  # fmt: skip
    assert clients.count(CLIENT) == 1 and "198.51.100.24" in clients and "127.0.0.2" in clients
    assert "6.6.6.6" not in clients and "198.51.100.99" not in clients


def test_forwarding_headers_are_ignored_without_trusted_proxies(serve_with, git_server):
    git_server.create("ops/plain", {"README.md": "x"})
    serve = serve_with()
    ready = launch(serve, "gh/ops/plain/HEAD")
    assert ready["url"].startswith("http://")
    _, received = stream(serve, "/build/gh/ops/plain/HEAD",
                         {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})  # fmt: skip
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
    assert "not a regular expression" in minibinder("stop", "--repo", "(",
                                                    config_file=config).stderr  # fmt: skip
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
    from ..serving import write_config
    from .test_cli import minibinder

    healthy = write_config(tmp_path / "ok.toml", tmp_path / "data",
                           github_url=git_server.base_url,
                           conda_channel_alias=git_server.base_url)  # fmt: skip
    result = minibinder("doctor", config_file=healthy)
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout
    for name in ("docker", "cgroup memory limits", "base image", "disk", "extra CA file",
                 "package index", "git provider"):  # fmt: skip
        assert any(line.startswith(f"ok    {name}:") for line in lines), (name, result.stdout)
    broken = write_config(tmp_path / "broken.toml", tmp_path / "data",
                          github_url="git://127.0.0.1:1", extra_ca_file=str(tmp_path / "no.pem"),
                          base_images={"3.11": "minibinder-test-no-such-base:1"})  # fmt: skip
    result = minibinder("doctor", config_file=broken)
    assert result.returncode == 1
    text = result.stdout
    assert "FAIL  base image: minibinder-test-no-such-base:1 is missing" in text
    assert "→ build it: minibinder base-image" in text
    assert f"FAIL  extra CA file: {tmp_path / 'no.pem'}" in text
    assert "FAIL  git provider: git://127.0.0.1:1 does not answer" in text
