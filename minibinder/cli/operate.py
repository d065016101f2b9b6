"""What `minibinder sessions`, `stop` and `doctor` do: the operator's shell view of a running
installation, through the same store and Docker labels `serve` uses.

`doctor` runs independent checks, each saying what it found and, when something is wrong,
what to do about it; the pure part (`Check`, `report`) is apart from the probes.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..builds.environments.r_runtime import repository_url
from ..cgroups import cgroups_visible
from ..config import Config
from ..datadir import exposed
from ..docker_client import Docker
from ..engines import capabilities, decide_reach, limits_fact, shares_netfilter
from ..errors import MinibinderError
from ..services import Services
from ..sessions.admission import capacity_text, host_memory_bytes
from ..store import SessionRecord

# -- sessions and stop --------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def session_table(services: Services, now: float | None = None) -> list[list[str]]:
    """One row per session: id, repository, state, age, idle, memory, client (and in a swarm,
    the node it runs on)."""
    now = now or time.time()
    swarm = services.config.placement == "swarm"
    rows = [
        ["ID", "REPOSITORY", "STATE", "AGE", "IDLE", "MEMORY", "CLIENT"]
        + (["NODE"] if swarm else [])
    ]
    for record in services.store.sessions():
        memory = None
        if record.container_id:
            _, memory = services.docker.usage(record.container_id)
        rows.append(
            [
                record.id,
                f"{record.provider}/{record.spec}",
                record.state,
                _duration(now - record.created),
                _duration(now - record.last_activity),
                f"{memory / 2**20:.0f} MiB" if memory else "-",
                record.client or "-",
            ]
            + ([record.node or "-"] if swarm else [])
        )
    return rows


def format_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def sessions_to_stop(
    records: Iterable[SessionRecord],
    ids: Iterable[str],
    every: bool,
    repo: str | None,
    keep_pool: bool = False,
) -> list[SessionRecord]:
    """The sessions `stop` means: named ids, all of them (with `keep_pool`, all but the warm
    ones nobody claimed), or those whose `<provider>/<spec>` (or repository URL) matches
    `repo`. An unknown id or a bad pattern is a MinibinderError."""
    records = list(records)
    if every:
        return [record for record in records if not (keep_pool and record.state == "warm")]
    if repo is not None:
        try:
            pattern = re.compile(repo)
        except re.error as error:
            raise MinibinderError(f"--repo: not a regular expression ({error})") from None
        return [
            record
            for record in records
            if pattern.search(f"{record.provider}/{record.spec}") or pattern.search(record.repo_url)
        ]
    known = {record.id: record for record in records}
    missing = [session_id for session_id in ids if session_id not in known]
    if missing:
        raise MinibinderError(f"no such session: {', '.join(missing)} (see `minibinder sessions`)")
    return [known[session_id] for session_id in ids]


# -- doctor -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    found: str
    fix: str = ""
    warning: bool = False  # not ok, but minibinder works without it


def report(checks: Iterable[Check]) -> tuple[str, bool]:
    """The doctor's text, and whether everything needed is in order."""
    lines, healthy = [], True
    for check in checks:
        mark = "ok  " if check.ok else ("warn" if check.warning else "FAIL")
        lines.append(f"{mark}  {check.name}: {check.found}")
        if not check.ok and check.fix:
            lines.append(f"      → {check.fix}")
        healthy = healthy and (check.ok or check.warning)
    return "\n".join(lines), healthy


Probe = Callable[[str], str]  # URL → "" when it answers, else what went wrong


def reachable(url: str, timeout: float = 5.0) -> str:
    """ "" when `url` answers at all (any HTTP status), else the reason."""
    parts = urlsplit(url)
    if parts.scheme in ("git", "ssh"):
        try:
            port = parts.port or (9418 if parts.scheme == "git" else 22)
            socket.create_connection((parts.hostname or "", port), timeout=timeout).close()
            return ""
        except OSError as error:
            return str(error)
    try:
        request = urllib.request.Request(url, method="HEAD")
        urllib.request.urlopen(request, timeout=timeout, context=ssl.create_default_context())
    except urllib.error.HTTPError:
        return ""  # it answered
    except (OSError, ValueError) as error:
        return str(getattr(error, "reason", error))
    return ""


