"""The launch pipeline: one Binder request end to end — resolve → build → start → ready — as a
stream of BinderHub events, and the record it leaves in the launch log."""

from __future__ import annotations

import json
import logging
import socket
import tarfile
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from . import metrics
from .builds.images import BuildTarget, build_image, is_cached, target_for_source
from .config import Config
from .errors import LaunchError, MinibinderError, QuotaExceeded, SpecError
from .events import Event
from .git_credentials import is_private
from .identity import user_allowed
from .proxy.routes import session_url
from .repos.providers import PROVIDERS, RepoSource, parse_spec
from .services import Services
from .sessions.admission import Ask, client_key
from .sessions.keeping import describe_size, owner_of, work_key
from .sessions.kept_work import KeptForNewerCommit, Restored, image_commit_time, restore_work
from .sessions.launcher import LaunchRequest
from .store import SessionRecord

log = logging.getLogger(__name__)


@dataclass
class LaunchOptions:
    host_url: str  # absolute, ends in "/": where users reach minibinder
    build_only: bool = False
    client_ip: str | None = None
    # Set when the client went away; a session launched after that is stopped again.
    cancelled: threading.Event = field(default_factory=threading.Event)
    # The open request this launch is, in the store's per-client count (0: not counted).
    request_id: int = 0
    # Who asks, when the lab's sign-in proxy said so: the launch log keeps it, and the
    # per-client limits count this user rather than the address.
    user: str = ""
    # The browser's own id (its signed cookie), when it sent one: the per-client limits count
    # browsers, and the address only as a room.
    browser: str = ""
    # Start clean: kept work (keep_work) is not put back this time.
    clean: bool = False

    @property
    def client(self) -> str:
        return client_key(self.client_ip or "", self.user, self.browser)


@dataclass
class LaunchOutcome:
    """What one request came to, for the launch log and the metrics."""

    provider_spec: str
    status: str = "failure"  # success | failure | refused | cancelled
    resolved_ref: str = ""
    image: str = ""
    build_seconds: float | None = None
    session: str = ""  # the session it started (or claimed), whose end the log will say
    private: bool = False  # of a repository git_credentials covers: exported as `private`
    restored: int = 0  # files of kept work put back (a count: the launch log keeps no names)


def launch_events(
    provider_spec: str, options: LaunchOptions, services: Services
) -> Iterator[Event]:
    """Yield BinderHub's phases for one request, ending in `ready` or `failed`; record it."""
    started = time.monotonic()
    outcome = LaunchOutcome(provider_spec)
    recorded = False

    def record() -> None:  # before the last event leaves, so the log is never behind it
        nonlocal recorded
        if not recorded and not options.build_only:
            _record(services, outcome, time.monotonic() - started, options)
        recorded = True

    try:
        for event in _launch(provider_spec, options, services, outcome):
            if event.phase in ("ready", "failed"):
                record()
            yield event
    except QuotaExceeded as error:
        outcome.status = "refused"
        record()
        yield Event("failed", str(error), {"retry_after": error.retry_after})
    except MinibinderError as error:
        record()
        yield Event("failed", str(error))
    finally:
        record()


