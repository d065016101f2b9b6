"""The proxy: minibinder vs. a direct connection to the same backend, vs. configurable-http-proxy
(npm) and nginx (Debian), in one run. HTTP load comes from wrk (Debian's, a C client, so the
client is never the bottleneck): added p50 latency at c=1, requests/s at c=1, c=10 and c=50,
1 MB responses at c=10 (requests/s, p99); the WebSocket echo round trip (Python client); and
1,000 WebSockets held at once through minibinder and through CHP, with the errors and each
proxy's resident memory (all its processes) while they are held; and a workshop: 40 sessions,
each with a client polling api/kernels, api/sessions and api/contents every 2 s and executing a
small cell (a WebSocket message and its answer) every 2 s, through minibinder and through CHP,
with each proxy's CPU use and the clients' p99.

Usage: python -m bench.proxy   (installs wrk, nginx and configurable-http-proxy if missing)
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import websocket

from minibinder.store import Store
from tests.support.gitserver import free_port
from tests.support.serving import ServeProcess, write_config
from tests.support.session_backends import SessionBackend

from .common import ROOT, percentile, wait_http

SESSION = "a" * 16
PREFIX = f"/user/{SESSION}"


def ws_round_trips(host: str, port: int, count: int) -> list[float]:
    ws = websocket.create_connection(f"ws://{host}:{port}{PREFIX}/ws", timeout=10)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        ws.send("ping")
        ws.recv()
        samples.append(time.perf_counter() - started)
    ws.close()
    return samples


def _tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending += children.get(current, [])
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds used so far by a process and its descendants."""
    total = 0.0
    for each in _tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants."""
    total = 0
    for each in _tree(pid):
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def wrk(url: str, connections: int, seconds: int = 5) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of `connections` keep-alive connections for `seconds`."""
    threads = max(1, min(2, connections))
    done = subprocess.run(
        [
            "wrk",
            "--latency",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rate, found = 0.0, {}
    for line in done.stdout.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            rate = float(words[1])
        elif len(words) == 2 and words[0] in ("50%", "99%"):
            found[words[0]] = _milliseconds(words[1])
    return rate, found.get("50%", 0.0), found.get("99%", 0.0)


def _milliseconds(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def ensure_wrk() -> None:
    if not shutil.which("wrk"):
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"],
            check=True,
            env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )


def many_websockets(port: int, count: int, pid: int | None = None) -> tuple[int, int]:
    """Open `count` WebSockets at once from ten loopback addresses, echo on each, close them:
    (errors, resident bytes of `pid`'s processes while all are open)."""
    sockets, errors, failed_in_a_row = [], 0, 0
    for index in range(count):
        if failed_in_a_row == 5:  # the proxy has no room left: the rest would fail the same way
            errors += count - index
            break
        try:
            # From ten client addresses, 100 each: one address may hold 256 per worker
            # (max_connections_per_client), and a room is more than one address.
            source = (f"127.0.0.{10 + index % 10}", 0)
            sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=source)
            sockets.append(
                websocket.create_connection(
                    f"ws://127.0.0.1:{port}{PREFIX}/ws", timeout=5, socket=sock
                )
            )
            failed_in_a_row = 0
        except Exception:
            errors += 1
            failed_in_a_row += 1
    for ws in sockets:
        try:
            ws.send("x")
            errors += ws.recv() != "x"
        except Exception:
            errors += 1
    rss = tree_rss(pid) if pid else 0
    for ws in sockets:
        ws.close()
    return errors, rss


class Student(threading.Thread):
    """One workshop participant's browser: every 2 s, JupyterLab's three polls on a kept-alive
    connection and one small cell (a message on the kernel's WebSocket and its answer)."""

    def __init__(self, port: int, session: str, until: float):
        super().__init__(daemon=True)
        self.port, self.session, self.until = port, session, until
        self.latencies: list[float] = []
        self.errors = 0

    def run(self) -> None:
        prefix = f"/user/{self.session}"
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            ws = websocket.create_connection(f"ws://127.0.0.1:{self.port}{prefix}/ws", timeout=10)
        except Exception:
            self.errors += 1
            return
        while time.monotonic() < self.until:
            started_round = time.monotonic()
            for path in ("api/kernels", "api/sessions", "api/contents"):
                started = time.perf_counter()
                try:
                    connection.request("GET", f"{prefix}/{path}")
                    response = connection.getresponse()
                    response.read()
                    self.errors += response.status != 200
                except Exception:
                    self.errors += 1
                    connection.close()
                self.latencies.append(time.perf_counter() - started)
            started = time.perf_counter()
            try:
                ws.send('{"code": "1 + 1"}')
                ws.recv()
            except Exception:
                self.errors += 1
            self.latencies.append(time.perf_counter() - started)
            time.sleep(max(0.0, 2.0 - (time.monotonic() - started_round)))
        ws.close()
        connection.close()


def workshop(port: int, sessions: list[str], pid: int, seconds: int = 30) -> dict:
    """The workshop's load through the proxy on `port` (process `pid` and its children):
    the clients' p99 and requests, their errors, and the proxy's CPU use (% of one core)."""
    until = time.monotonic() + seconds
    students = [Student(port, session, until) for session in sessions]
    cpu_before, started = cpu_seconds(pid), time.monotonic()
    for student in students:
        student.start()
        time.sleep(2.0 / len(students))  # spread over the 2 s period, as people are
    for student in students:
        student.join(seconds + 30)
    cpu = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - started) * 100
    latencies = [value for student in students for value in student.latencies]
    return {
        "p99": percentile(latencies, 0.99) * 1000,
        "p50": percentile(latencies, 0.5) * 1000,
        "requests": len(latencies),
        "errors": sum(s.errors for s in students),
        "cpu": cpu,
    }


