"""A Docker Swarm of three namespaced Docker daemons and a registry, on one machine (issue 23).

Privileged containers are refused on the test machines (no docker-in-docker), so each node is a
`dockerd` (with a `containerd` of its own) in a network namespace of its own, reached through
a veth pair on a bridge this module makes:

    host namespace ── bridge BRIDGE (SUBNET.1) ── veth ── netns mbsw-mgr (SUBNET.10, manager)
                                                  ├─ veth ── netns mbsw-w1  (SUBNET.11, worker)
                                                  └─ veth ── netns mbsw-w2  (SUBNET.12, worker)

The registry (Debian's `docker-registry`, a config of our own, no htpasswd) listens on the
bridge address; every node trusts it as an insecure registry. `minibinder serve` runs in the
host namespace with DOCKER_HOST at the manager's socket and reaches sessions at the nodes'
host-mode published ports over the bridge.

The daemons run with `nsenter --net=…`, not `ip netns exec` (which remounts /sys and hides the
cgroup mounts). The shared host daemon is never put into swarm mode.

The nodes share one filesystem, so what is one path on every real node (the engine's socket,
/var/run/docker.sock; its data, /var/lib/docker) is a path per node here: `by_node/<node ID>/`
holds `docker.sock` and `docker-data`, links to that node's own, for a service's mount to name
with the template `{{.Node.ID}}` (as the agent's global service does in test_swarm).

One cluster runs on a machine at a time: it holds a lock file (CLAIM) that names its folder.
A cluster whose test was killed (SIGKILL: no teardown) leaves its bridge, namespaces and
daemons behind; the next `start()` finds the lock free and the leftovers named in it, and
clears them first (its processes by their folder and cgroups, then mounts, links, the rule).

`stop()` leaves the host as it began: the swarm left, every daemon, containerd and shim this
cluster started ended (by pid), their mounts undone, the namespaces, veths, bridge and the one
FORWARD rule removed, the registry stopped and every file under the work folder deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import docker

from .gitserver import free_port

BRIDGE = "mbswbr0"
SUBNET = "10.231.7"
RULE = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"]
NODE_NAMES = ("mgr", "w1", "w2")
CLAIM = Path("/run/lock/minibinder-test-swarm.lock")


def _run(*command: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return done


def _cgroups(names: list[str]) -> list[Path]:
    """The cgroups under the top-level groups `names` (the nodes' cgroup parents), in every
    hierarchy: cgroup v1 has one per controller (<controller>/mbsw-…), v2 one (mbsw-…)."""
    root = Path("/sys/fs/cgroup")
    found = [*root.glob("*/mbsw-*/**/cgroup.procs"), *root.glob("mbsw-*/**/cgroup.procs")]
    return [tasks.parent for tasks in found if set(tasks.relative_to(root).parts[:2]) & set(names)]


def _cgroup_pids(names: list[str]) -> set[int]:
    pids: set[int] = set()
    for group in _cgroups(names):
        with contextlib.suppress(OSError):
            pids |= {int(pid) for pid in (group / "cgroup.procs").read_text().split()}
    return pids


def _kill(pids: set[int], timeout: float = 30) -> None:
    """SIGKILL each of `pids` and wait until they are gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:  # a zombie has ended: only its parent's wait() is missing
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@dataclass
class Node:
    name: str
    index: int
    folder: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def netns(self) -> str:
        return f"mbsw-{self.name}"

    @property
    def address(self) -> str:
        return f"{SUBNET}.{10 + self.index}"

    @property
    def host_veth(self) -> str:
        return f"mbswh{self.index}"

    @property
    def socket(self) -> Path:
        return self.folder / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def containerd_socket(self) -> Path:
        return self.folder / "containerd.sock"

    def client(self, timeout: int = 120) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.docker_host, version="1.41", timeout=timeout)

    def docker(self, *arguments: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        env = {**os.environ, "DOCKER_HOST": self.docker_host}
        return _run("docker", *arguments, check=check, env=env, **kwargs)

    def node_id(self) -> str:
        return self.client().info()["Swarm"]["NodeID"]


class SwarmCluster:
    """Three namespaced Docker daemons in one swarm (the first the manager) and a registry."""

    def __init__(self, folder: Path, heartbeat: str = "2s"):
        self.folder = folder
        self.heartbeat = heartbeat
        self.nodes = [Node(name, i, folder / name) for i, name in enumerate(NODE_NAMES)]
        self.registry_process: subprocess.Popen | None = None
        # Not 5000: Debian's docker-registry service may listen there on every address.
        self.registry_port = free_port()
        self._claim: IO[str] | None = None

    @property
    def manager(self) -> Node:
        return self.nodes[0]

    @property
    def workers(self) -> list[Node]:
        return self.nodes[1:]

    @property
    def registry(self) -> str:
        return f"{SUBNET}.1:{self.registry_port}"

    @property
    def by_node(self) -> Path:
        """`<node ID>/docker.sock` and `<node ID>/docker-data` under it: each node's own."""
        return self.folder / "by-node"

    # -- up ---------------------------------------------------------------------------------

    def start(self) -> SwarmCluster:
        self._claim_the_host()
        try:
            self._network()
            self._registry()
            for node in self.nodes:
                self._daemon(node)
            for node in self.nodes:
                self._wait_for(node)
            self._swarm()
        except BaseException:
            self.stop()
            raise
        return self

    def _claim_the_host(self) -> None:
        """Hold CLAIM for this cluster's life; clear what a killed cluster left behind."""
        CLAIM.parent.mkdir(parents=True, exist_ok=True)
        claim = open(CLAIM, "a+")  # noqa: SIM115 - held until stop()
        try:
            fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            claim.close()
            raise RuntimeError(f"another swarm test cluster runs here: {CLAIM}") from None
        claim.seek(0)
        previous = claim.read().strip()
        self._clear_leftovers(Path(previous) if previous else None)
        claim.seek(0)
        claim.truncate()
        claim.write(str(self.folder))
        claim.flush()
        self._claim = claim

    def _clear_leftovers(self, folder: Path | None) -> None:
        """End every process of a cluster (`folder`: its work folder, when known): those
        naming a file in it (daemons, containerds, shims, the registry), those in its
        namespaces, those in its nodes' cgroups (the containers); then undo its mounts, links,
        rule, cgroups and files. What `stop()` ends with; what `start()` begins with after a
        killed run."""
        names = [f"mbsw-{name}" for name in NODE_NAMES]
        doomed = _cgroup_pids(names)
        for netns in names:
            listed = _run("ip", "netns", "pids", netns, check=False).stdout.split()
            doomed |= {int(pid) for pid in listed}
        if folder is not None:
            needle = f"{folder}/".encode()
            for entry in Path("/proc").iterdir():
                with contextlib.suppress(OSError):
                    if entry.name.isdigit() and needle in (entry / "cmdline").read_bytes():
                        doomed.add(int(entry.name))
        _kill(doomed - {os.getpid()})
        if folder is not None:
            self._unmount_under(folder)
        for index, netns in enumerate(names):
            _run("ip", "netns", "del", netns, check=False)
            _run("ip", "link", "del", f"mbswh{index}", check=False)
        _run("ip", "link", "del", BRIDGE, check=False)
        while _run("iptables", "-w", "-C", *RULE, check=False).returncode == 0:
            _run("iptables", "-w", "-D", *RULE)
        for group in sorted(_cgroups(names), key=lambda path: len(path.parts), reverse=True):
            with contextlib.suppress(OSError):
                group.rmdir()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def _network(self) -> None:
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        # The host's FORWARD policy is DROP (Docker's): traffic between the nodes crosses it.
        _run("iptables", "-w", "-I", *RULE[:1], "1", *RULE[1:])
        for node in self.nodes:
            node.folder.mkdir(parents=True, exist_ok=True)
            _run("ip", "netns", "add", node.netns)
            _run(
                "ip",
                "link",
                "add",
                node.host_veth,
                "type",
                "veth",
                "peer",
                "name",
                f"mbswn{node.index}",
            )
            _run("ip", "link", "set", f"mbswn{node.index}", "netns", node.netns)
            _run("ip", "link", "set", node.host_veth, "master", BRIDGE)
            _run("ip", "link", "set", node.host_veth, "up")
            inside = ["ip", "netns", "exec", node.netns]
            _run(*inside, "ip", "link", "set", f"mbswn{node.index}", "name", "eth0")
            _run(*inside, "ip", "addr", "add", f"{node.address}/24", "dev", "eth0")
            _run(*inside, "ip", "link", "set", "eth0", "up")
            _run(*inside, "ip", "link", "set", "lo", "up")

    def _registry(self) -> None:
        if not shutil.which("docker-registry"):
            raise RuntimeError(
                "docker-registry is missing: scripts/ensure-test-tools.sh installs it"
            )
        folder = self.folder / "registry"
        (folder / "data").mkdir(parents=True)
        config = folder / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            "storage:\n  filesystem:\n"
            f"    rootdirectory: {folder / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.registry}\n"
        )
        log = open(folder / "registry.log", "ab")  # noqa: SIM115 - the process holds it
        self.registry_process = subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://{self.registry}/v2/", timeout=1).read()
                return
            if self.registry_process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"the registry did not start: {(folder / 'registry.log').read_text()}")

    def _daemon(self, node: Node) -> None:
        folder = node.folder
        for sub in ("data", "exec", "containerd-root", "containerd-state"):
            (folder / sub).mkdir(exist_ok=True)
        nsenter = ["nsenter", f"--net=/var/run/netns/{node.netns}"]
        (folder / "containerd.toml").write_text(
            'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        )
        log = open(folder / "containerd.log", "ab")  # noqa: SIM115 - the process holds it
        node.processes["containerd"] = subprocess.Popen(
            [
                *nsenter,
                "containerd",
                "--config",
                str(folder / "containerd.toml"),
                "--root",
                str(folder / "containerd-root"),
                "--state",
                str(folder / "containerd-state"),
                "--address",
                str(node.containerd_socket),
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        (folder / "daemon.json").write_text(
            json.dumps(
                {
                    "no-new-privileges": True,  # services cannot ask for it on 20.10
                    "icc": False,  # sessions on one node cannot reach each other
                    "insecure-registries": [self.registry],
                    "bip": f"172.31.{250 + node.index}.1/24",
                    "cgroup-parent": f"mbsw-{node.name}",
                }
            )
        )
        deadline = time.monotonic() + 30
        while not node.containerd_socket.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = open(folder / "dockerd.log", "ab")  # noqa: SIM115 - the process holds it
        node.processes["dockerd"] = subprocess.Popen(
            [
                *nsenter,
                "dockerd",
                "--config-file",
                str(folder / "daemon.json"),
                "--containerd",
                str(node.containerd_socket),
                "--data-root",
                str(folder / "data"),
                "--exec-root",
                str(folder / "exec"),
                "--pidfile",
                str(folder / "dockerd.pid"),
                "-H",
                node.docker_host,
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )

    def _wait_for(self, node: Node, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                node.client(timeout=5).ping()
                return
            if node.processes["dockerd"].poll() is not None:
                break
            time.sleep(0.2)
        log = (node.folder / "dockerd.log").read_text()[-3000:]
        raise RuntimeError(f"dockerd of {node.name} did not answer:\n{log}")

    def _swarm(self) -> None:
        manager = self.manager
        manager.docker(
            "swarm",
            "init",
            "--advertise-addr",
            manager.address,
            "--listen-addr",
            f"{manager.address}:2377",
            "--dispatcher-heartbeat",
            self.heartbeat,
        )
        token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
        for worker in self.workers:
            worker.docker(
                "swarm",
                "join",
                "--advertise-addr",
                worker.address,
                "--listen-addr",
                f"{worker.address}:2377",
                "--token",
                token,
                f"{manager.address}:2377",
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            nodes = manager.client().nodes.list()
            if len(nodes) == 3 and all(n.attrs["Status"]["State"] == "ready" for n in nodes):
                self._link_by_node()
                return
            time.sleep(0.5)
        raise RuntimeError("the workers did not become ready in the swarm")

    def _link_by_node(self) -> None:
        for node in self.nodes:
            folder = self.by_node / node.node_id()
            folder.mkdir(parents=True)
            (folder / "docker.sock").symlink_to(node.socket)
            (folder / "docker-data").symlink_to(node.folder / "data")

    # -- what tests do ----------------------------------------------------------------------

    def load_images(self, names: tuple[str, ...], nodes: list[Node] | None = None) -> None:
        """Copy images from the host's daemon (`docker save | docker load`)."""
        host_env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
        for node in nodes or [self.manager]:
            save = subprocess.Popen(
                ["docker", "save", *names], stdout=subprocess.PIPE, env=host_env
            )
            env = {**os.environ, "DOCKER_HOST": node.docker_host}
            loaded = subprocess.run(
                ["docker", "load", "-q"], stdin=save.stdout, capture_output=True, env=env
            )
            save.wait()
            if save.returncode or loaded.returncode:
                raise RuntimeError(f"loading {names} into {node.name}: {loaded.stderr!r}")

    def push_image(self, local: str, repository: str) -> str:
        """Put `local`, an image of the host's daemon, into the registry as `repository`
        (through the manager, which trusts the registry): its reference there."""
        self.load_images((local,))
        target = f"{self.registry}/{repository}"
        self.manager.docker("tag", local, target)
        self.manager.docker("push", target, timeout=300)
        return target

    def wait_for_service(self, name: str, timeout: float = 180) -> dict[str, dict]:
        """Wait until the global service `name` has a running task on every node; each node's
        ID → its running task. A task that failed on the way says why in the error."""
        manager, wanted = self.manager.client(), {node.node_id() for node in self.nodes}
        deadline, said = time.monotonic() + timeout, set()
        while time.monotonic() < deadline:
            tasks = manager.services.get(name).tasks()
            running = {t["NodeID"]: t for t in tasks if t["Status"]["State"] == "running"}
            if set(running) >= wanted:
                return running
            said |= {
                f"{t['NodeID'][:12]}: {t['Status'].get('Err') or t['Status']['State']}"
                for t in tasks
                if t["Status"]["State"] in ("failed", "rejected")
            }
            time.sleep(0.5)
        raise RuntimeError(f"service {name} did not run on every node in {timeout} s: {said}")

    def service_volumes(self, name: str) -> dict[str, set[str]]:
        """Each live node's name → the volumes the containers of service `name` there have."""
        label = f"label=com.docker.swarm.service.name={name}"
        volumes = {}
        for node in self.nodes:
            if node.processes["dockerd"].poll() is not None:
                continue  # a node killed by the test: its containers died with it
            found = node.docker("ps", "-aq", "--filter", label).stdout.split()
            volumes[node.name] = {
                mount["Name"]
                for container in found
                for mount in node.client().api.inspect_container(container)["Mounts"]
                if mount["Type"] == "volume"
            }
        return volumes

    def remove_service(self, name: str, timeout: float = 60) -> list[str]:
        """Remove the service `name` and wait until no live node holds a container of it, nor a
        volume its containers had; what remains (node: what) if some still do at the end."""
        label = f"label=com.docker.swarm.service.name={name}"
        volumes = self.service_volumes(name)
        live = [node for node in self.nodes if node.name in volumes]
        self.manager.docker("service", "rm", name, check=False)
        deadline, left = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            left = []
            for node in live:
                found = node.docker("ps", "-aq", "--filter", label, check=False).stdout.split()
                left += [f"{node.name}: container {container}" for container in found]
                if not found:
                    kept = set(node.docker("volume", "ls", "-q").stdout.split())
                    left += [f"{node.name}: volume {v}" for v in volumes[node.name] & kept]
            if not left:
                return []
            time.sleep(0.5)
        return left

    def in_node(self, node: Node, *command: str, **kwargs) -> subprocess.CompletedProcess:
        """Run `command` in the node's network namespace (as the node's host would)."""
        return _run("nsenter", f"--net=/var/run/netns/{node.netns}", *command, **kwargs)

    def kill_node(self, node: Node) -> None:
        """The node dies: its daemon, containerd and containers end at once (SIGKILL)."""
        self._end_processes(node, signal.SIGKILL)
        _kill(_cgroup_pids([node.netns]))  # its containers, orphaned by their shims' end

    def node_state_by_address(self, address: str) -> str:
        """The manager's view of the node at `address` (ready, down, unknown…)."""
        for node in self.manager.client().nodes.list():
            if node.attrs["Status"].get("Addr") == address:
                return node.attrs["Status"]["State"]
        return "gone"

    # -- down -------------------------------------------------------------------------------

    def stop(self) -> None:
        for node in reversed(self.nodes):  # the workers leave first
            if node.processes.get("dockerd") and node.processes["dockerd"].poll() is None:
                node.docker("swarm", "leave", "--force", check=False, timeout=60)
        for node in self.nodes:
            self._end_processes(node, signal.SIGTERM)
        if self.registry_process and self.registry_process.poll() is None:
            self.registry_process.terminate()
            self.registry_process.wait(timeout=30)
        self._clear_leftovers(self.folder)  # containers of a killed node too
        if self._claim is not None:
            self._claim.truncate(0)
            self._claim.close()
            self._claim = None

    def _end_processes(self, node: Node, how: signal.Signals) -> None:
        """End this node's dockerd, then its containerd and the shims it started (found by
        their containerd address, which is this node's own)."""
        for name in ("dockerd", "containerd"):
            process = node.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(how)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid in self._shims(node):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    @staticmethod
    def _shims(node: Node) -> list[int]:
        found = []
        needle = str(node.containerd_socket).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                command = (entry / "cmdline").read_bytes()
                if b"containerd-shim" in command and needle in command:
                    found.append(int(entry.name))
        return found

    @staticmethod
    def _unmount_under(folder: Path) -> None:
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for point in sorted(
            (m for m in mounts if m.startswith(str(folder) + "/")), key=len, reverse=True
        ):
            _run("umount", "-l", point, check=False)