def _launch(
    provider_spec: str, options: LaunchOptions, services: Services, outcome: LaunchOutcome
) -> Iterator[Event]:
    source = parse_spec(provider_spec, services.config)
    outcome.private = is_private(source.repo_url, services.config.git_credentials)
    if outcome.private:
        check_private_launch(services.config, options.user)
    target = target_for_source(source, services.config, cached=True)
    outcome.resolved_ref, outcome.image = target.ref, target.image
    client = options.client
    address = options.client_ip or ""
    config = services.config
    keeper = owner_of(config.keep_work, options.user, options.browser)
    kept = None
    if keeper and not options.clean and not options.build_only:
        kept = services.sessions.shelf.current(
            work_key(keeper, source.repo_url), time.time(), config.keep_work_hours
        )
    # A warm session's server is already running: kept work goes into a fresh one instead.
    claimable = not options.build_only and kept is None
    warm = services.sessions.claim(target.image, client, address) if claimable else None
    if warm is not None:  # the pool had one ready: no build check, no start, no wait
        if keeper:
            services.store.update_session(warm.id, keeper=keeper)
        yield Event("built", "Found built image\n", {"imageName": target.image, "cached": True})
        yield Event("launching", "Launching server...\n")
        outcome.status = "success"
        outcome.session = warm.id
        yield ready_event(source, target, warm, options.host_url, config.session_domain)
        return
    if not options.build_only:  # refuse before building when the session could not start
        services.sessions.admit(Ask.session(provider_spec, source.repo_url, client, address))
    if options.request_id and not is_cached(services.docker, target, config):
        services.sessions.admit(Ask.build(client, address))
        services.store.mark_building(options.request_id, target.image)
    built = yield from _build(target, services, outcome, options.cancelled)
    if not built:
        return
    if options.build_only:
        outcome.status = "success"
        yield Event("ready", "Image built (build_only)\n", {"imageName": target.image})
        return
    yield Event("launching", "Launching server...\n")
    restored: list[Restored] = []
    unrestored: list[str] = []

    def put_work_back(container_id: str) -> None:
        """Kept work into the created container; if it cannot go back, the session starts
        clean all the same and the user is told (the work stays on the shelf)."""
        started = time.monotonic()
        assert kept is not None
        try:
            done = restore_work(
                services.docker,
                services.sessions.shelf,
                kept.key,
                container_id,
                target.image,
                image_commit_time(services.docker, target.image),
            )
        except KeptForNewerCommit:
            unrestored.append(KEPT_FOR_NEWER)
            return
        except (LaunchError, OSError, tarfile.TarError) as error:
            log.warning("kept work could not be restored: %s", error)
            unrestored.append(NOT_RESTORED)
            return
        if done is not None:
            restored.append(done)
            metrics.WORK_RESTORED.inc()
            metrics.WORK_RESTORE_SECONDS.observe(time.monotonic() - started)

    session = services.sessions.launch(
        launch_request(source, target, options.host_url, client, address, keeper),
        before_start=put_work_back if kept is not None else None,
    )
    outcome.session = session.id
    if options.cancelled.is_set():
        services.sessions.stop(session.id)
        outcome.status = "cancelled"
        return
    outcome.status = "success"
    ready = ready_event(source, target, session, options.host_url, config.session_domain)
    for message in unrestored:
        yield Event("launching", message)
    if restored:
        outcome.restored = restored[0].files
        yield Event("launching", restored_message(restored[0]))
        ready.data["kept_work"] = restored[0].as_event_data()
    yield ready


NOT_RESTORED = (
    "Your kept work could not be put back this time; this session starts clean and the work "
    "stays kept (until a session of yours that changes files ends, or it expires).\n"
)


KEPT_FOR_NEWER = (
    "Your kept work was made on a newer commit of this repository than the one launched; it "
    "was not put back. It stays kept for a launch of that commit or a newer one, unless this "
    "session changes files: its work then replaces it.\n"
)


def restored_message(restored: Restored) -> str:
    """The launch log's line; the launch page says it in the reader's own time."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(restored.saved_at))
    text = f"Your work from {when} was restored ({restored.files} files)\n"
    for path, mine in restored.conflicts:
        text += f"The repository changed {path} too: your copy is {mine}\n"
    for path, size in restored.skipped:
        text += f"Not kept (over keep_work_limit): {path} ({describe_size(size)})\n"
    return text


def check_private_launch(config: Config, user: str) -> None:
    """A private repository launches for whoever passed the access code; behind a sign-in
    proxy, for the users private_repo_users and private_repo_domains name. Asked before the
    ref is resolved, so that nobody else learns even whether the repository exists."""
    if config.access != "header":
        return
    if not user_allowed(user, config.private_repo_users, config.private_repo_domains) or not (
        config.private_repo_users or config.private_repo_domains
    ):
        raise SpecError(
            f"this repository is private and {user or 'this user'} may not launch it here; "
            "ask the operator to add you to private_repo_users"
        )


def _build(
    target: BuildTarget, services: Services, outcome: LaunchOutcome, cancelled: threading.Event
) -> Generator[Event, None, bool]:
    """Relay the build's events; return whether it ended with an image."""
    started = time.monotonic()
    last = Event("failed", "the build ended without a result")
    metrics.BUILDS_IN_PROGRESS.inc()
    try:
        for event in build_image(target, services.config, services.docker, cancelled=cancelled):
            last = event
            yield event
    finally:
        metrics.BUILDS_IN_PROGRESS.dec()
    outcome.build_seconds = time.monotonic() - started
    status = (
        "failed" if last.phase == "failed" else ("cached" if last.data.get("cached") else "built")
    )
    metrics.BUILDS.labels(status).inc()
    metrics.BUILD_SECONDS.labels(status).observe(outcome.build_seconds)
    return last.phase != "failed"


