"""Container engines besides the host's rootful Docker, for tests (issue 20).

Each engine is reached through the Docker API with the Docker SDK, as minibinder reaches any:

- ``docker``: the host's rootful daemon (scripts/ensure-docker.sh), the baseline.
- ``docker-rootless``: dockerd-rootless.sh as an unprivileged user
  (scripts/ensure-rootless-docker.sh).
- ``podman``: rootful ``podman system service`` (scripts/ensure-podman.sh).
- ``podman-rootless``: the same service run by an unprivileged user
  (scripts/ensure-podman.sh --rootless).

``ensure(name, images)`` starts the engine when it does not answer (a running one is reused),
copies the images from the root daemon, and returns an ``Engine``. Everything a test creates
carries the label ``LABEL`` with a value of its own, and ``remove_labelled`` removes it.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.types import Ulimit

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
API_VERSION = "1.41"  # what minibinder's SDK asks for; Podman 4.3's compat API answers 1.41
LABEL = "minibinder.test.engines"
ROOT_DOCKER_HOST = "unix:///var/run/docker.sock"

# name -> (command that ensures it, rootless, podman)
_ENGINES: dict[str, tuple[list[str], bool, bool]] = {
    "docker": ([str(SCRIPTS / "ensure-docker.sh")], False, False),
    "docker-rootless": ([str(SCRIPTS / "ensure-rootless-docker.sh")], True, False),
    "podman": ([str(SCRIPTS / "ensure-podman.sh")], False, True),
    "podman-rootless": ([str(SCRIPTS / "ensure-podman.sh"), "--rootless"], True, True),
}
NAMES = tuple(_ENGINES)


@dataclass(frozen=True)
class Engine:
    name: str
    docker_host: str
    rootless: bool
    podman: bool

    def client(self, timeout: int = 120) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.docker_host, version=API_VERSION, timeout=timeout)

    def image(self, name: str) -> str:
        """The name the engine lists an image under that was loaded as `name`: Podman puts an
        unqualified name under localhost/ (it also finds it by the short name)."""
        if self.podman and "/" not in name.split(":")[0]:
            return f"localhost/{name}"
        return name

    def socket_path(self) -> str:
        return self.docker_host.removeprefix("unix://")

    def daemon_pids(self) -> list[int]:
        """The engine's own processes on this host (for the namespaces and limits they hold)."""
        owner = os.stat(self.socket_path()).st_uid
        if self.podman:
            pattern = ["-f", f"^[^ ]*podman system service --time=0 {re.escape(self.docker_host)}$"]
        else:
            pattern = ["-x", "dockerd"]
        listed = subprocess.run(
            ["pgrep", "-u", str(owner), *pattern], capture_output=True, text=True
        ).stdout
        pids = [int(pid) for pid in listed.split()]
        if self.podman:
            return pids
        # Other dockerds of the same user may run (a test swarm's, in namespaces of their own):
        # this engine's is the one listening where DOCKER_HOST points.
        return [pid for pid in pids if _dockerd_host(pid) == self.docker_host]

    def bridge_network_namespace(self) -> str:
        """The network namespace that holds the engine's container bridge ("net:[inode]"):
        the host's for rootful engines; rootless Docker's is its dockerd's (rootlesskit's
        child); rootless Podman's is the rootless-netns it makes while a container on a bridge
        network runs (under $XDG_RUNTIME_DIR/netns)."""
        if self.podman and self.rootless:
            runtime_dir = Path(self.socket_path()).parents[1]
            (held,) = runtime_dir.glob("netns/rootless-netns-*")
            return f"net:[{os.stat(held).st_ino}]"
        return os.readlink(f"/proc/{self.daemon_pids()[-1]}/ns/net")

    def hard_limits(self) -> dict[str, int]:
        """The hard nofile and nproc limits of the engine's service process: runc can set a
        container's limits only up to these where root lacks CAP_SYS_RESOURCE (this host)."""
        text = Path(f"/proc/{self.daemon_pids()[-1]}/limits").read_text()
        found = {}
        for key, line_start in (("nofile", "Max open files"), ("nproc", "Max processes")):
            line = next(line for line in text.splitlines() if line.startswith(line_start))
            found[key] = int(line[len(line_start) :].split()[1])
        return found

    def run_defaults(self) -> dict:
        """Keyword arguments every container needs on this engine to start at all.

        Rootful Podman 4.3 writes nofile=1048576 into the OCI config unless told otherwise (and
        nproc=1048576 when only nofile is given); root here may not raise a hard limit (no
        CAP_SYS_RESOURCE), so runc fails: "error setting rlimit type 7 / 6: operation not
        permitted". Both, within the service's own hard limits, start."""
        if self.podman and not self.rootless:
            limits = self.hard_limits()
            return {
                "ulimits": [
                    Ulimit(name="nofile", soft=limits["nofile"], hard=limits["nofile"]),
                    Ulimit(name="nproc", soft=limits["nproc"], hard=limits["nproc"]),
                ]
            }
        return {}


def ensure(name: str, images: tuple[str, ...] = (), timeout: float = 600) -> Engine:
    """Starts engine `name` unless it answers, loads `images` from the root daemon into it."""
    command, rootless, podman = _ENGINES[name]
    # The scripts' own `docker` is the root daemon, whatever this process points at.
    env = {key: value for key, value in os.environ.items() if key != "DOCKER_HOST"}
    if name == "docker":
        subprocess.run(command, check=True, timeout=timeout, stdout=subprocess.DEVNULL, env=env)
        docker_host = ROOT_DOCKER_HOST
    else:
        done = subprocess.run(
            [*command, *images], capture_output=True, text=True, timeout=timeout, env=env
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
        docker_host = done.stdout.strip().splitlines()[-1]
    return Engine(name=name, docker_host=docker_host, rootless=rootless, podman=podman)


def remove_labelled(client: docker.DockerClient, value: str | None = None) -> list[str]:
    """Removes the containers and images that carry LABEL (=value, when given); returns what
    it removed."""
    selector = LABEL if value is None else f"{LABEL}={value}"
    removed = []
    for container in client.containers.list(all=True, filters={"label": selector}):
        container.remove(force=True)
        removed.append(f"container {container.name}")
    for image in client.images.list(filters={"label": selector}):
        client.images.remove(image.id, force=True)
        removed.append(f"image {image.tags or image.id}")
    return removed


def _dockerd_host(pid: int) -> str | None:
    """Where the dockerd `pid` listens: its last -H/--host, else dockerd's default socket."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return None
    host = "unix:///var/run/docker.sock"
    for index, argument in enumerate(arguments):
        if argument in ("-H", "--host") and index + 1 < len(arguments):
            host = arguments[index + 1]
        elif argument.startswith(("-H=", "--host=")):
            host = argument.split("=", 1)[1]
    return host
