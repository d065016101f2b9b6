"""Listeners a test creates (never anybody else's addresses) and a probe that reports, from
inside a container, which of them it could reach.

- `HostListener`: a TCP listener in the test process on every host address, reached from a
  container through its bridge's gateway (the host's own services).
- `PrivateListener`: a TCP listener on a private address in a network namespace the test makes
  (`PrivateNamespace`), joined to the host by a veth pair: traffic to it is forwarded like
  traffic to a machine on the lab's private network.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

PRIVATE_HOST_SIDE, PRIVATE_ADDRESS = "10.231.94.1", "10.231.94.2"

# Runs inside a container: one line per target, "<host>:<port> reached|refused|timeout|<error>".
# "gateway" is the container's default gateway, read from /proc/net/route.
PROBE = r"""
import socket, struct, sys
def gateway():
    for line in open("/proc/net/route").read().splitlines()[1:]:
        fields = line.split()
        if fields[1] == "00000000":
            return socket.inet_ntoa(struct.pack("<L", int(fields[2], 16)))
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    host = gateway() if host == "gateway" else host
    try:
        socket.create_connection((host, int(port)), timeout=4).close()
        result = "reached"
    except ConnectionRefusedError:
        result = "refused"
    except socket.timeout:
        result = "timeout"
    except OSError as error:
        result = type(error).__name__
    print(f"probe {target} {result}", flush=True)
"""


def probe_results(output: str) -> dict[str, str]:
    found = {}
    for line in output.splitlines():
        parts = line.strip().split()
        if len(parts) == 3 and parts[0] == "probe":
            found[parts[1]] = parts[2]
    return found


class HostListener:
    """Accepts on 0.0.0.0:<port> and counts who connected."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
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
        # shutdown() first: close() alone leaves the accept() of the thread waiting (on Linux
        # and gVisor alike), and a listener that outlives its test resets connections meant
        # for the next test's servers.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class PrivateNamespace:
    """A network namespace holding `address`, joined to the host by a veth pair whose host end
    is `host_side` (a /30 of their own): traffic to `address` is forwarded like traffic to a
    machine on the lab's private network. `run(command)` starts a process inside it."""

    def __init__(self, host_side: str, address: str) -> None:
        tag = secrets.token_hex(3)
        self.namespace, self.host_end, self.far_end = f"mbt{tag}", f"mbt{tag}a", f"mbt{tag}b"
        self.host_side, self.address = host_side, address

    def __enter__(self) -> PrivateNamespace:
        ns = ["ip", "netns", "exec", self.namespace]
        for command in (
            ["ip", "netns", "add", self.namespace],
            ["ip", "link", "add", self.host_end, "type", "veth", "peer", "name", self.far_end],
            ["ip", "link", "set", self.far_end, "netns", self.namespace],
            ["ip", "addr", "add", f"{self.host_side}/30", "dev", self.host_end],
            ["ip", "link", "set", self.host_end, "up"],
            [*ns, "ip", "addr", "add", f"{self.address}/30", "dev", self.far_end],
            [*ns, "ip", "link", "set", self.far_end, "up"],
            [*ns, "ip", "route", "add", "default", "via", self.host_side],
        ):
            subprocess.run(command, check=True, capture_output=True)
        return self

    def run(self, command: list[str], **options) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.namespace, *command], **options)

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "link", "del", self.host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True)


class PrivateListener:
    """A listener on PRIVATE_ADDRESS, in a namespace of its own routed from the host."""

    def __init__(self, tmp_path: Path) -> None:
        self.network = PrivateNamespace(PRIVATE_HOST_SIDE, PRIVATE_ADDRESS)
        self.port = 18000 + secrets.randbelow(2000)
        self.log = tmp_path / f"{self.network.namespace}.peers"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> PrivateListener:
        self.network.__enter__()
        server = (
            "import socket,sys\ns=socket.socket()\n"
            "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            f"s.bind(({PRIVATE_ADDRESS!r},{self.port}));s.listen(16)\n"
            "while True:\n c,p=s.accept();open(sys.argv[1],'a').write(p[0]+'\\n');c.close()\n"
        )
        self.log.write_text("")
        self.process = self.network.run([sys.executable, "-c", server, str(self.log)])
        time.sleep(0.5)
        return self

    @property
    def target(self) -> str:
        return f"{PRIVATE_ADDRESS}:{self.port}"

    @property
    def peers(self) -> list[str]:
        return self.log.read_text().split()

    def __exit__(self, *exc: object) -> None:
        if self.process:
            self.process.kill()
            self.process.wait()
        self.network.__exit__(*exc)