def launch_request(
    source: RepoSource,
    target: BuildTarget,
    host_url: str,
    client: str = "",
    address: str = "",
    keeper: str = "",
) -> LaunchRequest:
    """What a session of `target` is started with (a launch's, or the warm pool's), with the
    BINDER_* variables it sees, as on mybinder.org."""
    sha = target.ref
    binder_env = {
        "BINDER_REPO_URL": source.repo_url,
        "BINDER_REF_URL": source.ref_url(sha),
        "BINDER_LAUNCH_HOST": host_url,
        "BINDER_REQUEST": source.request,
        "BINDER_PERSISTENT_REQUEST": source.persistent_request(sha),
    }
    return LaunchRequest(
        target.image,
        source.provider,
        source.spec,
        source.repo_url,
        sha,
        binder_env,
        client,
        address,
        keeper,
    )


def ready_event(
    source: RepoSource,
    target: BuildTarget,
    session: SessionRecord,
    host_url: str,
    session_domain: str = "",
) -> Event:
    url = session_url(host_url, session.id, session_domain)
    return Event(
        "ready",
        f"server running at {url}\n",
        {
            "url": url,
            "token": session.token,
            "image": target.image,
            "repo_url": source.repo_url,
            "binder_ref_url": source.ref_url(target.ref),
            "binder_launch_host": host_url,
            "binder_request": source.request,
            "binder_persistent_request": source.persistent_request(target.ref),
        },
    )


def _record(
    services: Services, outcome: LaunchOutcome, seconds: float, options: LaunchOptions
) -> None:
    metrics.LAUNCHES.labels(outcome.status).inc()
    metrics.LAUNCH_SECONDS.labels(outcome.status).observe(seconds)
    provider, _, spec = outcome.provider_spec.partition("/")
    services.store.record_launch(
        provider,
        spec,
        outcome.resolved_ref,
        outcome.status,
        outcome.build_seconds,
        seconds,
        options.client_ip,
        outcome.image,
        user=options.user,
        session=outcome.session,
        private=outcome.private,
        restored=outcome.restored,
    )


def launch_origin(config: Config) -> str:
    """The `origin` of exported launches (mybinder.org's archive names the federation member):
    public_url's host name, else this machine's. The same for `minibinder launches` and
    /admin/launches.jsonl, whichever address the export was asked at."""
    return urlsplit(config.public_url).hostname or socket.gethostname()


def launch_event(row: dict, origin: str) -> str:
    """One launch-log row as in mybinder.org's events archive (no client IP: it is private;
    nor the spec and commit of a private repository)."""
    private = bool(row.get("private"))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row["time"]))
    provider = PROVIDERS.get(row["provider"])
    return json.dumps(
        {
            "timestamp": stamp,
            "schema": "binderhub.jupyter.org/launch",
            "version": 3,
            "provider": provider.display_name if provider else row["provider"],
            "spec": "private" if private else row["spec"],
            "ref": "" if private else row["resolved_ref"],
            "status": row["status"],
            "build_token": False,
            "origin": origin,
            "build_seconds": row["build_seconds"],
            "launch_seconds": row["launch_seconds"],
            **({"ended": row["ended"]} if row.get("ended") else {}),
            **({"restored_files": row["restored"]} if row.get("restored") else {}),
        }
    )
