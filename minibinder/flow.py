"""A Binder request end to end — resolve, build, launch — as a stream of BinderHub events."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from . import metrics
from .builds import BuildTarget, build_image, target_for_source
from .config import Config
from .docker_client import Docker
from .errors import MinibinderError, QuotaExceeded
from .events import Event
from .sessions import LaunchRequest, Sessions
from .spec import RepoSource, parse_spec
from .store import SessionRecord, Store


@dataclass
class LaunchOptions:
    host_url: str  # absolute, ends in "/": where users reach minibinder
    build_only: bool = False
    client_ip: str | None = None
    # Set when the client went away; a session launched after that is stopped again.
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class Services:
    """What a request needs, created once per process by the app factory."""

    config: Config
    store: Store
    sessions: Sessions
    docker: Docker


def binder_events(provider_spec: str, options: LaunchOptions,
                  services: Services) -> Iterator[Event]:
    """Yield BinderHub's phases for one request, ending in `ready` or `failed`."""
    started = time.monotonic()
    provider, _, spec = provider_spec.partition("/")
    outcome = {"ref": "", "build": None}
    try:
        yield from _events(provider_spec, options, services, started, outcome)
    except QuotaExceeded as error:
        _record(services.store, provider, spec, outcome, "refused", started, options)
        yield Event("failed", str(error), {"retry_after": error.retry_after})
    except MinibinderError as error:
        _record(services.store, provider, spec, outcome, "failure", started, options)
        yield Event("failed", str(error))


def _events(provider_spec: str, options: LaunchOptions, services: Services, started: float,
            outcome: dict) -> Iterator[Event]:
    config = services.config
    provider, _, spec = provider_spec.partition("/")
    source = parse_spec(provider_spec, config)
    target = target_for_source(source, config, cached=True)
    outcome["ref"], outcome["image"] = target.ref, target.image
    warm = None if options.build_only else services.sessions.claim(target.image)
    if warm is not None:  # the pool had one ready: no build check, no start, no wait
        yield Event("built", "Found built image\n", {"imageName": target.image, "cached": True})
        yield Event("launching", "Launching server...\n")
        yield _ready(source, target, warm, options, services, outcome, started)
        return
    if not options.build_only:  # refuse before building when the session could not start
        services.sessions.check_admission(provider_spec, source.repo_url)
    build_started = time.monotonic()
    last = Event("failed", "the build ended without a result")
    metrics.BUILDS_IN_PROGRESS.inc()
    try:
        for event in build_image(target, config, services.docker):
            last = event
            yield event
    finally:
        metrics.BUILDS_IN_PROGRESS.dec()
    build_seconds = time.monotonic() - build_started
    build_status = "failed" if last.phase == "failed" else (
        "cached" if last.data.get("cached") else "built")
    metrics.BUILDS.labels(build_status).inc()
    metrics.BUILD_SECONDS.labels(build_status).observe(build_seconds)
    outcome["build"] = build_seconds
    if last.phase == "failed":
        _record(services.store, provider, spec, outcome, "failure", started, options)
        return
    if options.build_only:
        yield Event("ready", "Image built (build_only)\n", {"imageName": target.image})
        return
    yield Event("launching", "Launching server...\n")
    session = services.sessions.launch(LaunchRequest(
        image=target.image, provider=provider, spec=spec, repo_url=source.repo_url,
        resolved_ref=target.ref,
        binder_env=binder_environment(source, target.ref, options.host_url)))
    if options.cancelled.is_set():
        services.sessions.stop(session.id)
        _record(services.store, provider, spec, outcome, "cancelled", started, options)
        return
    yield _ready(source, target, session, options, services, outcome, started)


def binder_environment(source: RepoSource, sha: str, host_url: str) -> dict[str, str]:
    """The BINDER_* variables a session sees, as on mybinder.org."""
    return {
        "BINDER_REPO_URL": source.repo_url, "BINDER_REF_URL": source.ref_url(sha),
        "BINDER_LAUNCH_HOST": host_url, "BINDER_REQUEST": source.request,
        "BINDER_PERSISTENT_REQUEST": source.persistent_request(sha),
    }


def _ready(source: RepoSource, target: BuildTarget, session: SessionRecord,
           options: LaunchOptions, services: Services, outcome: dict, started: float) -> Event:
    provider, _, spec = f"{source.provider}/{source.spec}".partition("/")
    url = options.host_url.rstrip("/") + session.prefix
    _record(services.store, provider, spec, outcome, "success", started, options)
    return Event("ready", f"server running at {url}\n", {
        "url": url, "token": session.token, "image": target.image,
        "repo_url": source.repo_url, "binder_ref_url": source.ref_url(target.ref),
        "binder_launch_host": options.host_url, "binder_request": source.request,
        "binder_persistent_request": source.persistent_request(target.ref),
    })


def _record(store: Store, provider: str, spec: str, outcome: dict, status: str,
            started: float, options: LaunchOptions) -> None:
    seconds = time.monotonic() - started
    metrics.LAUNCHES.labels(status).inc()
    metrics.LAUNCH_SECONDS.labels(status).observe(seconds)
    store.record_launch(provider, spec, outcome["ref"], status, outcome["build"], seconds,
                        options.client_ip, outcome.get("image", ""))
