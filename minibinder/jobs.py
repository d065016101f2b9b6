"""Background jobs (culler, reconciler, IP retention, image collection, kept work's expiry,
OOM watch), run by exactly one process however many gunicorn workers there are: the holder of
a file lock."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from . import metrics
from .builds.disk import collect_images, docker_disk_path, trim_to_watermarks
from .builds.sharing import sweep_build_logs, sweep_work_folders
from .errors import ConfigError, DockerUnavailable
from .networks import ensure_egress, sweep_build_networks
from .services import Services
from .sessions.kept_work import KeptWork
from .sessions.reconcile import reconcile
from .warm_pool import refill

log = logging.getLogger(__name__)
LOCK_RETRY_SECONDS = 5.0


def maintain_sessions(services: Services) -> None:
    """One round: adopt or clean up containers, cull sessions past a limit, take a sample."""
    sessions = services.sessions
    try:
        reconcile(sessions, time.time())
        sessions.cull()
    except DockerUnavailable as error:
        log.warning("session maintenance skipped: %s", error)
    services.store.add_sample(time.time(), len(services.store.sessions("running")))


def refill_pool(services: Services) -> None:
    host = services.config.public_url or services.store.last_host_url() or ""
    try:
        refill(services, host)
    except DockerUnavailable as error:
        log.warning("warm pool refill skipped: %s", error)


def erase_old_ips(services: Services, now: float | None = None) -> int:
    cutoff = (now or time.time()) - services.config.ip_retention_days * 86400
    return services.store.erase_ips_before(cutoff)


def check_egress(services: Services) -> None:
    """Put the egress rules back if something (a firewall reload) took them away."""
    try:
        ensure_egress(services.config, services.docker, services.sessions.instance)
    except ConfigError as error:  # egress_filter = "required": say so loudly, every time
        log.error("%s", error)


def collect(services: Services) -> None:
    config, instance = services.config, services.sessions.instance
    swept = sweep_work_folders(config.data_path / "work")
    if swept:
        log.info("removed the work folders of %d builds that ended abruptly", len(swept))
    old_logs = sweep_build_logs(config.data_path / "builds", config.build_log_days * 86400)
    if old_logs:
        log.info("removed %d build logs older than %d days", len(old_logs), config.build_log_days)
    try:
        sweep_build_networks(services.docker, instance, config.build_timeout + 60)
    except DockerUnavailable as error:
        log.warning("build network sweep skipped: %s", error)
    try:
        collect_images(config, services.docker, services.store, instance)
    except DockerUnavailable as error:
        log.warning("image collection skipped: %s", error)
    if config.keep_work != "off" and _same_disk(config.data_path, docker_disk_path(config)):
        trim_kept_work_for_disk(services)


def _same_disk(one: Path, other: str) -> bool:
    try:
        return one.stat().st_dev == os.stat(other).st_dev
    except OSError:
        return False


def expire_kept_work(services: Services, now: float | None = None) -> list[str]:
    """The hourly job: kept work older than keep_work_hours goes (a launch also refuses to
    restore it), then the oldest while all of it is above keep_work_total."""
    config, shelf = services.config, services.sessions.shelf
    gone = shelf.expire(now or time.time(), config.keep_work_hours)
    gone += shelf.trim(config.keep_work_total)
    if gone:
        log.info("removed %d people's kept work (keep_work_hours, keep_work_total)", len(gone))
    return gone


def trim_kept_work_for_disk(
    services: Services, usage: Callable[[], tuple[int, int]] | None = None
) -> list[str]:
    """Kept work counts in the disk watermarks where it shares the measured disk: still above
    image_gc_high once images went, the oldest kept work goes until below image_gc_low."""
    config, shelf = services.config, services.sessions.shelf

    def remove(work: KeptWork) -> None:
        shelf.delete(work.key)
        log.info(
            "removed kept work of %d bytes, the oldest (disk above %s%%)",
            work.size,
            config.image_gc_high,
        )

    return [work.key for work in trim_to_watermarks(config, usage, shelf.all, remove)]


def watch_sessions(services: Services, stop: threading.Event) -> None:
    """Follow session containers' events: count `oom`s, and end a session whose server exited
    by itself (Shut Down) within seconds; reconnect when the engine comes back."""
    while not stop.is_set():
        try:
            for event, container_id, code in services.docker.container_events(
                services.sessions.own_label
            ):
                if event == "oom":
                    metrics.OOM_EVENTS.inc()
                    for record in services.store.sessions():
                        if record.container_id == container_id:
                            services.store.add_oom(record.id)
                elif event == "die":
                    services.sessions.ended_by_itself(container_id, code)
        except Exception as error:  # the daemon went away: wait and listen again
            log.debug("session watch interrupted: %s", error)
        stop.wait(LOCK_RETRY_SECONDS)


class JobRunner:
    """Waits for the scheduler lock in the background; the holder runs every job."""

    def __init__(self, services: Services):
        self.services = services
        self.stop_event = threading.Event()
        self.scheduler: BackgroundScheduler | None = None
        self._fd: int | None = None

    def start(self) -> None:
        threading.Thread(target=self._acquire, name="minibinder-jobs", daemon=True).start()

    @property
    def active(self) -> bool:
        return self.scheduler is not None

    def _acquire(self) -> None:
        path = self.services.config.data_path / "scheduler.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        while not self.stop_event.is_set():
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                self.stop_event.wait(LOCK_RETRY_SECONDS)
        else:
            os.close(fd)
            return
        self._fd = fd
        self._run()

    def _run(self) -> None:
        config, services = self.services.config, self.services
        maintain_sessions(services)  # adopt what survived a restart before anything else
        scheduler = BackgroundScheduler(
            daemon=True,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        )
        scheduler.add_job(
            maintain_sessions,
            "interval",
            args=[services],
            seconds=config.cull_interval,
            id="sessions",
        )
        scheduler.add_job(
            refill_pool, "interval", args=[services], seconds=5, id="pool", next_run_time=_soon(1)
        )
        scheduler.add_job(
            erase_old_ips, "interval", args=[services], hours=1, id="ips", next_run_time=_soon()
        )
        scheduler.add_job(
            check_egress, "interval", args=[services], minutes=1, id="egress", next_run_time=_soon()
        )
        scheduler.add_job(
            collect, "interval", args=[services], minutes=5, id="images", next_run_time=_soon()
        )
        scheduler.add_job(
            expire_kept_work,
            "interval",
            args=[services],
            hours=1,
            id="kept-work",
            next_run_time=_soon(),
        )
        scheduler.start()
        self.scheduler = scheduler
        threading.Thread(
            target=watch_sessions,
            args=(services, self.stop_event),
            name="minibinder-sessions",
            daemon=True,
        ).start()
        log.info("this process (pid %s) runs minibinder's background jobs", os.getpid())

    def shutdown(self) -> None:
        self.stop_event.set()
        if self.scheduler:
            self.scheduler.shutdown(wait=False)
        if self._fd is not None:
            os.close(self._fd)


def _soon(seconds: float = 10) -> datetime:
    return datetime.now() + timedelta(seconds=seconds)
