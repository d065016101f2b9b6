"""A git server on a private address, as a lab's internal one would be: smart HTTP (`git
http-backend`, githttp.GitHttpServer) for a GitServer's bare repositories, run inside a network
namespace of the test's own (netprobe.PrivateNamespace). Sessions never reach the host, but an
operator's `egress_allow` lets them reach an address like this one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .netprobe import PrivateNamespace

# A /30 of its own: the egress tests' listener uses 10.231.94.0/30 and may run at the same time.
HOST_SIDE, ADDRESS = "10.231.95.1", "10.231.95.2"
TESTS_ROOT = Path(__file__).resolve().parents[2]
SERVE = """\
import sys, threading
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.support.githttp import GitHttpServer
server = GitHttpServer(Path(sys.argv[2]), sys.argv[3])
print(server.port, flush=True)
threading.Event().wait()
"""


class PrivateGitServer:
    """`with PrivateGitServer(git_server.root) as served:` serves `served.url("owner/name")`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.network = PrivateNamespace(HOST_SIDE, ADDRESS)
        self.process: subprocess.Popen | None = None
        self.port = 0

    def __enter__(self) -> PrivateGitServer:
        self.network.__enter__()
        self.process = self.network.run(
            [sys.executable, "-c", SERVE, str(TESTS_ROOT), str(self.root), ADDRESS],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        return self

    def url(self, path: str) -> str:
        return f"http://{ADDRESS}:{self.port}/{path}"

    def __exit__(self, *exc: object) -> None:
        if self.process:
            self.process.kill()
            self.process.wait()
        self.network.__exit__(*exc)
