"""Settings: one declarative list with defaults and help, from TOML plus environment overrides."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .setting_kinds import (
    Choice,
    Count,
    EgressList,
    Kind,
    Size,
    Table,
    Text,
    TextList,
    address,
    code_hash,
    dns_name,
    http_url_entry,
    image_prefix,
    internal_host,
    kind_of,
    network,
    origin,
    package_repository,
    public_url,
    regex,
    regex_key,
    registry,
    ulimit_key,
    version_key,
)

ENV_PREFIX = "MINIBINDER_"
MIN_ADMIN_TOKEN = 32  # no rate limit guards the operator's token: its length does
# Table settings: what their values are, and how their keys (and values) are checked.
BASE_IMAGES = Table(str, "a table of strings", "KEY=VALUE,...", key=version_key)
VERSION_URLS = Table(
    str, "a table of version = URL", "X.Y=URL,...", key=version_key, entry=http_url_entry
)
LIMITS = Table(int, "a table of regular expression = limit", "REGEX=NUMBER,...", key=regex_key)
COUNTS = Table(int, "a table of `<provider>/<spec>` = count", "SPEC=NUMBER,...")
ULIMITS = Table(int, "a table of limit = number", "NAME=NUMBER,...", key=ulimit_key)


def setting(
    default: Any, help: str, kind: Kind | None = None, build: bool = False, section: str = ""
) -> Any:
    """Declare one setting: its default, the help text shown in docs, and its kind (how values
    are read and stored; by default, from the default's type).

    `build=True` marks settings that change what an image contains; they feed the config hash.
    `section` starts a group of settings in the docs (config.example.toml).
    """
    kind = kind or kind_of(default)
    value = kind.read("default", default, False)  # stored parsed, as loaded values are
    meta = {"help": help, "kind": kind, "build": build, "section": section}
    if isinstance(value, list | dict):
        return field(default_factory=lambda: type(value)(value), metadata=meta)
    return field(default=value, metadata=meta)


def _one_registry(name: str, value: str) -> None:
    registry(name, value)


def default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local/share")
    return os.path.join(base, "minibinder")


@dataclass(frozen=True)
class Config:
    """All of minibinder's settings. Field order is the order of config.example.toml."""

    # -- State and images --------------------------------------------------------------------------
    data_dir: str = setting(
        "",
        "Where minibinder keeps its state (SQLite, build logs, work dirs). "
        "Empty: $XDG_DATA_HOME/minibinder, i.e. ~/.local/share/minibinder.",
        section="State and images",
    )
    image_prefix: str = setting(
        "minibinder-",
        "Prefix of the names of images minibinder builds.",
        kind=Text(image_prefix, empty_ok=False),
    )

    # -- Python versions ---------------------------------------------------------------------------
    base_images: dict = setting(
        {"3.11": "minibinder-base:py3.11"},
        'Base image per Python version ("X.Y" = image). A repository asks for a version in '
        "runtime.txt; images are made by `minibinder base-image`.",
        kind=BASE_IMAGES,
        build=True,
        section="Python versions",
    )
    base_rootfs: str = setting(
        "debian:bookworm-slim",
        "The root filesystem a missing base image is made from on first use: pulled, else "
        "(no registry reachable) made with debootstrap when minibinder runs as root on Linux. "
        "`make serve` makes minibinder-rootfs:bookworm with debootstrap itself.",
    )
    default_python: str = setting(
        "3.11",
        "Python version used when the repository does not ask for one; base_images must have "
        "an entry for it.",
        build=True,
    )
    python_fallback: str = setting(
        "newer",
        "When a repository asks for a Python version no base image (and no conda channel) "
        'provides: "newer" builds with the nearest newer version and shows a warning, '
        '"fail" refuses the build.',
        kind=Choice(("newer", "fail")),
        build=True,
    )

    # -- Builds ------------------------------------------------------------------------------------
    extra_ca_file: str = setting(
        "",
        "PEM file of extra CA certificates trusted inside builds and sessions "
        "(TLS-intercepting proxies, university networks). Empty: none.",
        kind=Text(),
        build=True,
        section="Builds",
    )
    package_index_url: str = setting(
        "",
        "Python package index used by builds instead of PyPI (a mirror, an air-gapped "
        "devpi). Empty: PyPI.",
        build=True,
    )
    npm_registry_url: str = setting(
        "", "npm registry used by builds (a mirror). Empty: npm's default.", build=True
    )
    installer: str = setting(
        "uv",
        'Installer for Python packages in builds: "uv" (fast) or "pip".',
        kind=Choice(("uv", "pip")),
        build=True,
    )
    allow_dockerfile: bool = setting(
        True, "Build repositories that bring their own Dockerfile (under the Dockerfile policy)."
    )
    allowed_registries: list = setting(
        ["docker.io"],
        "Registries (host or host:port) a repository's Dockerfile may take images from: FROM, "
        "COPY --from and the # syntax= frontend, decided after ARG and ENV expansion. The "
        "Docker daemon pulls them from the host's own network, so anything else is refused. "
        '"docker.io" is Docker Hub (names without a registry); add e.g. "quay.io", "ghcr.io" '
        'or an internal "registry.lab.example:5000".',
        kind=TextList(registry),
    )
    build_memory_limit: int = setting(
        "3G", "Memory limit of each build step (bytes, or with a K/M/G suffix).", kind=Size()
    )
    build_timeout: int = setting(1800, "Seconds a build may take before it is stopped.")
    max_concurrent_builds: int = setting(2, "Builds running at once; more wait their turn.")
    build_log_limit: int = setting(
        "20M",
        "Size of a build's log past which the rest is neither shown nor kept (the build goes on).",
        kind=Size(),
    )
    build_log_days: int = setting(
        30, "Days a finished build's log is kept for the operator's page."
    )

    # -- conda environments ------------------------------------------------------------------------
    conda_channel_alias: str = setting(
        "https://conda.anaconda.org",
        "Where conda channels named by name live (conda-forge → ALIAS/conda-forge); point it "
        "at a mirror (Artifactory, quetz) on a lab network.",
        build=True,
        section="conda environments",
    )
    conda_channels: list = setting(
        [],
        "Channel URLs used instead of the ones an environment file names (a mirror of them). "
        "Empty: the file's own channels (conda-forge when it names none).",
        kind=TextList(),
        build=True,
    )
    conda_fallback: str = setting(
        "pypi",
        'When no conda channel answers: "pypi" installs the environment file\'s packages from '
        "the Python package index instead (names mapped by a shipped table; conda-only "
        'packages are named in the error), "fail" refuses the build.',
        kind=Choice(("pypi", "fail")),
        build=True,
    )
    conda_solve_timeout: int = setting(300, "Seconds solving a conda environment may take.")

    # -- R environments ----------------------------------------------------------------------------
    r_package_repository: str = setting(
        "https://packagemanager.posit.co/cran/__linux__/{codename}/{date}",
        "CRAN-like repository install.R and DESCRIPTION install from: {date} is runtime.txt's "
        "snapshot date (latest when it names none), {codename} the base image's Debian release "
        "(the default serves Linux binaries for it). A mirror or an internal repository works.",
        kind=Text(package_repository, empty_ok=False),
        build=True,
        section="R environments",
    )
    r_package_fallback: str = setting(
        "debian",
        'When the R package repository does not answer at build time: "debian" installs '
        "the packages install.R's install.packages calls and DESCRIPTION's dependencies name "
        "from Debian's r-cran-<name> binaries instead (Debian's versions; packages Debian lacks "
        'are named in the error), "fail" refuses the build.',
        kind=Choice(("debian", "fail")),
        build=True,
    )
    r_fallback: str = setting(
        "nearest",
        "When runtime.txt asks for an R version neither Debian's R nor r_builds provides: "
        '"nearest" builds with the nearest version of the same major and shows a warning, '
        '"fail" refuses the build.',
        kind=Choice(("nearest", "fail")),
        build=True,
    )
    r_builds: dict = setting(
        {},
        'Other R versions: "X.Y" = URL of a Debian package of that R installing to '
        "/opt/R/<version> (as Posit's R builds do, e.g. https://cdn.posit.co/r/debian-12/pkgs/"
        "r-4.1.3_1_amd64.deb). Empty: only the R of the base image's Debian release.",
        kind=VERSION_URLS,
        build=True,
    )

    # -- Repositories ------------------------------------------------------------------------------
    allowed_clone_schemes: list = setting(
        ["https"],
        'URL schemes a repository may be cloned with; add "git" or "http" only '
        "for trusted networks (e.g. a loopback git server in tests).",
        kind=TextList(),
        section="Repositories",
    )
    internal_hosts: list = setting(
        [],
        "Hosts on loopback or private networks that launch links and environment files may "
        "name: an internal GitLab or conda mirror, the tests' own servers. Any other git host "
        "or channel that resolves to a loopback, private or link-local address is refused. "
        'An entry "host:port" ("[::1]:port" for IPv6) allows that port only; a bare host '
        "allows every port of it, so list host:port for a machine that runs other services "
        "(loopback above all): a launch link, submodule or redirect could name any of them.",
        kind=TextList(internal_host),
    )
    github_url: str = setting(
        "https://github.com", "Base URL for the `gh` provider (GitHub Enterprise, a mirror)."
    )
    gitlab_url: str = setting("https://gitlab.com", "Base URL for the `gl` provider.")
    gist_url: str = setting("https://gist.github.com", "Base URL for the `gist` provider.")
    spec_allow: list = setting(
        [],
        "Regular expressions; when any is given, a `<provider>/<spec>` must match one to be built.",
        kind=TextList(regex),
    )
    spec_deny: list = setting(
        [],
        "Regular expressions; a `<provider>/<spec>` matching any is refused.",
        kind=TextList(regex),
    )
    clone_timeout: int = setting(120, "Seconds cloning a repository may take.")
    clone_max_size: int = setting(
        "512M", "Largest checkout a clone may produce (bytes, or with a K/M/G suffix).", kind=Size()
    )
    clone_max_files: int = setting(
        100_000,
        "Most files and folders a checkout may hold (a repository of a million empty files "
        "is refused like one that is too large).",
    )
    clone_submodules: bool = setting(False, "Also fetch git submodules of a repository.")
    git_credentials: str = setting(
        "",
        "File (mode 0600, outside this settings file) of credentials for private repositories: "
        'one TOML table per host or host/path prefix, e.g. ["git.lab.example/group"] with '
        'token = "..." and optionally username = "...". git gets them from minibinder\'s '
        "credential helper, never in a URL. A repository an entry covers is private: launched "
        'only with access = "code" or "header" (refused at start-up with "open"), and shown '
        "as `private` in the exported launch log. Empty: public repositories only.",
        kind=Text(),
    )
    ref_cache_seconds: int = setting(
        60,
        "Seconds a resolved ref (branch or tag → commit) is reused before asking the "
        "git server again; 40 students clicking one link cause one lookup.",
        kind=Count(0),
    )

    # -- The service -------------------------------------------------------------------------------
    bind: str = setting(
        "127.0.0.1:8585",
        "Address and port `minibinder serve` listens on.",
        kind=Text(address),
        section="The service",
    )
    workers: int = setting(
        2,
        "gunicorn worker processes of `minibinder serve` (state is shared through SQLite; "
        "one of them runs the background jobs).",
    )
    threads: int = setting(
        64,
        "Threads per worker for minibinder's own pages; each open launch event stream holds "
        "one. A request takes one only once it has arrived whole; session traffic needs none: "
        "the front relays it without threads.",
    )
    request_header_timeout: float = setting(
        10.0,
        "Seconds a client has to send a request's headers (and a TLS handshake), from their "
        "first byte; a slower one is cut off.",
    )
    request_body_timeout: float = setting(
        300.0, "Seconds a client has to send a whole request body."
    )
    idle_connection_timeout: float = setting(
        75.0,
        "Seconds a kept-alive connection may wait for its next request, or a response wait "
        "for its client to read on.",
    )
    websocket_idle_timeout: float = setting(
        3600.0,
        "Seconds a WebSocket may carry nothing either way before it is closed (Jupyter pings "
        "its kernels' WebSockets every 30 s, so open notebooks stay).",
    )
    max_connections_per_client: int = setting(
        256,
        "Connections one client address may hold open in each worker; 0: no limit. Trusted "
        "proxies (trusted_proxies) are not limited. A browser needs about ten per open "
        "notebook; raise it for a room behind one NAT address.",
        kind=Count(0),
    )
    max_page_requests_per_client: int = setting(
        24,
        "Requests for minibinder's own pages (launch event streams included) one client may "
        "have in progress in each worker; more are answered 429, so one client cannot take "
        "every thread. Behind trusted_proxies the forwarded client counts; 0: no limit.",
        kind=Count(0),
    )
    public_url: str = setting(
        "",
        "Base URL users reach minibinder at (e.g. https://binder.example.org/, or "
        "https://lab.example.edu/binder/ behind the lab's web server: every page, link, cookie "
        "and session then lives under that path, which must end with /), used in `ready` "
        "events. Empty: taken from each request's Host header.",
        kind=Text(public_url),
    )
    admin_bind: str = setting(
        "",
        "Address and port of the operator's pages (/admin): their own listener, so they never "
        "share an origin with session content. Empty: bind's host with the next port "
        "(127.0.0.1:8586 by default).",
        kind=Text(address),
    )
    tls_certificate: str = setting(
        "",
        "PEM certificate (chain) to serve HTTPS directly, without a reverse proxy in front; "
        "both listeners use it. Empty: plain HTTP.",
        kind=Text(),
    )
    tls_key: str = setting("", "PEM private key of tls_certificate.", kind=Text())
    allowed_hosts: list = setting(
        [],
        "Host names (host or host:port) minibinder answers to besides public_url's host and the "
        "names of the address it listens on (always answered: loopback names, the bind "
        "address, any IP address on 0.0.0.0); other Host headers get 400.",
        kind=TextList(),
    )
    session_domain: str = setting(
        "",
        "Serve each session on an origin of its own, `<id>.<session_domain>` (same scheme and "
        "port), so that sessions cannot read each other through a user's browser: a wildcard "
        "DNS name for this server (binder.example.org: *.binder.example.org must reach it), or "
        "localhost on one machine (browsers send *.localhost to it). Empty: every session "
        "shares the main origin.",
        kind=Text(dns_name),
    )
    trusted_proxies: list = setting(
        [],
        "Addresses or networks of reverse proxies in front of minibinder (the lab's nginx, "
        'e.g. ["127.0.0.1"]): only from these are X-Forwarded-For, X-Forwarded-Proto and '
        "Forwarded believed, for the client's address (launch log, per-client limits) and "
        "scheme. Empty: forwarding headers are ignored.",
        kind=TextList(network),
    )
    access: str = setting(
        "open",
        'Who may launch: "open" (anyone, as on mybinder.org), "code" (people who know the '
        'access code: a workshop), "header" (people the lab\'s authenticating proxy names in '
        "auth_header, from trusted_proxies only). Sessions are guarded by their own tokens.",
        kind=Choice(("open", "code", "header")),
    )
    access_code_hash: str = setting(
        "",
        "The access code, hashed: `minibinder access-code` makes this line from the code "
        "(`--write FILE` puts it into a settings file). In a shell, quote it with single "
        "quotes: double quotes eat its $ signs.",
        kind=Text(code_hash),
    )
    access_code_attempts: int = setting(
        10, "Wrong access codes one browser may try in ten minutes before it must wait."
    )
    access_code_attempts_per_address: int = setting(
        100,
        "Wrong access codes all browsers behind one address (a room behind NAT) may try in ten "
        "minutes; past it that address waits, right codes included.",
    )
    auth_header: str = setting(
        "X-Forwarded-User",
        "Header in which the authenticating proxy (oauth2-proxy, Shibboleth, mod_auth_*) names "
        'the user, with access = "header".',
    )
    auth_users: list = setting(
        [],
        'Users who may launch (access = "header"); with auth_email_domains empty too, '
        "anyone the proxy names.",
        kind=TextList(),
    )
    auth_email_domains: list = setting(
        [], 'E-mail domains whose users may launch (access = "header").', kind=TextList()
    )
    private_repo_users: list = setting(
        [],
        'Users who may launch private repositories (git_credentials) with access = "header"; '
        "with private_repo_domains empty too, nobody may (refused at start-up).",
        kind=TextList(),
    )
    private_repo_domains: list = setting(
        [],
        'E-mail domains whose users may launch private repositories (access = "header").',
        kind=TextList(),
    )
    admin_users: list = setting(
        [],
        "Users the proxy names who open the operator's pages without the admin token.",
        kind=TextList(),
    )
    cors_allow_origin: str = setting(
        "",
        'Access-Control-Allow-Origin sent on the /build API ("*" for thebe on other '
        "sites, or one origin such as https://thebe.example.org: no path, no trailing "
        "slash). Empty: same origin only.",
        kind=Text(origin),
    )
    jupyter_allow_origin: str = setting(
        "",
        "Jupyter's allow_origin in sessions. Empty: only the origin the session is served "
        'on; "*" lets thebe and Jupyter Book pages on other sites use a session they hold the '
        "token of (an explicit opt-in).",
        kind=Text(origin),
    )
    admin_token: str = setting(
        "",
        "Token for the operator's pages (/admin). Empty: a random token is made and "
        "stored in the data directory (`minibinder admin-token` prints it).",
    )

    # -- Sessions ----------------------------------------------------------------------------------
    session_memory_limit: int = setting(
        "2G",
        "Memory limit of a session (memory and swap together: no swap).",
        kind=Size(),
        section="Sessions",
    )
    session_memory_reservation: int = setting(
        "1G", "Memory reserved for each session (at most session_memory_limit).", kind=Size()
    )
    session_cpu_limit: float = setting(1.0, "CPUs a session may use at most.")
    session_disk_limit: int = setting(
        "5G",
        "What a session may write to disk (its container's writable layer and the volumes its "
        "image declares), checked on every culler round: past it the session is stopped, the "
        "reason shown.",
        kind=Size(),
    )
    session_pids_limit: int = setting(512, "Processes and threads a session may run at most.")
    session_ulimits: dict = setting(
        {},
        "Resource limits (soft and hard alike) given to every session, e.g. "
        "{ nofile = 20000, nproc = 32768 }; empty: the engine's defaults. Rootful Podman "
        "asks for nofile = 1048576 unless told, which fails where root may not raise its "
        "hard limits: give values within those of the Podman service.",
        kind=ULIMITS,
    )
    session_reach: str = setting(
        "auto",
        'Where the proxy reaches a session: "network" at its address on session_network (a '
        'rootful engine on this machine routes there), "published" at a port the engine '
        "publishes on its host's loopback only (rootless Docker, Podman, Docker Desktop), "
        '"auto": decided from the engine at start-up. Recorded with each session.',
        kind=Choice(("auto", "network", "published")),
    )
    placement: str = setting(
        "local",
        'Where sessions run: "local" on this machine\'s engine, "swarm" as one-replica services '
        "of the Docker Swarm this machine manages (images go through `registry`; see the "
        'README, "Outgrowing one machine"). Sessions are then reached at a port published on '
        "their node.",
        kind=Choice(("local", "swarm")),
    )
    registry: str = setting(
        "",
        'The registry images go through when placement = "swarm": pushed there after the '
        "build, pulled by the nodes by digest (host or host:port). Empty: none (required in "
        "swarm placement).",
        kind=Text(_one_registry),
    )
    registry_credentials_file: str = setting(
        "",
        "A file holding the registry's user name and password as `user:password` on one line "
        "(readable by minibinder only; never logged). Empty: the registry needs none.",
        kind=Text(),
    )
    session_network: str = setting(
        "minibinder-sessions",
        "Docker network sessions run on (created if missing; sessions "
        "on it cannot reach each other).",
    )
    launch_timeout: int = setting(
        60, "Seconds a session may take to answer after its container started."
    )
    egress_filter: str = setting(
        "auto",
        "Firewall rules that keep builds and sessions from reaching the host, private and "
        'link-local addresses: "auto" installs them when minibinder may (it runs as root) and '
        'warns otherwise, "required" refuses to start without them, "off" leaves them out.',
        kind=Choice(("auto", "required", "off")),
    )
    allow_unlimited_sessions: bool = setting(
        False,
        "Serve on a public address although the container engine enforces no memory, CPU or "
        "process limits (rootless Docker without cgroups): one session can then take the "
        "whole machine. Without it, such an engine is refused unless bind is loopback.",
    )
    egress_allow: list = setting(
        ["pypi.org", "files.pythonhosted.org", "registry.npmjs.org", "deb.debian.org"],
        "Addresses, networks or host names builds and sessions may reach even when private "
        "(an internal package mirror, an intercepting proxy); the hosts of package_index_url, "
        "npm_registry_url, r_package_repository, conda_channel_alias and conda_channels are "
        "added. Names are resolved whenever the rules are checked.",
        kind=EgressList(),
    )

    # -- Culling -----------------------------------------------------------------------------------
    idle_timeout: int = setting(
        600,
        "Seconds without activity (browser traffic, running kernels) before a session is stopped.",
        section="Culling",
    )
    max_age: int = setting(21600, "Seconds a session may live at most (6 hours).")
    cpu_budget: int = setting(
        3600, "CPU-seconds a session may use in all (1 CPU-hour), read from its cgroup."
    )
    cull_warning: int = setting(
        120,
        "Seconds before an idle or age limit at which the session shows a warning (shorter "
        "than idle_timeout and max_age).",
    )
    cull_interval: int = setting(15, "Seconds between two runs of the culler.")

    # -- Capacity ----------------------------------------------------------------------------------
    max_sessions: int = setting(
        0,
        "Sessions running at once on this host; 0: as many as fit the host's memory "
        "(memory / session_memory_reservation).",
        kind=Count(0),
        section="Capacity",
    )
    max_sessions_per_repo: int = setting(100, "Sessions of one repository running at once.")
    repo_quotas: dict = setting(
        {},
        "Per-repository session limits overriding max_sessions_per_repo: "
        "regular expression on `<provider>/<spec>` = limit.",
        kind=LIMITS,
    )
    max_sessions_per_client: int = setting(
        10,
        "Sessions one person may have running at once: a signed-in user (access = header), "
        "else a browser (an anonymous signed cookie minted on the first page); 0: no limit.",
        kind=Count(0),
    )
    max_sessions_per_address: int = setting(
        40,
        "Sessions all clients behind one address may have running at once (a classroom behind "
        "one NAT address is forty browsers), and what a client that sends no cookie (a script, "
        "an embed on another site) is counted against; 0: no limit.",
        kind=Count(0),
    )
    max_builds_per_client: int = setting(
        3,
        "Images one client may wait for or have built at once (a room waiting for the same "
        "image counts it once); 0: no limit.",
        kind=Count(0),
    )
    max_streams_per_client: int = setting(
        20,
        "Launch event streams one client may hold open at once (a client known only by its "
        "address: as many as max_sessions_per_address, if that is more); 0: no limit.",
        kind=Count(0),
    )
    memory_headroom: int = setting(
        "1G", "Memory kept free for the host and minibinder when admitting sessions.", kind=Size()
    )
    warm_pool: dict = setting(
        {},
        "Sessions kept started and unclaimed, ready to hand out at once: "
        '`<provider>/<spec>` = how many (e.g. "gh/org/workshop/HEAD" = 40). A size set on the '
        "operator's page (or emptied by `stop --all`) holds until the file's value for that "
        "pool changes.",
        kind=COUNTS,
    )

    # -- Kept work --------------------------------------------------------------------------------
    keep_work: str = setting(
        "off",
        "Keep a person's work when their session ends (cull, age, CPU budget, Shut Down, the "
        "operator, a restart) and put it back at their next launch of the same repository: "
        '"off" (as mybinder.org: everything is deleted), "browser" (an anonymous signed '
        'cookie says whose it is), "user" (the name the sign-in proxy gives; needs access = '
        '"header"). Files added or changed under the home are kept, 0600, under the data '
        "directory's kept-work/.",
        kind=Choice(("off", "browser", "user")),
        section="Kept work",
    )
    keep_work_hours: float = setting(
        24.0, "Hours kept work is kept after the session ended; then it is deleted."
    )
    keep_work_limit: int = setting(
        "200M",
        "Most one person's kept work of one repository may hold; the largest files are left "
        "out past it (and listed on the next launch page).",
        kind=Size(),
    )
    keep_work_total: int = setting(
        "10G",
        "Most all kept work on this host may hold; past it, the oldest is deleted first.",
        kind=Size(),
    )

    # -- Disk and privacy --------------------------------------------------------------------------
    disk_free_floor: int = setting(
        "5G",
        "Builds are refused when the Docker data disk has less free space than this.",
        kind=Size(),
        section="Disk and privacy",
    )
    image_gc_high: int = setting(
        85,
        "Disk use (percent) at which unused images are removed, least recently launched first.",
        kind=Count(1, 100),
    )
    image_gc_low: int = setting(
        75,
        "Disk use (percent) image removal brings the disk down to (at most image_gc_high).",
        kind=Count(1, 100),
    )
    docker_root: str = setting(
        "/var/lib/docker", "Docker's data directory, whose disk the watermarks and floor measure."
    )
    ip_retention_days: int = setting(
        30, "Days client IP addresses are kept in the launch log before they are erased."
    )

    @property
    def path_prefix(self) -> str:
        """The path minibinder is served under ("/binder"), from public_url; "" at the root."""
        return urlsplit(self.public_url).path.rstrip("/") if self.public_url else ""

    @property
    def admin_address(self) -> str:
        """Where the operator's pages listen: `admin_bind`, or bind's host and the next port."""
        if self.admin_bind:
            return self.admin_bind
        host, _, port = self.bind.rpartition(":")
        return f"{host}:{int(port) + 1}" if port.isdigit() else self.bind

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir or default_data_dir()).expanduser()

    def python_versions(self) -> list[str]:
        return sorted(self.base_images, key=lambda v: tuple(int(p) for p in v.split(".")))

    def build_hash(self) -> str:
        """Hash of everything in the settings that changes what a built image contains."""
        values = {f.name: getattr(self, f.name) for f in fields() if f.metadata["build"]}
        if self.extra_ca_file:
            values["extra_ca_file"] = hashlib.sha256(read_extra_ca(self)).hexdigest()
        text = json.dumps(values, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def fields() -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(Config)


def read_extra_ca(config: Config) -> bytes:
    if not config.extra_ca_file:
        return b""
    try:
        return Path(config.extra_ca_file).expanduser().read_bytes()
    except OSError as error:
        raise ConfigError(
            f"extra_ca_file: cannot read {config.extra_ca_file}: {error.strerror}"
        ) from None