def diagnose(config: Config, docker: Docker, probe: Probe = reachable) -> list[Check]:
    checks = [_docker(docker)]
    daemon = checks[0].ok
    if daemon:
        checks.append(_memory_limits(docker))
        checks += _engine(config, docker)
        checks.append(_base_image(config, docker))
    checks.append(_disk(config))
    checks.append(_seats(config, host_memory_bytes()))
    checks.append(_warm_pool(config, host_memory_bytes()))
    checks.append(_private_data(config))
    checks.append(_ca_file(config))
    index = config.package_index_url or "https://pypi.org/simple/"
    checks.append(_reach("package index", index, probe, "package_index_url"))
    checks += _conda_channels(config, probe)
    checks.append(
        _reach(
            "R package repository",
            r_package_index(config),
            probe,
            "r_package_repository",
            warning=True,
        )
    )
    checks.append(_reach("git provider", config.github_url, probe, "github_url"))
    if daemon:
        checks.append(_egress(config, docker))
    if daemon and config.placement == "swarm":
        from ..swarm.health import swarm_findings

        checks += [
            Check(f.name, f.ok, f.found, f.fix, f.warning) for f in swarm_findings(config, docker)
        ]
    return checks


def _conda_channels(config: Config, probe: Probe) -> list[Check]:
    """The channels builds will ask: the operator's mirror (conda_channels) when set, each of
    them, else conda-forge under conda_channel_alias."""
    if not config.conda_channels:
        channel = f"{config.conda_channel_alias.rstrip('/')}/conda-forge/noarch/repodata.json"
        return [_reach("conda channel", channel, probe, "conda_channel_alias", warning=True)]
    checks = []
    for url in config.conda_channels:
        index = f"{url.rstrip('/')}/noarch/repodata.json"
        failure = probe(index)
        if not failure:
            checks.append(Check("conda channel", True, f"{index} answers (conda_channels)"))
            continue
        checks.append(
            Check(
                "conda channel",
                False,
                f"{index}, the mirror set in conda_channels, does not answer ({failure[:120]})",
                "check the mirror, or correct conda_channels (environment files fall back to "
                'the package index with conda_fallback = "pypi")',
                warning=True,
            )
        )
    return checks


def r_package_index(config: Config) -> str:
    """The index R repositories install from (the newest snapshot, on bookworm)."""
    url = repository_url(config.r_package_repository, "bookworm", None)
    return url.rstrip("/") + "/src/contrib/PACKAGES"


def _docker(docker: Docker) -> Check:
    if docker.ping():
        return Check("docker", True, "the daemon answers")
    return Check(
        "docker",
        False,
        "the Docker daemon does not answer",
        "start it (systemctl start docker, or scripts/ensure-docker.sh)",
    )


def _memory_limits(docker: Docker) -> Check:
    info = docker.info()
    if info.get("MemoryLimit", False):
        version = info.get("CgroupVersion", "?")
        return Check("cgroup memory limits", True, f"enforced (cgroup v{version})")
    return Check(
        "cgroup memory limits",
        False,
        "the kernel does not enforce container memory limits",
        "enable the memory cgroup (cgroup_enable=memory on the kernel command line) and reboot",
    )


def _engine(config: Config, docker: Docker) -> list[Check]:
    """One line per capability of the engine (sessions reached by, cgroup files, limits
    enforced), each with what to do without it. The egress filter has its own line."""
    from ..store import Store

    facts = docker.engine_facts()
    if facts is None:
        return []
    reach = decide_reach(facts, config.session_reach, config.placement)
    database = config.data_path / "minibinder.sqlite"  # read, never made, by the doctor
    enforced = Store(database).fact(limits_fact(facts)) if database.exists() else None
    found = capabilities(
        facts,
        reach,
        cgroups_visible(),
        os.geteuid() == 0,
        None if enforced is None else enforced == "yes",
    )
    return [
        Check(item.name, item.available, item.found, item.fix, warning=item.name == "cgroup files")
        for item in found
        if item.name != "egress filter"
    ]


def _base_image(config: Config, docker: Docker) -> Check:
    name = config.base_images.get(config.default_python, "")
    if name and docker.image_labels(name) is not None:
        return Check("base image", True, f"{name} is there")
    return Check(
        "base image",
        False,
        f"{name or 'no base image'} is missing",
        "build it: minibinder base-image (make base-image in a checkout)",
    )


def _disk(config: Config) -> Check:
    from ..builds.disk import docker_disk

    free, floor = docker_disk(config).free, config.disk_free_floor
    found = f"{free / 2**30:.1f} GiB free, builds need {floor / 2**30:.1f} GiB (disk_free_floor)"
    if free >= floor:
        return Check("disk", True, found)
    return Check("disk", False, found, "free space (docker image prune) or lower disk_free_floor")


