"""A small HTTP + WebSocket backend standing in for a session's Jupyter in proxy tests."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# What the attacker's page of the security review did: read /admin, export the launch log,
# stop another session. Each outcome is written into the page for the test to read.
HOSTILE_PAGE = """<!doctype html><html><body><pre id="out"></pre><script>
const admin = ADMIN_URL;
const out = {};
async function attempt(name, url, options) {
  try {
    const response = await fetch(url, Object.assign({credentials: "include"}, options || {}));
    out[name] = response.status + " " + (await response.text()).slice(0, 200);
  } catch (error) { out[name] = "blocked: " + error.name; }
}
(async () => {
  await attempt("same-origin admin", "/admin/");
  await attempt("same-origin export", "/admin/launches.jsonl");
  await attempt("admin origin", admin + "/admin/");
  await attempt("admin export", admin + "/admin/launches.jsonl");
  const victim = location.pathname.split("/")[2];
  await attempt("admin stop", admin + "/admin/sessions/" + victim + "/stop", {method: "POST",
    headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "csrf=guess"});
  document.getElementById("out").textContent = JSON.stringify(out);
})();
</script></body></html>"""
# Session content trying to read another session through the user's browser.
NEIGHBOUR_PAGE = """<!doctype html><html><body><pre id="out"></pre><script>
const params = new URLSearchParams(location.search);
const out = {};
async function attempt(name, url) {
  try {
    const response = await fetch(url, {credentials: "include"});
    out[name] = response.status + " " + (await response.text()).slice(0, 200);
  } catch (error) { out[name] = "blocked: " + error.name; }
}
(async () => {
  await attempt("its own origin", params.get("url") + "api/contents");
  await attempt("this origin", params.get("path") + "api/contents");
  await attempt("main origin", params.get("main") + "api/contents");
  document.getElementById("out").textContent = JSON.stringify(out);
})();
</script></body></html>"""
SUBPROTOCOLS = ("v1.kernel.websocket.jupyter.org", "chat")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes: without this, Nagle's algorithm and delayed
    # ACKs add 40 ms to every small response, which would drown what the benchmarks measure.
    disable_nagle_algorithm = True

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/_requests":  # what it was asked so far, for tests
            return self.send_json(self.server.requests)
        if url.path == "/_peers":  # ... and on which connection (the proxy's source port)
            return self.send_json(self.server.peers)
        self.note()
        if self.headers.get("Upgrade", "").lower() == "websocket":
            if "/refuse" in url.path:  # as Jupyter answers a handshake with a wrong token
                self.send_response(403)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "7")
                self.end_headers()
                self.wfile.write(b"refused")
                return
            return self.websocket()
        if "/lab/huge" in url.path:  # a session page of any size, chunked: no Content-Length
            size = int(query["size"][0])
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            block = b"<p>" + b"x" * ((1 << 20) - 3)
            remaining = size
            while remaining:
                piece = block[: min(remaining, len(block))]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                remaining -= len(piece)
            self.wfile.write(b"0\r\n\r\n")
            return
        if url.path.endswith("/big"):
            size = int(query["size"][0])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            block = b"x" * (1 << 20)
            remaining = size
            while remaining:
                piece = block[: min(remaining, len(block))]
                self.wfile.write(piece)
                remaining -= len(piece)
            return
        if url.path.endswith("/headers"):
            body = json.dumps(
                {"headers": [[k, v] for k, v in self.headers.items()], "path": self.path}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "X-Backend-Hop")
            self.send_header("X-Backend-Hop", "secret")
            self.send_header("Keep-Alive", "timeout=5")
            prefix = "/".join(url.path.split("/")[:3]) + "/"  # /user/<id>/
            for cookie in (
                "a=1; Path=/",
                f"b=2; Path={prefix}",
                "c=3; Path=/admin",
                f"d=4; Domain=example.org; Path={prefix}",
                "e=5",
                f"f=6; path={prefix}lab; HttpOnly",
            ):
                self.send_header("Set-Cookie", cookie)
            self.end_headers()
            self.wfile.write(body)
            return
        if url.path.endswith("/hostile.html"):  # session content trying to reach the operator
            admin = query.get("admin", [""])[0]
            return self.send_page(HOSTILE_PAGE.replace("ADMIN_URL", json.dumps(admin)))
        if url.path.endswith("/neighbour.html"):  # ... and trying to read another session
            return self.send_page(NEIGHBOUR_PAGE)
        if url.path.endswith("/until-close"):  # a body that ends with the connection
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close"
                b"\r\n\r\nall of it, then the end"
            )
            self.close_connection = True
            return
        if url.path.endswith("/early-hints"):  # an interim answer before the real one
            self.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: </x.css>; rel=preload\r\n\r\n")
            return self.send_body(b"after the hints", "text/plain")
        if url.path.endswith("/status"):
            code = int(query.get("code", ["200"])[0])
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = f"hello from {self.server.name}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_page(self, html: str) -> None:
        self.send_body(html.encode(), "text/html; charset=utf-8")

    def note(self) -> None:
        self.server.requests.append(self.path)
        self.server.peers.append([self.path, self.client_address[1]])

    def do_POST(self):
        self.note()
        digest, count = hashlib.sha256(), 0
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                remaining = size
                while remaining:
                    data = self.rfile.read(min(remaining, 1 << 16))
                    digest.update(data)
                    count += len(data)
                    remaining -= len(data)
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length", "0"))
            while remaining:
                data = self.rfile.read(min(remaining, 1 << 16))
                digest.update(data)
                count += len(data)
                remaining -= len(data)
        body = json.dumps({"bytes": count, "sha256": digest.hexdigest()}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, value):
        self.send_body(json.dumps(value).encode(), "application/json")

    def send_body(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    # -- a minimal RFC 6455 echo server ---------------------------------------------------------

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        offered = [
            p.strip()
            for p in self.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        ]
        chosen = next((p for p in offered if p in SUBPROTOCOLS), None)
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        if chosen:
            self.send_header("Sec-WebSocket-Protocol", chosen)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            header = self.rfile.read(2)
            if len(header) < 2:
                return
            opcode, length = header[0] & 0x0F, header[1] & 0x7F
            if length == 126:
                length = struct.unpack(">H", self.rfile.read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if header[1] & 0x80 else b"\0\0\0\0"
            data = bytearray(self.rfile.read(length))
            for i in range(len(data)):
                data[i] ^= mask[i % 4]
            if opcode == 0x8:
                self.send_frame(0x8, bytes(data[:2]))
                return
            self.send_frame(0xA if opcode == 0x9 else opcode, bytes(data))

    def send_frame(self, opcode: int, payload: bytes):
        head = bytes([0x80 | opcode])
        if len(payload) < 126:
            head += bytes([len(payload)])
        elif len(payload) < 1 << 16:
            head += bytes([126]) + struct.pack(">H", len(payload))
        else:
            head += bytes([127]) + struct.pack(">Q", len(payload))
        self.wfile.write(head + payload)
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    request_queue_size = 1024  # as a real server's backlog; socketserver's default is 5


class Backend:
    def __init__(self, name: str, address: tuple[str, int] = ("127.0.0.1", 0)):
        self.server = Server(address, Handler)
        self.server.daemon_threads = True
        self.server.name = name
        self.server.requests = []
        self.server.peers = []
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def target(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    @property
    def requests(self) -> list[str]:
        return self.server.requests

    def __enter__(self) -> Backend:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":  # inside a container: python3 backend.py NAME PORT
    import sys

    backend = Backend(sys.argv[1], ("0.0.0.0", int(sys.argv[2])))
    backend.server.serve_forever()
