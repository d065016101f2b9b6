"""The warm pool: sessions started ahead of time for chosen repositories, refilled in the
background, so that a launch finds one ready (workshops: 40 students, one link, 9:00)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from .builds import build_image, target_for_source
from .errors import MinibinderError
from .launch import launch_request
from .repos.providers import parse_spec
from .services import Services
from .sessions.launcher import LaunchRequest

log = logging.getLogger(__name__)
PARALLEL_STARTS = 4


def pool_targets(services: Services) -> dict[str, int]:
    """Configured sizes, overridden by what the operator set on the admin page."""
    return {**services.config.warm_pool, **services.store.pool_targets()}


def refill(services: Services, host_url: str) -> int:
    """Bring every pool to its size: build if needed, start what is missing, retire warm
    sessions of a commit the ref no longer points to. Returns how many were started."""
    started = 0
    warm = services.store.sessions("warm")
    keep: set[str] = set()  # ids of warm sessions a pool still wants
    for provider_spec, size in pool_targets(services).items():
        try:
            source = parse_spec(provider_spec, services.config)
            target = target_for_source(source, services.config, cached=True)
            mine = [record.id for record in warm if record.image == target.image]
            keep.update(mine[:size])  # a pool set to fewer (or 0) lets the rest go
            have = min(len(mine), size)
            if have >= size:
                continue
            last = None
            for event in build_image(target, services.config, services.docker):
                last = event
            if last is None or last.phase != "built":
                log.warning(
                    "warm pool %s: build failed: %s",
                    provider_spec,
                    last.message if last else "no result",
                )
                continue
            request = launch_request(source, target, host_url)
            missing = size - have
            with ThreadPoolExecutor(min(PARALLEL_STARTS, missing)) as executor:
                results = list(
                    executor.map(lambda _, r=request: _start(services, r), range(missing))
                )
            started += sum(results)
        except MinibinderError as error:
            log.warning("warm pool %s: %s", provider_spec, error)
    for record in warm:
        if record.id not in keep:
            services.sessions.stop(record.id, "pool shrunk or ref moved")
    return started


def _start(services: Services, request: LaunchRequest) -> bool:
    try:
        services.sessions.launch(request, warm=True)
        return True
    except MinibinderError as error:  # e.g. the host is full: try again next round
        log.info("warm pool: not started: %s", error)
        return False
