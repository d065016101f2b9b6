"""Rules between settings (pure): values that are each fine alone but contradict each other are
refused at load, and the error names both settings, so the operator learns it at start-up
instead of from a build's traceback or a culler that never warns."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import ConfigError

if TYPE_CHECKING:
    from .config import Config


def _served_to_others(config: Config) -> bool:
    """Whether people other than this machine's user reach minibinder: a bind address or a
    public_url that is not loopback."""
    public = urlsplit(config.public_url).hostname or "" if config.public_url else ""
    hosts = [config.bind.rpartition(":")[0].strip("[]"), public]
    return any(host and not _is_loopback(host) for host in hosts)


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def check_consistency(config: Config) -> Config:
    """Raise ConfigError for the first pair of settings that cannot hold together."""
    _default_python_has_a_base_image(config)
    if config.image_gc_low > config.image_gc_high:
        raise ConfigError(
            f"image_gc_low ({config.image_gc_low}) is above image_gc_high "
            f"({config.image_gc_high}): images are removed from image_gc_high percent down to "
            "image_gc_low percent, so image_gc_low must not be higher"
        )
    if config.session_memory_reservation > config.session_memory_limit:
        raise ConfigError(
            f"session_memory_reservation ({_size(config.session_memory_reservation)}) is above "
            f"session_memory_limit ({_size(config.session_memory_limit)}): a session is "
            "guaranteed the reservation and may use up to the limit, so lower the reservation "
            "or raise the limit"
        )
    if config.keep_work == "user" and config.access != "header":
        raise ConfigError(
            f'keep_work = "user" needs access = "header" (it is "{config.access}"): work is '
            "kept per signed-in user, and only a sign-in proxy names users; use keep_work = "
            '"browser" otherwise'
        )
    if config.keep_work_limit > config.keep_work_total:
        raise ConfigError(
            f"keep_work_limit ({_size(config.keep_work_limit)}) is above keep_work_total "
            f"({_size(config.keep_work_total)}): one person's work could never fit; lower "
            "keep_work_limit or raise keep_work_total"
        )
    if config.keep_work != "off" and not config.session_domain and _served_to_others(config):
        raise ConfigError(
            f'keep_work = "{config.keep_work}" on a server others reach needs session_domain: '
            "without it every session shares minibinder's origin, and a page of one "
            "repository could launch another in the visitor's name and read the work kept for "
            'it; set session_domain (a wildcard name: see the README), or keep_work = "off"'
        )
    if config.keep_work_hours <= 0:
        raise ConfigError('keep_work_hours must be more than 0 (keep_work = "off" keeps none)')
    if config.placement == "swarm" and config.keep_work != "off":
        raise ConfigError(
            f'keep_work = "{config.keep_work}" needs placement = "local": kept work is copied '
            "out of a session's container through this machine's engine, and a swarm's "
            'sessions run on other nodes; set keep_work = "off" or placement = "local"'
        )
    if config.placement == "swarm" and not config.registry:
        raise ConfigError(
            'placement = "swarm" needs registry: the nodes pull session images from it '
            '(set registry = "host:port" of your lab\'s registry)'
        )
    for limit in ("idle_timeout", "max_age"):
        if config.cull_warning >= getattr(config, limit):
            raise ConfigError(
                f"cull_warning ({config.cull_warning} s) is not shorter than {limit} "
                f"({getattr(config, limit)} s): a session would show the warning all along; "
                f"make cull_warning shorter than {limit}"
            )
    return config


def _default_python_has_a_base_image(config: Config) -> None:
    wanted = config.default_python
    if wanted in config.base_images:
        return
    have = ", ".join(f'"{version}"' for version in config.python_versions()) or "none"
    raise ConfigError(
        f'base_images has no entry for default_python "{wanted}" (it has {have}): add '
        f'"{wanted}" = "<image>" to base_images, or set default_python to a version it has'
    )


def _size(value: int) -> str:
    for unit, scale in (("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if value >= scale:
            return f"{value / scale:g}{unit}"
    return f"{value} bytes"


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """ " (did you mean X?)" for the closest known name, or ""."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""
