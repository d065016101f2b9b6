"""The warm pool: sessions started ahead of time for chosen repositories, refilled in the
background, so that a launch finds one ready (workshops: 40 students, one link, 9:00)."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from .builds import build_image, target_for_source
from .builds.images import BuildTarget
from .errors import MinibinderError, QuotaExceeded
from .launch import launch_request
from .repos.providers import RepoSource, parse_spec
from .services import Services
from .sessions.admission import capacity_text, host_memory_bytes, sessions_text, total_limit
from .sessions.launcher import LaunchRequest
from .sessions.pool import PoolSize, replaced, sizes_in_force

log = logging.getLogger(__name__)
PARALLEL_STARTS = 4


def pool_sizes(services: Services) -> dict[str, PoolSize]:
    """Each pool's size in force and why: the settings file's, or one set while running."""
    return sizes_in_force(services.config.warm_pool, services.store.pool_overrides())


def pool_targets(services: Services) -> dict[str, int]:
    return {spec: size.size for spec, size in pool_sizes(services).items()}


def set_pool_size(services: Services, spec: str, size: int, set_by: str) -> int:
    """Set the pool of `spec` to `size` until the settings file's value for it changes.
    Returns the size that was in force before."""
    before = pool_targets(services).get(spec, 0)
    file_size = services.config.warm_pool.get(spec)
    services.store.set_pool_target(spec, size, file_size, time.time(), set_by)
    log.info(
        "warm pool %s: %d (was %d), set by %s; the settings file says %s",
        spec,
        size,
        before,
        set_by,
        "nothing" if file_size is None else file_size,
    )
    return before


def empty_pools(services: Services, set_by: str) -> dict[str, int]:
    """Set every pool to 0 (`stop --all`): returns the sizes they had."""
    return {
        spec: set_pool_size(services, spec, 0, set_by)
        for spec, size in pool_targets(services).items()
        if size
    }


def stop_unclaimed(services: Services, reason: str) -> int:
    """Stop every warm session nobody claimed (`serve` shutting down); how many."""
    warm = services.store.sessions("warm")
    if warm:
        with ThreadPoolExecutor(min(8, len(warm))) as executor:
            list(executor.map(lambda r: services.sessions.stop(r.id, reason), warm))
    return len(warm)


def _retire_replaced(services: Services) -> None:
    """Sizes set on the page that a change of the settings file took over from: forgotten,
    and said in the log (the page says it too)."""
    file = services.config.warm_pool
    for override in replaced(file, services.store.pool_overrides()):
        services.store.forget_pool_target(override.spec)
        log.info(
            "warm pool %s: the settings file's %s replaces the %d set by %s",
            override.spec,
            file.get(override.spec, "(none)"),
            override.size,
            override.set_by or "the operator's page",
        )


def refill(services: Services, host_url: str) -> int:
    """Bring every pool to its size: build if needed, start what is missing, retire warm
    sessions of a commit the ref no longer points to. Returns how many were started. Why a
    pool stays short is kept for the operator's page and `doctor`."""
    _retire_replaced(services)
    started = 0
    earlier = services.store.pool_notes()
    warm = services.store.sessions("warm")
    keep: set[str] = set()  # ids of warm sessions a pool still wants
    for provider_spec, size in pool_targets(services).items():
        note = ""
        try:
            source = parse_spec(provider_spec, services.config)
            target = target_for_source(source, services.config, cached=True)
            mine = [record.id for record in warm if record.image == target.image]
            keep.update(mine[:size])  # a pool set to fewer (or 0) lets the rest go
            have = min(len(mine), size)
            if have < size:
                count, note = _fill(services, source, target, host_url, size - have)
                started += count
        except MinibinderError as error:
            note = str(error)
        note = note[:500]
        if note != earlier.get(provider_spec, ""):  # said once, not every round
            services.store.note_pool(provider_spec, note)
            if note:
                log.warning("warm pool %s is short: %s", provider_spec, note)
    for record in warm:
        if record.id not in keep:
            services.sessions.stop(record.id, "pool shrunk or ref moved")
    return started


def _fill(
    services: Services, source: RepoSource, target: BuildTarget, host_url: str, missing: int
) -> tuple[int, str]:
    """Build if needed and start `missing` warm sessions: how many started, and why not all
    of them ("" when they did)."""
    last = None
    for event in build_image(target, services.config, services.docker):
        last = event
    if last is None or last.phase != "built":
        return 0, f"the build failed: {last.message.strip() if last else 'no result'}"
    request = launch_request(source, target, host_url)
    with ThreadPoolExecutor(min(PARALLEL_STARTS, missing)) as executor:
        results = list(executor.map(lambda _: _start(services, request), range(missing)))
    return results.count(""), next((result for result in results if result), "")


def _start(services: Services, request: LaunchRequest) -> str:
    """Start one warm session: "" when it started, else why not (tried again next round)."""
    try:
        services.sessions.launch(request, warm=True)
        return ""
    except QuotaExceeded as error:
        memory = host_memory_bytes()
        running = services.store.count_sessions()
        if running >= total_limit(services.config, memory):
            capacity = capacity_text(services.config, memory)
            return f"the host is full ({sessions_text(running)} running or starting): {capacity}"
        return str(error)
    except MinibinderError as error:
        return str(error)