def add_chp_route(api_port: int, token: str, session: str, target: str) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{api_port}/api/routes/user/{session}",
        data=json.dumps({"target": f"http://{target}"}).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).read()


CHP_TOKEN = secrets.token_hex(16)


def start_chp(backend: str, folder: Path) -> tuple[subprocess.Popen, int]:
    node_dir = ROOT / "bench" / "node"
    if not (node_dir / "node_modules" / ".bin" / "configurable-http-proxy").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=node_dir, check=True
        )
    port = free_port()
    start_chp.api_port = free_port()  # type: ignore[attr-defined]
    process = subprocess.Popen(
        [
            str(node_dir / "node_modules" / ".bin" / "configurable-http-proxy"),
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--api-port",
            str(start_chp.api_port),  # type: ignore[attr-defined]
            "--default-target",
            f"http://{backend}",
            "--log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "chp.log").open("w"),
        env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": CHP_TOKEN},
    )
    wait_http(f"http://127.0.0.1:{port}{PREFIX}/hello", 30)
    return process, port


def start_nginx(backend: str, folder: Path) -> tuple[subprocess.Popen, int]:
    if not shutil.which("nginx"):
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx"],
            check=True,
            env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
    port = free_port()
    (folder / "logs").mkdir(exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(f"""
worker_processes 2;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/logs/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {folder}/body;
  proxy_temp_path {folder}/proxy;
  upstream backend {{ server {backend}; keepalive 64; }}
  map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_read_timeout 3600s;
    }}
  }}
}}
""")
    process = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{port}{PREFIX}/hello", 30)
    return process, port


def measure(name: str, port: int, host: str = "127.0.0.1") -> dict:
    small = f"http://{host}:{port}{PREFIX}/hello"
    big = f"http://{host}:{port}{PREFIX}/big?size={1 << 20}"
    rps1, p50, _ = wrk(small, 1)
    rps10, _, _ = wrk(small, 10)
    rps50, _, p99_50 = wrk(small, 50)
    big_rps, _, big_p99 = wrk(big, 10)
    return {
        "name": name,
        "p50": p50,
        "rps1": rps1,
        "rps10": rps10,
        "rps50": rps50,
        "p99_50": p99_50,
        "big_rps": big_rps,
        "big_p99": big_p99,
        "ws_p50": percentile(ws_round_trips(host, port, 2000), 0.5) * 1000,
    }


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="worker processes of minibinder")
    parser.add_argument("--sessions", type=int, default=40, help="sessions in the workshop")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="minibinder-bench-proxy-"))
    ensure_wrk()
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))  # 1,000 WebSockets and more
    processes = []
    backend = SessionBackend(folder / "data", SESSION, "bench")
    backend.add_route(Store(folder / "data" / "minibinder.sqlite"), last_activity=time.time())
    config = write_config(
        folder / "minibinder.toml",
        folder / "data",
        threads=256,
        workers=args.workers,
        idle_timeout=86400,
        cull_interval=3600,
        max_streams_per_client=100000,
    )
    store = Store(folder / "data" / "minibinder.sqlite")
    students = [
        SessionBackend(folder / "data", f"{index:016x}", f"s{index}")
        for index in range(1, args.sessions + 1)
    ]
    for student in students:
        student.add_route(store, last_activity=time.time())
    serve = ServeProcess(config, folder / "serve.log").start()
    try:
        chp, chp_port = start_chp(backend.target, folder)
        nginx, nginx_port = start_nginx(backend.target, folder)
        processes += [chp, nginx]
        backend_host, backend_port = backend.target.rsplit(":", 1)
        rows = [
            measure("direct", int(backend_port), backend_host),
            measure("minibinder", serve.port),
            measure("configurable-http-proxy", chp_port),
            measure("nginx", nginx_port),
        ]
        held = many_websockets(serve.port, 1000, serve.process.pid)
        held_chp = many_websockets(chp_port, 1000, chp.pid)
        for student in students:
            add_chp_route(start_chp.api_port, CHP_TOKEN, student.session_id, student.target)  # type: ignore[attr-defined]
        sessions = [student.session_id for student in students]
        room = workshop(serve.port, sessions, serve.process.pid)
        room_chp = workshop(chp_port, sessions, chp.pid)
    finally:
        for process in processes:
            process.terminate()
        serve.stop()
        backend.remove()
        for student in students:
            student.remove()
    direct, mini, chp_row = rows[0], rows[1], rows[2]
    print(f"minibinder with {args.workers} worker(s); load from wrk, 5 s per line")
    print(
        f"{'':<24} {'p50 c=1':>9} {'req/s c=1':>10} {'c=10':>8} {'c=50':>8} {'p99 c=50':>9} "
        f"{'1MB req/s':>10} {'1MB p99':>9} {'WS rtt':>8}"
    )
    for row in rows:
        print(
            f"{row['name']:<24} {row['p50']:>7.3f}ms {row['rps1']:>10.0f} {row['rps10']:>8.0f} "
            f"{row['rps50']:>8.0f} {row['p99_50']:>7.2f}ms {row['big_rps']:>10.0f} "
            f"{row['big_p99']:>7.2f}ms {row['ws_p50']:>6.3f}ms"
        )

    def versus(key: str) -> str:
        return f"{mini[key] / chp_row[key]:.2f}x" if chp_row[key] else "n/a"

    print("targets (#10), minibinder vs configurable-http-proxy:")
    print(
        f"  added p50 at c=1        : {mini['p50'] - direct['p50']:+.3f} ms vs "
        f"{chp_row['p50'] - direct['p50']:+.3f} ms (target <=)"
    )
    print(
        f"  req/s c=1, c=10, c=50   : {versus('rps1')}, {versus('rps10')}, {versus('rps50')}"
        " (target >= 1.0x each)"
    )
    print(
        f"  1 MB req/s, p99         : {versus('big_rps')}, {mini['big_p99']:.1f} ms vs "
        f"{chp_row['big_p99']:.1f} ms (target >= 1.0x, <=)"
    )
    print(
        f"  WebSocket rtt added     : {mini['ws_p50'] - direct['ws_p50']:+.3f} ms vs "
        f"{chp_row['ws_p50'] - direct['ws_p50']:+.3f} ms (target <=)"
    )
    print(
        f"  1,000 WebSockets held   : minibinder {held[0]} errors, {held[1] / 2**20:.0f} MiB RSS;"
        f" CHP {held_chp[0]} errors, {held_chp[1] / 2**20:.0f} MiB RSS (target 0 errors)"
    )
    print(
        f"  workshop, {len(sessions)} sessions   : minibinder CPU {room['cpu']:.0f}%, p50 "
        f"{room['p50']:.2f} ms, p99 {room['p99']:.2f} ms, {room['requests']} requests, "
        f"{room['errors']} errors;"
    )
    print(
        f"{'':<28}CHP CPU {room_chp['cpu']:.0f}%, p50 {room_chp['p50']:.2f} ms, p99 "
        f"{room_chp['p99']:.2f} ms, {room_chp['requests']} requests, {room_chp['errors']} "
        "errors (CPU: % of one core)"
    )


if __name__ == "__main__":
    main()
