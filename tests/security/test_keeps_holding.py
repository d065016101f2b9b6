"""Probes the attacker's-eye review saw refused, kept as regression tests against the real
service: request smuggling through the proxy, symbolic links in configuration files, apt.txt
injections, and a launched session's container hardening."""

from __future__ import annotations

import os
import socket
import time

import docker as docker_sdk
import pytest

from minibinder.store import Store

from ..support.serving import ServeProcess, write_config
from ..support.session_backends import SessionBackend
from ..support.sse import events

SESSION = "5a0995a0995a0995"
SMUGGLED = f"/user/{SESSION}/smuggled"
NEXT = f"GET {SMUGGLED} HTTP/1.1\r\nHost: HOST\r\n\r\n"

# Each: a request whose framing two HTTP parsers could read differently. The proxy must answer
# 400 (or close the connection) and the session must never see the smuggled request.
SMUGGLING = {
    "content-length and chunked": "POST /user/S/a HTTP/1.1\r\nHost: HOST\r\nContent-Length: 4"
    "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + NEXT,
    "chunked and content-length": "POST /user/S/a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: "
    "chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + NEXT,
    "two content-lengths": "POST /user/S/a HTTP/1.1\r\nHost: HOST\r\nContent-Length: 0\r\n"
    "Content-Length: 46\r\n\r\n" + NEXT,
    "a content-length list": "POST /user/S/a HTTP/1.1\r\nHost: HOST\r\nContent-Length: 0, 46"
    "\r\n\r\n" + NEXT,
    "negative content-length": "POST /user/S/a HTTP/1.1\r\nHost: HOST\r\nContent-Length: -1"
    "\r\n\r\n" + NEXT,
    "signed content-length": "POST /user/S/a HTTP/1.1\r\nHost: HOST\r\nContent-Length: +0"
    "\r\n\r\n" + NEXT,
    "hex content-length": "POST /user/S/a HTTP/1.1\r\nHost: HOST\r\nContent-Length: 0x0"
    "\r\n\r\n" + NEXT,
    "obs-fold transfer-encoding": "POST /user/S/a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: "
    "identity\r\n chunked\r\n\r\n0\r\n\r\n" + NEXT,
    "obs-fold header": "GET /user/S/a HTTP/1.1\r\nHost: HOST\r\nX-Folded: a\r\n b\r\n\r\n" + NEXT,
    "space before the colon": "POST /user/S/a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding : "
    "chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + NEXT,
    "unknown transfer-coding": "POST /user/S/a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: "
    "xchunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + NEXT,
    "chunked not last": "POST /user/S/a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked, "
    "identity\r\n\r\n0\r\n\r\n" + NEXT,
    "two transfer-encodings": "POST /user/S/a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: "
    "chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n" + NEXT,
    "chunk size overflow": "POST /user/S/a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked"
    "\r\n\r\nFFFFFFFFFFFFFFFFFFFF1\r\nx\r\n0\r\n\r\n" + NEXT,
    "chunk size not hex": "POST /user/S/a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked"
    "\r\n\r\n5g\r\nhello\r\n0\r\n\r\n" + NEXT,
    "a NUL in a header": "GET /user/S/a HTTP/1.1\r\nHost: HOST\r\nX-A: a\x00b\r\n\r\n" + NEXT,
}


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, docker):
    folder = tmp_path_factory.mktemp("smuggling")
    data = folder / "data"
    config = write_config(folder / "minibinder.toml", data, idle_timeout=86400, cull_interval=3600)
    backend = SessionBackend(data, SESSION, "recorder")
    backend.add_route(Store(data / "minibinder.sqlite"))
    serve = ServeProcess(config, folder / "serve.log").start()
    serve.backend = backend
    yield serve
    serve.stop()
    backend.remove()


def seen_by_session(serve) -> list[str]:
    return serve.backend.requests()  # asked of the backend directly, not through the proxy


def send_raw(serve, text: str) -> bytes:
    host = f"127.0.0.1:{serve.port}"
    payload = text.replace("/user/S/", f"/user/{SESSION}/").replace("HOST", host).encode()
    with socket.create_connection(("127.0.0.1", serve.port), timeout=10) as sock:
        sock.sendall(payload)
        received = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
    return received


@pytest.mark.parametrize("name", sorted(SMUGGLING))
def test_request_smuggling_is_refused(proxied, name):
    answer = send_raw(proxied, SMUGGLING[name])
    statuses = [
        line.split()[1]
        for line in answer.decode("latin-1").split("\r\n")
        if line.startswith("HTTP/1.")
    ]
    # One answer, a 400, and nothing after it: an unanswered request would pass otherwise.
    assert statuses == ["400"], (name, answer[:300])
    assert SMUGGLED not in seen_by_session(proxied), name


def test_symlinks_and_apt_injections_fail_with_the_file_named(serve_with, git_server):
    cases = {
        "sec/link-requirements": (
            {"requirements.txt": "/etc/passwd"},
            {},
            "requirements.txt is a symbolic link to outside",
        ),
        "sec/link-environment": (
            {"environment.yml": "/etc/hostname"},
            {},
            "environment.yml is a symbolic link to outside",
        ),
        "sec/link-binder": ({"binder": "/etc"}, {}, "binder/ is a symbolic link"),
        "sec/link-postbuild": (
            {"postBuild": "/bin/sh"},
            {},
            "postBuild is a symbolic link to outside",
        ),
        "sec/apt-semicolon": ({}, {"apt.txt": "curl; rm -rf /\n"}, "apt.txt line 1"),
        "sec/apt-substitution": ({}, {"apt.txt": "jq\n$(id)\n"}, "apt.txt line 2"),
    }
    serve = serve_with()
    for name, (links, files, message) in cases.items():
        repo = git_server.create(name, {"README.md": "x", **files})
        for link, target in links.items():
            os.symlink(target, repo.work / link)
        if links:
            repo.commit({}, "a symbolic link out of the repository")
        last = events(f"{serve.url}/build/gh/{name}/HEAD")[-1]
        assert last["phase"] == "failed" and message in last["message"], (name, last)


def test_a_launched_session_is_hardened(serve_with, git_server):
    git_server.create("sec/hardened", {"README.md": "x"})
    serve = serve_with()
    ready = events(f"{serve.url}/build/gh/sec/hardened/HEAD")[-1]
    session_id = ready["url"].rstrip("/").rsplit("/", 1)[1]
    sdk = docker_sdk.from_env()
    container = sdk.containers.list(filters={"label": f"minibinder.session={session_id}"})[0]
    host = container.attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert "no-new-privileges" in host["SecurityOpt"] and not host.get("Privileged")
    assert host["Memory"] > 0 and host["MemorySwap"] == host["Memory"]
    assert host["PidsLimit"] > 0 and host["NanoCpus"] > 0
    assert not host.get("PortBindings") and host.get("NetworkMode") != "host"
    assert not any("docker.sock" in bind for bind in host.get("Binds") or [])
    assert container.attrs["Config"]["User"] == "1000"
    status = container.exec_run(
        ["sh", "-c", "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status"], user="1000"
    ).output.decode()
    assert "CapEff:\t0000000000000000" in status and "NoNewPrivs:\t1" in status
    assert "Seccomp:\t2" in status  # Docker's default profile, filtering
