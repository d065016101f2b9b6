"""Git over real HTTP(S) on loopback, served by the test: `git http-backend` behind a small
http.server (the repositories of a `GitServer`), a redirector, and a listener that only counts
who connected. Every address here is one the test itself binds."""

from __future__ import annotations

import base64
import contextlib
import errno
import os
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from .tls import TestCertificates


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                handler.rfile.readline()
                return body
            body += handler.rfile.read(size)
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    # Never share a port with a listener another test has closed but whose accept() may still
    # be waking up: its connections would be answered by a reset.
    allow_reuse_address = False

    def __init__(self, address, handler, family=socket.AF_INET):
        self.address_family = family
        super().__init__(address, handler)


class _Served:
    """Common to the servers below: bound on (host, port), optionally TLS, peers recorded."""

    def __init__(self, handler, host: str, port: int, certs: TestCertificates | None) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.peers: list[str] = []
        self.paths: list[str] = []
        self.scheme = "https" if certs else "http"
        outer = self

        class Recording(handler):
            served = outer

            def handle(self) -> None:
                outer.peers.append(self.client_address[0])
                super().handle()

        self.server = _Server((host, port), Recording, family)
        if certs:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(certs.certificate), str(certs.key))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.host, self.port = host, self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str, host: str | None = None) -> str:
        name = host or self.host
        name = f"[{name}]" if ":" in name else name
        return f"{self.scheme}://{name}:{self.port}/{path.lstrip('/')}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Backend(BaseHTTPRequestHandler):
    served: GitHttpServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._backend(b"")

    def do_POST(self) -> None:
        self._backend(_read_body(self))

    def _backend(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        self.served.paths.append(parts.path)
        if not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.served.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
        }
        for header, name in (
            ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
            ("Git-Protocol", "GIT_PROTOCOL"),
        ):
            if self.headers.get(header):
                env[name] = self.headers[header]
        done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _authorized(self) -> bool:
        """Without `login`, everyone; with it, requests that send it (HTTP basic auth)."""
        login = self.served.login
        if login is None:
            return True
        given = self.headers.get("Authorization", "")
        self.served.authorizations.append(given)
        expected = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
        return given == f"Basic {expected}"


class GitHttpServer(_Served):
    """Smart HTTP(S) for the bare repositories under `root` (a GitServer's), on `host`.
    With `login` (user, password), every request must carry it as HTTP basic auth, as a
    private repository's host asks: 401 and a Basic challenge otherwise."""

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        certs: TestCertificates | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.root, self.login = root, login
        self.authorizations: list[str] = []  # the Authorization header of each request
        super().__init__(_Backend, host, port, certs)


class _Redirect(BaseHTTPRequestHandler):
    served: Redirector

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.served.paths.append(self.path)
        target = self.served.target
        _, found, rest = self.path.partition("/info/refs")
        location = target + "info/refs" + rest if found and self.served.keep_path else target
        self.send_response(self.served.status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET


class Redirector(_Served):
    """Answers every request with a redirect: git's first request below the repository to
    the same below `target` (`/x.git/info/refs?...` → `<target>info/refs?...`, as a renamed
    repository does; `target` ends in /), or (keep_path=False) to `target` as it is."""

    def __init__(
        self,
        target: str,
        host: str = "127.0.0.1",
        status: int = 301,
        certs: TestCertificates | None = None,
        keep_path: bool = True,
    ) -> None:
        self.target, self.status, self.keep_path = target, status, keep_path
        super().__init__(_Redirect, host, 0, certs)


class CountingListener:
    """Accepts on (host, port) and only records who connected; closes at once."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.peers: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer[0])
            connection.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the thread
        self.sock.close()


class Trap:
    """CountingListeners on one port of 127.0.0.1 and of ::1 (where the host has IPv6
    loopback): wherever the system resolver sends a connection to `localhost:<port>`, it is
    counted. `port` 0: any port free on both."""

    def __init__(self, port: int = 0) -> None:
        for _ in range(20):
            self.listeners = [CountingListener("127.0.0.1", port)]
            self.port = self.listeners[0].port
            try:
                self.listeners.append(CountingListener("::1", self.port))
                return
            except OSError as error:
                if error.errno == errno.EADDRNOTAVAIL:  # no IPv6 loopback: nothing to trap
                    return
                self.close()
                if port or error.errno != errno.EADDRINUSE:
                    raise
        raise RuntimeError("no port free on both 127.0.0.1 and ::1")

    @property
    def peers(self) -> list[str]:
        return [peer for listener in self.listeners for peer in listener.peers]

    def close(self) -> None:
        for listener in self.listeners:
            listener.close()
