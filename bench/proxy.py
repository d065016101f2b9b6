"""The proxy: minibinder vs. a direct connection to the same backend, vs. configurable-http-proxy
(npm) and nginx (Debian). HTTP latency p50/p99 (small and 1 MB responses), requests/s with 8
keep-alive clients, WebSocket echo round trip, and 200 WebSockets held at once.

Usage: python -m bench.proxy   (installs nginx and configurable-http-proxy if missing)
"""

from __future__ import annotations

import http.client
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import websocket

from minibinder.store import Store
from tests.gitserver import free_port
from tests.serving import ServeProcess, write_config
from tests.session_backends import SessionBackend

from .common import ROOT, percentile, wait_http

SESSION = "a" * 16
PREFIX = f"/user/{SESSION}"


def latencies(host: str, port: int, path: str, count: int) -> list[float]:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        samples.append(time.perf_counter() - started)
    connection.close()
    return samples


def throughput(host: str, port: int, path: str, clients: int = 8, seconds: float = 5.0) -> float:
    counts = [0] * clients
    stop = time.perf_counter() + seconds

    def run(index: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        while time.perf_counter() < stop:
            connection.request("GET", path)
            connection.getresponse().read()
            counts[index] += 1
        connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / seconds


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


def many_websockets(port: int, count: int) -> int:
    """Open `count` WebSockets at once, echo on each, close them; return the errors."""
    sockets, errors = [], 0
    for _ in range(count):
        try:
            sockets.append(
                websocket.create_connection(f"ws://127.0.0.1:{port}{PREFIX}/ws", timeout=20)
            )
        except Exception:
            errors += 1
    for ws in sockets:
        try:
            ws.send("x")
            errors += ws.recv() != "x"
        except Exception:
            errors += 1
    for ws in sockets:
        ws.close()
    return errors


def start_chp(backend: str, folder: Path) -> tuple[subprocess.Popen, int]:
    node_dir = ROOT / "bench" / "node"
    if not (node_dir / "node_modules" / ".bin" / "configurable-http-proxy").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=node_dir, check=True
        )
    port = free_port()
    process = subprocess.Popen(
        [
            str(node_dir / "node_modules" / ".bin" / "configurable-http-proxy"),
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--api-port",
            str(free_port()),
            "--default-target",
            f"http://{backend}",
            "--log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "chp.log").open("w"),
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
    small = latencies(host, port, f"{PREFIX}/hello", 2000)
    big = latencies(host, port, f"{PREFIX}/big?size={1 << 20}", 200)
    result = {
        "name": name,
        "small_p50": percentile(small, 0.5) * 1000,
        "small_p99": percentile(small, 0.99) * 1000,
        "big_p50": percentile(big, 0.5) * 1000,
        "big_p99": percentile(big, 0.99) * 1000,
        "rps": throughput(host, port, f"{PREFIX}/hello"),
        "ws_p50": percentile(ws_round_trips(host, port, 2000), 0.5) * 1000,
    }
    return result


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers of minibinder")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="minibinder-bench-proxy-"))
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
    )
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
        held = many_websockets(serve.port, 200)
    finally:
        for process in processes:
            process.terminate()
        serve.stop()
        backend.remove()
    direct = rows[0]
    print(f"minibinder with {args.workers} gunicorn worker(s)")
    print(
        f"{'':<24} {'p50 small':>10} {'p99 small':>10} {'p50 1MB':>9} {'p99 1MB':>9} "
        f"{'req/s':>8} {'WS rtt p50':>11}"
    )
    for row in rows:
        print(
            f"{row['name']:<24} {row['small_p50']:>8.3f}ms {row['small_p99']:>8.3f}ms "
            f"{row['big_p50']:>7.2f}ms {row['big_p99']:>7.2f}ms {row['rps']:>8.0f} "
            f"{row['ws_p50']:>9.3f}ms"
        )
    mini, chp_row = rows[1], rows[2]
    print(
        f"minibinder added p50 latency (small): {mini['small_p50'] - direct['small_p50']:.3f} ms"
        " (target <= 1 ms)"
    )
    print(
        f"minibinder WebSocket round-trip overhead: {mini['ws_p50'] - direct['ws_p50']:.3f} ms"
        " (target <= 0.5 ms)"
    )
    print(
        f"throughput minibinder / configurable-http-proxy: "
        f"{mini['rps'] / chp_row['rps']:.2f}x (target >= 1)"
    )
    print(f"200 concurrent WebSockets through minibinder: {held} errors (target 0)")


if __name__ == "__main__":
    main()
