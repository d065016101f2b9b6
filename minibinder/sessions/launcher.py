"""Sessions: start a hardened Jupyter container, wait until it answers, hand it out, stop it;
and what a running session is doing (for the culler)."""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import tarfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from .. import __version__, metrics
from ..config import Config
from ..docker_client import Docker
from ..engines import (
    MEMORY_LIMIT_COMMAND,
    REACH_LABEL,
    Reach,
    decide_reach,
    limits_fact,
    limits_hold,
)
from ..errors import LaunchError, MinibinderError
from ..identity import INSTANCE_LABEL, instance_id
from ..networks import session_bridge
from ..placement import Endpoint, LocalPlacement, Placement, SessionContainer
from ..store import SessionRecord, Store
from . import jupyter
from .admission import (
    Ask,
    ClientLoad,
    Occupancy,
    check_admission,
    check_client_build,
    check_client_stream,
    host_memory_bytes,
    is_browser,
    is_person,
)
from .culler import Limits, Usage, should_cull
from .keeping import work_key
from .kept_work import FOLDER as KEPT_FOLDER
from .kept_work import Shelf, image_commit_time, save_work

log = logging.getLogger(__name__)

JUPYTER_PORT = 8888
# A session using at least this share of one CPU between two looks is computing; an idle
# Jupyter server answering minibinder's own questions uses a few percent.
COMPUTING_CPU_SHARE = 0.2
SESSION_LABEL = "minibinder.session"
# While a session starts: how often Jupyter is asked whether it answers (a backoff to 0.5 s
# used to leave ~0.25 s between Jupyter's first answer and the probe that saw it), and how
# often the engine whether the container still runs.
READY_PROBE_SECONDS = 0.05
STATE_CHECK_SECONDS = 0.5
CULL_CONCURRENCY = 10  # sessions asked at once in a culler round (the SDK pools 10)


@dataclass(frozen=True)
class LaunchRequest:
    image: str
    provider: str
    spec: str
    repo_url: str
    resolved_ref: str
    binder_env: dict[str, str]
    client: str = ""  # who asks (client_key), for per-client limits
    address: str = ""  # where from
    keeper: str = ""  # whose work it is, kept as it ends (keeping.owner_of); "": not kept


def jupyter_command(prefix: str, config: Config) -> list[str]:
    return [
        "jupyter",
        "lab",
        "--ip=0.0.0.0",
        f"--port={JUPYTER_PORT}",
        "--no-browser",
        f"--ServerApp.base_url={prefix}",
        "--ServerApp.trust_xheaders=True",
        "--ServerApp.allow_remote_access=True",
    ] + (
        [f"--ServerApp.allow_origin={config.jupyter_allow_origin}"]
        if config.jupyter_allow_origin
        else []
    )


def computing(cpu_before: float, at_before: float, cpu_now: float, now: float) -> bool:
    """Whether the CPU time grew fast enough, since the last look, to be someone's work."""
    if at_before <= 0 or now <= at_before:
        return cpu_now > cpu_before  # the first look: any work at all
    return (cpu_now - cpu_before) / (now - at_before) >= COMPUTING_CPU_SHARE


def new_session_id() -> str:
    # Letters and digits only: the id is a path segment, a container name and a label value.
    return secrets.token_hex(8)


