"""`minibinder agent`: minibinder's duties on one swarm node, reported to the manager.

It runs once per node (a global service of minibinder's own image with the node's Docker
socket, host network and NET_ADMIN; or as a plain process on the node) and talks to that
node's engine only. Every `interval` seconds it:

- reads each session's CPU time from its cgroup (the manager's culler holds it to cpu_budget),
  and counts the out-of-memory kills the engine announced since the last report;
- reads, from the kernel, whether session processes run with no-new-privileges (Docker 20.10
  cannot ask for it per service: it must be the node daemon's default);
- keeps the egress rules on the session bridge (no session reaches the node, the manager or
  private ranges) and the rule that lets only the manager open connections to sessions there
  (their published ports);
- measures the engine's disk and removes unused images of the registry above the watermark;
- pulls the probe image the manager names, once, so `doctor` can tell every node can pull;

then sends all of it signed with the per-cluster key (swarm.reports) and takes the answer.
The parts that decide are pure functions here; `Agent` asks and acts.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker

from .. import __version__
from ..cgroups import ROOT, cgroup_usage
from ..firewall import (
    EgressPolicy,
    FirewallError,
    host_resolvers,
    install,
    install_inbound,
    resolve_ipv4,
)
from .reports import (
    SIGNATURE_HEADER,
    TIME_HEADER,
    Answer,
    Report,
    ReportError,
    SessionUsage,
    parse_answer,
    report_body,
    sign,
    verify_answer,
)

log = logging.getLogger(__name__)
SESSION_LABEL = "minibinder.session"  # as sessions.launcher labels session containers
RULES_PREFIX = "MB-agent"
REPORT_PATH = "agent/report"


# -- pure ----------------------------------------------------------------------------------------


def no_new_privileges_of(status: str) -> bool | None:
    """From /proc/<pid>/status: whether the process runs with no-new-privileges."""
    for line in status.splitlines():
        if line.startswith("NoNewPrivs:"):
            return line.split(":", 1)[1].strip() == "1"
    return None


def cpu_of_cgroup(container_id: str, root: Path) -> float | None:
    """CPU-seconds of a container from its cgroup files, wherever the node's engine put it
    (systemd or cgroupfs, v1 or v2, under a cgroup-parent of the daemon's configuration)."""
    found = cgroup_usage(container_id, root)
    if found is not None:
        return found[0]
    for path in glob.glob(str(root / "*" / container_id / "cpu.stat")):  # v2, any parent
        with contextlib.suppress(OSError, ValueError):
            for line in Path(path).read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
    for pattern in ("cpuacct/*/{}/cpuacct.usage", "cpu,cpuacct/*/{}/cpuacct.usage"):  # v1
        for path in glob.glob(str(root / pattern.format(container_id))):
            with contextlib.suppress(OSError, ValueError):
                return int(Path(path).read_text()) / 1e9
    return None


def collectable(
    images: list[dict[str, Any]], used: set[str], registry: str
) -> list[dict[str, Any]]:
    """Images of `registry` no container uses, oldest first: what the node may remove."""
    prefix = f"{registry}/"

    def of_registry(image: dict[str, Any]) -> bool:
        names = (image.get("RepoTags") or []) + (image.get("RepoDigests") or [])
        return bool(registry) and any(name.startswith(prefix) for name in names)

    return sorted(
        (i for i in images if of_registry(i) and i.get("Id") not in used),
        key=lambda image: image.get("Created", 0),
    )


def manager_addresses(manager_url: str, resolve: Callable[[str], list[str]]) -> list[str]:
    """The addresses the manager relays from, as the agent reaches it."""
    host = urlsplit(manager_url).hostname or ""
    return resolve(host) if host else []


# -- the edge ------------------------------------------------------------------------------------


class Agent:
    """One node's agent: `run` reports every `interval` seconds until `stop` is set."""

    def __init__(
        self,
        api: docker.APIClient,
        manager_url: str,
        key: bytes,
        interval: float = 10.0,
        bridge: str = "docker0",
        allow_from: Iterable[str] = (),
        proc_root: Path = Path("/proc"),
        cgroup_root: Path = ROOT,
        docker_root: str = "",
        rules: bool = True,
        credentials: tuple[str, str] | None = None,
    ):
        self.api, self.key, self.interval = api, key, interval
        self.manager_url = manager_url.rstrip("/") + "/"
        self.bridge, self.allow_from = bridge, list(allow_from)
        self.proc_root, self.cgroup_root = proc_root, cgroup_root
        self.docker_root, self.rules = docker_root, rules
        self.credentials = credentials
        self._ooms: Counter[str] = Counter()
        self._oom_lock = threading.Lock()
        self._pull_tried = ""
        self._pulled, self._pull_error = "", ""

    # -- the loop --------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        threading.Thread(
            target=self._watch_ooms, args=(stop,), daemon=True, name="minibinder-agent-oom"
        ).start()
        while not stop.is_set():
            try:
                self.round()
            except Exception as error:  # the engine or the manager is away: try next round
                log.warning("agent round failed: %s", error)
            stop.wait(self.interval)

    def round(self) -> Answer:
        """One report: look, act, send; the manager's answer is acted on next round."""
        info = self.api.info()
        rules = self._install_rules() if self.rules else "not installed (--no-rules)"
        sessions, pids = self._sessions()
        with self._oom_lock:
            ooms = Counter(self._ooms)
        usages = tuple(
            SessionUsage(session, cpu, ooms.pop(session, 0)) for session, cpu in sessions.items()
        )
        usages += tuple(SessionUsage(s, None, n) for s, n in ooms.items() if n)
        root = self.docker_root or info.get("DockerRootDir", "")
        report = Report(
            node=(info.get("Swarm") or {}).get("NodeID") or "",
            hostname=info.get("Name", ""),
            version=__version__,
            no_new_privileges=self._no_new_privileges(pids),
            sessions=usages,
            disk_free=self._disk_free(root),
            rules=rules,
            pulled=self._pulled,
            pull_error=self._pull_error,
        )
        if not report.node:
            raise ReportError("this engine is not in a swarm")
        answer = self._send(report)
        with self._oom_lock:  # taken by the manager: counted once
            for usage in usages:
                self._ooms[usage.session] -= usage.oom_kills
            self._ooms = +self._ooms
        self._pull(answer.pull)
        self._collect(answer, root)
        return answer

    # -- looking -----------------------------------------------------------------------------

    def _sessions(self) -> tuple[dict[str, float | None], list[int]]:
        """Each running session's CPU-seconds, and its processes' ids (this node's)."""
        found: dict[str, float | None] = {}
        pids: list[int] = []
        for entry in self.api.containers(filters={"label": SESSION_LABEL}):
            session = (entry.get("Labels") or {}).get(SESSION_LABEL, "")
            cpu = cpu_of_cgroup(entry["Id"], self.cgroup_root)
            if cpu is None:
                cpu = self._cpu_from_stats(entry["Id"])
            found[session] = cpu
            with contextlib.suppress(docker.errors.APIError):
                pid = (self.api.inspect_container(entry["Id"]).get("State") or {}).get("Pid")
                if pid:
                    pids.append(int(pid))
        return found, pids

    def _cpu_from_stats(self, container_id: str) -> float | None:
        with contextlib.suppress(docker.errors.APIError):
            stats = self.api.stats(container_id, stream=False)
            total = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
            return total / 1e9 if total else None
        return None

    def _no_new_privileges(self, pids: list[int]) -> bool | None:
        """Read from the kernel (never from what a session's image prints): all sessions' first
        processes run with no-new-privileges, or not; None with no session here."""
        seen = []
        for pid in pids:
            with contextlib.suppress(OSError):
                status = (self.proc_root / str(pid) / "status").read_text()
                seen.append(no_new_privileges_of(status))
        known = [value for value in seen if value is not None]
        return all(known) if known else None

    def _disk_free(self, root: str) -> int | None:
        if not root:
            return None
        try:
            return shutil.disk_usage(root).free
        except OSError:
            return None

    def _watch_ooms(self, stop: threading.Event) -> None:
        filters = {"event": ["oom"], "type": "container", "label": SESSION_LABEL}
        while not stop.is_set():
            try:
                for event in self.api.events(decode=True, filters=filters):
                    attributes = (event.get("Actor") or {}).get("Attributes") or {}
                    session = attributes.get(SESSION_LABEL, "")
                    if session:
                        with self._oom_lock:
                            self._ooms[session] += 1
                        log.info("out of memory in session %s", session)
            except Exception as error:  # the engine went away: listen again
                log.debug("oom watch interrupted: %s", error)
            stop.wait(2)

    # -- acting ------------------------------------------------------------------------------

    def _install_rules(self) -> str:
        """Egress rules on the session bridge, and new connections into it from the manager
        only; "" when both are in place, else why not."""
        sources = self.allow_from or manager_addresses(self.manager_url, resolve_ipv4)
        try:
            install(EgressPolicy(RULES_PREFIX, (self.bridge,), resolvers=host_resolvers()))
            if not sources:
                return "the manager's address is not known: session ports left closed to all"
            install_inbound(f"{RULES_PREFIX}-IN", self.bridge, sources)
        except FirewallError as error:
            return str(error)
        return ""

    def _pull(self, reference: str) -> None:
        if not reference or (reference == self._pull_tried and not self._pull_error):
            return
        self._pull_tried = reference
        auth = None
        if self.credentials:
            auth = {"username": self.credentials[0], "password": self.credentials[1]}
        try:
            self.api.pull(reference, auth_config=auth)
        except docker.errors.APIError as error:
            said = str(error.explanation or error)[:400]
            self._pulled, self._pull_error = "", f"{reference}: {said}"
            return
        self._pulled, self._pull_error = reference, ""

    def _collect(self, answer: Answer, root: str) -> None:
        """Above gc_high percent of the disk in use, remove unused images of the registry,
        oldest first, until gc_low."""
        if not root or not answer.registry:
            return
        try:
            disk = shutil.disk_usage(root)
        except OSError:
            return
        if disk.used * 100 < answer.gc_high * disk.total:
            return
        used = {c.get("ImageID", "") for c in self.api.containers(all=True)}
        for image in collectable(self.api.images(), used, answer.registry):
            with contextlib.suppress(docker.errors.APIError):
                self.api.remove_image(image["Id"], force=False)
                log.info("removed unused image %s", image["Id"][:19])
            disk = shutil.disk_usage(root)
            if disk.used * 100 <= answer.gc_low * disk.total:
                return

    def _send(self, report: Report) -> Answer:
        body = report_body(report)
        sent_at = f"{time.time():.6f}"
        signature = sign(self.key, sent_at, body)
        request = urllib.request.Request(
            self.manager_url + REPORT_PATH,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                TIME_HEADER: sent_at,
                SIGNATURE_HEADER: signature,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                answer = response.read(64 * 1024)
                # What it says to pull (with the registry's credentials) and which images to
                # remove is taken only from the manager: a signed answer to this report.
                verify_answer(
                    self.key, signature, answer, response.headers.get(SIGNATURE_HEADER, "")
                )
                return parse_answer(answer)
        except urllib.error.HTTPError as error:
            said = error.read(500).decode("utf-8", "replace").strip()
            raise ReportError(f"the manager refused the report ({error.code}): {said}") from None