def _seats(config: Config, memory: int) -> Check:
    """How many sessions this host admits, and whether a room behind one address fits: an
    instructor should learn that here, not from a 429 in the room."""
    found = (
        f"{capacity_text(config, memory)}; per browser {config.max_sessions_per_client}, "
        f"per address {config.max_sessions_per_address}"
    )
    host = config.bind.rpartition(":")[0].strip("[]")
    public = not (host in ("localhost", "::1") or host.startswith("127."))
    defaults = Config()
    untouched = (
        config.max_sessions_per_client == defaults.max_sessions_per_client
        and config.max_sessions_per_address == defaults.max_sessions_per_address
    )
    if public and untouched:
        return Check(
            "seats",
            False,
            found + "; the per-client limits are at their defaults on a public bind",
            "size them for your room: max_sessions_per_address is how many students share one "
            "address (a classroom behind NAT), session_memory_reservation how many fit",
            warning=True,
        )
    return Check("seats", True, found)


def _warm_pool(config: Config, memory: int) -> Check:
    """The pools' sizes in force (the settings file's or set while running) and whether this
    host can keep them full: a pool short for want of memory is said before the workshop."""
    from ..sessions.pool import SET, shortfall, sizes_in_force
    from ..store import Store

    database = config.data_path / "minibinder.sqlite"
    store = Store(database) if database.exists() else None
    sizes = sizes_in_force(config.warm_pool, store.pool_overrides() if store else [])
    if not any(size.size for size in sizes.values()):
        return Check("warm pool", True, "none (warm_pool)")
    notes = store.pool_notes() if store else {}
    found = "; ".join(
        f"{spec} {size.size}"
        + (f" ({size.why})" if size.source == SET else "")
        + (f", short: {notes[spec]}" if notes.get(spec) else "")
        for spec, size in sorted(sizes.items())
    )
    short = shortfall(config, memory, {spec: size.size for spec, size in sizes.items()})
    if short:
        return Check(
            "warm pool",
            False,
            f"{found}; {short}",
            "lower warm_pool, or session_memory_reservation or memory_headroom, or give the "
            "host more memory",
            warning=True,
        )
    return Check("warm pool", True, found)


def _private_data(config: Config) -> Check:
    found = exposed(config.data_path)
    if not found:
        return Check("data directory", True, f"{config.data_path}: for minibinder's user only")
    fix = f"chmod -R go= {config.data_path} (minibinder serve does this at start-up)"
    found_text = "readable by other users: " + ", ".join(found[:5])
    # A warning: the next start of serve closes it, and a shell's doctor must not fail for a
    # folder an older version (or the operator) made.
    return Check("data directory", False, found_text, fix, warning=True)


def _ca_file(config: Config) -> Check:
    if not config.extra_ca_file:
        return Check("extra CA file", True, "none configured (extra_ca_file)")
    path = Path(config.extra_ca_file)
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return Check(
            "extra CA file",
            False,
            f"{path}: {error.strerror}",
            "point extra_ca_file at a readable PEM file",
        )
    count = text.count("BEGIN CERTIFICATE")
    if not count:
        return Check(
            "extra CA file",
            False,
            f"{path} holds no PEM certificate",
            "point extra_ca_file at a PEM bundle",
        )
    return Check("extra CA file", True, f"{path}: {count} certificates")


def _reach(name: str, url: str, probe: Probe, setting: str, warning: bool = False) -> Check:
    failure = probe(url)
    if not failure:
        return Check(name, True, f"{url} answers")
    return Check(
        name,
        False,
        f"{url} does not answer ({failure[:120]})",
        f"check the network or proxy, or set {setting} to a mirror",
        warning=warning,
    )


def _egress(config: Config, docker: Docker) -> Check:
    from ..firewall import FirewallError, chain_prefix, installed
    from ..identity import instance_id

    facts = docker.engine_facts()
    if facts is not None and not shares_netfilter(facts):
        found = {c.name: c for c in capabilities(facts, "published", False, False, None)}
        egress = found["egress filter"]
        required = config.egress_filter == "required"
        return Check("egress rules", False, egress.found, egress.fix, warning=not required)
    if config.egress_filter == "off":
        return Check(
            "egress rules",
            False,
            "off (egress_filter = off)",
            "builds and sessions can reach the host and private networks",
            warning=True,
        )
    try:
        present = installed(chain_prefix(instance_id(config)))
    except FirewallError as error:
        present, reason = False, str(error)
    else:
        reason = "not installed yet (minibinder serve installs them at start)"
    if present:
        return Check("egress rules", True, "installed")
    return Check(
        "egress rules",
        False,
        reason,
        "run minibinder as root, or see SECURITY.md",
        warning=config.egress_filter == "auto",
    )