class Sessions:
    """The sessions of this installation. `forget_route` is called whenever a session's route
    changes or goes (the proxy caches routes briefly)."""

    def __init__(
        self,
        config: Config,
        docker: Docker,
        store: Store,
        forget_route: Callable[[str], None],
        placement: Placement | None = None,
    ):
        self.config, self.docker, self.store = config, docker, store
        self.forget_route = forget_route
        self.instance = instance_id(config)
        self.placement = placement or LocalPlacement(docker, config.session_network)
        self.local = isinstance(self.placement, LocalPlacement)
        self.shelf = Shelf(config.data_path / KEPT_FOLDER)

    def reach(self) -> Reach:
        """Where sessions started now are reached (session_reach, decided for this engine)."""
        facts = self.docker.engine_facts()
        if facts is None:
            raise LaunchError("the container engine does not answer")
        return decide_reach(facts, self.config.session_reach, self.config.placement)

    @property
    def own_label(self) -> str:
        """The label filter that selects this installation's session containers."""
        return f"{INSTANCE_LABEL}={self.instance}"

    def launch(
        self,
        request: LaunchRequest,
        warm: bool = False,
        before_start: Callable[[str], None] | None = None,
    ) -> SessionRecord:
        """Start a session for a built image and return it once Jupyter answers.

        A `warm` session waits unclaimed (and unroutable) in the pool until `claim` hands it out.
        `before_start(container id)` runs on the created container before it starts.
        """
        config = self.config
        session_id, token, now = new_session_id(), secrets.token_urlsafe(24), time.time()
        record = SessionRecord(
            id=session_id,
            token=token,
            container_id="",
            target="",
            image=request.image,
            provider=request.provider,
            spec=request.spec,
            repo_url=request.repo_url,
            resolved_ref=request.resolved_ref,
            state="launching",
            created=now,
            last_activity=now,
            client=request.client,
            address=request.address,
            path_prefix=config.path_prefix,
            keeper=request.keeper if config.keep_work != "off" else "",
        )
        reach = self.reach()
        with self._admission_lock():  # check and claim in one step, across worker processes
            spec = f"{request.provider}/{request.spec}"
            self.admit(Ask.session(spec, request.repo_url, request.client, request.address))
            self.store.add_session(record)
        try:
            if self.local:
                session_bridge(config, self.docker, self.instance)
            handle = self.placement.start(
                SessionContainer(
                    image=request.image,
                    name=f"minibinder-session-{session_id}",
                    command=jupyter_command(record.prefix, config),
                    environment={
                        **request.binder_env,
                        "JUPYTER_TOKEN": token,
                        # The memory indicator (jupyter-resource-usage) shows use against these.
                        "MEM_LIMIT": str(config.session_memory_limit),
                        "CPU_LIMIT": str(config.session_cpu_limit),
                    },
                    labels={
                        SESSION_LABEL: session_id,
                        INSTANCE_LABEL: self.instance,
                        "minibinder.image": request.image,
                        "minibinder.spec": f"{request.provider}/{request.spec}",
                        "minibinder.repo": request.repo_url,
                        "minibinder.ref": request.resolved_ref,
                        "minibinder.version": __version__,
                        REACH_LABEL: reach,
                    },
                    user="1000",
                    mem_limit=config.session_memory_limit,
                    mem_reservation=config.session_memory_reservation,
                    nano_cpus=int(config.session_cpu_limit * 1e9),
                    pids_limit=config.session_pids_limit,
                    port=JUPYTER_PORT,
                    reach=reach,
                    disk_limit=config.session_disk_limit
                    if self.local and self.docker.disk_quota_supported()
                    else 0,
                    before_start=before_start,
                    ulimits=config.session_ulimits,
                )
            )
            container_id = handle
            self.store.update_session(session_id, container_id=handle)
            endpoint = self._wait_until_ready(handle, reach, record.prefix)
            target = endpoint.target
        except BaseException:
            self.stop(session_id)
            raise
        self.store.update_session(
            session_id,
            target=target,
            state="warm" if warm else "running",
            last_activity=time.time(),
            node=endpoint.node,
        )
        if self.local:  # a session on another node cannot be asked from here (the agent's)
            self._learn_limits(container_id)
        return self.store.get_session(session_id) or record

    def ended_by_itself(self, container_id: str, exit_code: int) -> str | None:
        """When a session's server exits on its own with 0 (File → Shut Down in JupyterLab),
        the session ends: its seat freed, its container removed. The engine does not restart
        such a server (the restart policy is on-failure); a crash (any other code) it does.
        Returns the session id it ended, if any."""
        if exit_code != 0:
            return None
        for record in self.store.sessions():
            if record.container_id == container_id and record.state == "running":
                if self.placement.state(container_id) == "running":
                    return None  # it came back: not a shut down after all
                self.stop(record.id, "shut down")
                return record.id
        return None

    def limits_enforced(self) -> bool | None:
        """Whether this engine was seen enforcing a session's limits (None: not seen yet)."""
        facts = self.docker.engine_facts()
        known = self.store.fact(limits_fact(facts)) if facts else None
        return None if known is None else known == "yes"

    def _learn_limits(self, container_id: str) -> None:
        """Once per engine: read the memory limit back from inside a session. An engine that
        takes the setting and enforces nothing is said so, loudly, from then on."""
        facts = self.docker.engine_facts()
        if facts is None or self.store.fact(limits_fact(facts)) is not None:
            return
        try:
            text = b"".join(self.docker.run_in(container_id, MEMORY_LIMIT_COMMAND, "1000"))
        except LaunchError as error:
            log.warning("could not read a session's limits back: %s", error)
            return
        holds = limits_hold(text.decode(errors="replace"), self.config.session_memory_limit)
        self.store.remember(limits_fact(facts), "yes" if holds else "no")
        if not holds:
            log.warning(
                "%s does not enforce session limits (memory limit read back: %s); a session "
                "can take the whole machine",
                facts.label,
                text.decode(errors="replace").strip()[:40],
            )

    def claim(self, image: str, client: str = "", address: str = "") -> SessionRecord | None:
        """A warm session of `image`, now the caller's: its token was never given to anyone.
        None when there is none, or when `client` (or everyone behind its `address`) has as
        many sessions as it may."""
        config = self.config
        person, browser = is_person(client), is_browser(client)
        client_limit = config.max_sessions_per_client if person else 0
        address_limit = config.max_sessions_per_address if (browser or not person) else 0
        record = self.store.claim_warm(
            image,
            time.time(),
            client,
            client_limit if client else 0,
            address,
            address_limit if client else 0,
        )
        if record:
            self.forget_route(record.id)
        return record

    def admit(self, ask: Ask) -> None:
        """Raise QuotaExceeded, saying why, unless what `ask` names may start now. The one
        answer to every "may this start?": the launch page and a session (host, repository and
        client seats), a launch event stream, a build (the client's share)."""
        if ask.what == "session":
            store = self.store
            load = self.client_load(ask.client, ask.address) if ask.client else None
            occupancy = Occupancy(
                store.count_sessions(),
                store.count_sessions(ask.repo_url),
                host_memory_bytes(),
                load.sessions if load else 0,
                load.address_sessions if load else 0,
                ask.client,
                self.placement.seats(
                    self.config.session_memory_reservation, self.config.memory_headroom
                ),
            )
            check_admission(ask.provider_spec, occupancy, self.config)
        elif ask.what == "stream":
            load = self.client_load(ask.client, ask.address)
            check_client_stream(load, ask.client, self.config, ask.launching)
        else:
            check_client_build(self.client_load(ask.client, ask.address), self.config)

    def client_load(self, client: str, address: str = "") -> ClientLoad:
        # No launch lasts longer than this; a request still open past it belonged to a worker
        # that died without closing it.
        longest = self.config.build_timeout + self.config.launch_timeout + 600
        streams, builds = self.store.client_requests(client, time.time() - longest)
        around = self.store.count_sessions(address=address) if address else 0
        return ClientLoad(self.store.count_sessions(client=client), streams, builds, around)

    @contextmanager
    def _admission_lock(self) -> Iterator[None]:
        path = self.config.data_path / "admission.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _wait_until_ready(self, handle: str, reach: str, prefix: str) -> Endpoint:
        """Where the session is reached, once its Jupyter answers there. Jupyter is asked every
        READY_PROBE_SECONDS (a refused connection costs next to nothing, and every moment
        between its first answer and the probe is the user's wait); the engine, whether the
        session still runs and, until it is known, where it is (a swarm places it and its node
        pulls the image first), only every STATE_CHECK_SECONDS."""
        now = time.monotonic()
        deadline, state_checked = now + self.config.launch_timeout, now
        endpoint = self.placement.endpoint(handle, reach, JUPYTER_PORT)
        while time.monotonic() < deadline:
            if endpoint.target and jupyter.answers(endpoint.target, prefix):
                return endpoint
            if time.monotonic() - state_checked >= STATE_CHECK_SECONDS:
                state_checked = time.monotonic()
                if self.placement.state(handle) == "ended":
                    logs = self.placement.logs(handle)
                    raise LaunchError(
                        "the session stopped while starting"
                        + (f"; its last output:\n{logs}" if logs else "")
                    )
                if not endpoint.target:
                    endpoint = self.placement.endpoint(handle, reach, JUPYTER_PORT)
            time.sleep(READY_PROBE_SECONDS)
        logs = self.placement.logs(handle)
        raise LaunchError(
            f"the session did not answer within {self.config.launch_timeout} s "
            f"(launch_timeout); its last output:\n{logs}"
        )

    def stop(self, session_id: str, reason: str = "stopped") -> None:
        """Remove the container and the route. Every session ends here, whatever ended it
        (cull, age, CPU budget, Shut Down, the operator, a restart): with keep_work, its
        owner's changed files are copied out first; nothing else of it survives."""
        record = self.store.get_session(session_id)
        if record and record.state == "running":
            # Counted before the container goes, so whoever sees it gone sees it counted.
            metrics.SESSIONS_ENDED.labels(reason).inc()
        self.forget_route(session_id)
        if record and record.state == "running" and record.keeper and record.container_id:
            self.keep_work(record)
        if record and record.container_id:
            self.placement.remove(record.container_id)
        self.store.delete_session(session_id)
        if record and record.state == "running":
            self.store.end_launch(session_id, reason)
        if record and record.state == "running":
            log.info(
                "session %s of %s/%s stopped: %s", session_id, record.provider, record.spec, reason
            )

    def keep_work(self, record: SessionRecord) -> None:
        """Copy a session's work onto the shelf (kept_work.py); a failure is logged, and the
        session ends all the same."""
        config = self.config
        if config.keep_work == "off":
            return
        started = time.monotonic()
        try:
            saved = save_work(
                self.docker,
                self.shelf,
                container_id=record.container_id,
                image=record.image,
                owner=record.keeper,
                key=work_key(record.keeper, record.repo_url),
                repo_url=record.repo_url,
                resolved_ref=record.resolved_ref,
                limit=config.keep_work_limit,
                commit_time=image_commit_time(self.docker, record.image),
            )
            if saved is not None:
                self.shelf.trim(config.keep_work_total, keep=saved.key)
        except (MinibinderError, OSError, tarfile.TarError) as error:
            log.warning("session %s: its work could not be kept: %s", record.id, error)
            return
        if saved is not None:
            metrics.WORK_SAVED_SECONDS.observe(time.monotonic() - started)
            log.info(
                "session %s: kept %d files (%d bytes), %d left out",
                record.id,
                len(saved.files),
                saved.size,
                len(saved.skipped),
            )

    def extend(self, session_id: str, seconds: float) -> None:
        record = self.store.get_session(session_id)
        if record:
            self.store.update_session(
                session_id, extra_seconds=record.extra_seconds + seconds, last_activity=time.time()
            )

    # -- what a session is doing -----------------------------------------------------------

    def usage(
        self, record: SessionRecord, with_cpu: bool = True, status: dict | None = None
    ) -> Usage:
        """Combine the proxy's activity with Jupyter's own, what the session wrote to its own
        layer and volumes, and (`with_cpu`, the culler's rounds) the cgroup's CPU time.

        `status` is Jupyter's /api/status when the caller has already asked for it.
        """
        last_activity = record.last_activity
        status = status if status is not None else jupyter.status(record)
        busy = 0
        if status:
            reported = jupyter.parse_time(status.get("last_activity"))
            if reported:
                last_activity = max(last_activity, reported)
            if status.get("kernels"):
                busy = jupyter.busy_kernels(record)
        if not self.local:  # in a swarm the node's agent reports it (take_reported)
            reported = with_cpu and record.cpu_checked_at > 0
            cpu = record.cpu_seconds if reported else None
            advanced_at = (record.cpu_advanced_at or record.created) if reported else None
            return Usage(
                record.created, last_activity, busy, cpu, record.extra_seconds, advanced_at, None
            )
        cpu = self.docker.usage(record.container_id)[0] if with_cpu else None
        advanced_at = record.cpu_advanced_at or None
        if cpu is not None:
            now = time.time()
            if computing(record.cpu_seconds, record.cpu_checked_at, cpu, now):
                advanced_at = now
            self.store.update_session(
                record.id, cpu_seconds=cpu, cpu_checked_at=now, cpu_advanced_at=advanced_at or 0.0
            )
            advanced_at = advanced_at or record.created
        disk = self.docker.written_bytes(record.container_id) if record.container_id else None
        return Usage(
            record.created, last_activity, busy, cpu, record.extra_seconds, advanced_at, disk
        )

    def take_reported(
        self, session_id: str, cpu: float | None, oom_kills: int, now: float | None = None
    ) -> bool:
        """What a node's agent saw of one session: its CPU time so far and new out-of-memory
        kills (swarm placement). False when the session is not this installation's."""
        record = self.store.get_session(session_id)
        if record is None:
            return False
        for _ in range(oom_kills):
            self.store.add_oom(session_id)
        if cpu is not None:
            now = now if now is not None else time.time()
            advanced = computing(record.cpu_seconds, record.cpu_checked_at, cpu, now)
            self.store.update_session(
                session_id,
                cpu_seconds=cpu,
                cpu_checked_at=now,
                cpu_advanced_at=now if advanced else record.cpu_advanced_at,
            )
        return True

    def cull(self, now: float | None = None) -> list[tuple[str, str]]:
        """Stop every running session past a limit; return (session id, reason) pairs.

        What each session is doing is asked of all of them at once (CULL_CONCURRENCY at a
        time): where the engine's stats API stands in for cgroup files, Docker takes about a
        second per container asked, mostly waiting, and forty sessions asked one after another
        made a forty-second round."""
        limits = Limits.from_config(self.config)
        records = self.store.sessions("running") + self.store.sessions("warm")
        if not records:
            return []
        with ThreadPoolExecutor(min(CULL_CONCURRENCY, len(records))) as pool:
            usages = list(pool.map(self.usage, records))
        culled = []
        for record, usage in zip(records, usages, strict=True):
            now_ = now if now is not None else time.time()
            reason = should_cull(usage, now_, limits)
            if reason:
                self.stop(record.id, reason)
                culled.append((record.id, reason))
        return culled
