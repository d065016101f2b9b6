"""The running service (`minibinder serve`): gunicorn's arbiter forks and watches the workers;
in each, the front (proxy/front.py) reads every request on the TCP listeners, relays sessions
itself and calls the web app for everything else; the background jobs run in whichever worker
wins the scheduler lock."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import resource
import shutil
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from gunicorn import sock as gunicorn_sock
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker

from .config import Config
from .datadir import make_private
from .docker_client import Docker
from .engines import REACH_TEXT, check_limits_policy, decide_reach
from .errors import ConfigError
from .events import Event
from .identity import agent_key, cookie_secret, instance_id
from .networks import ensure_egress
from .proxy.connection import Limits
from .proxy.front import Front
from .proxy.listeners import Listener, bind_listener
from .settings_load import check_listeners
from .store import Store

ACCESS_LOG = logging.getLogger("gunicorn.access")
TOKEN = re.compile(r"((?:^|[?&;])(?:token|_xsrf|csrf)=)[^&;\s\"]*", re.IGNORECASE)


def scrub(text: str) -> str:
    """A request line or URL with every token's value replaced."""
    return TOKEN.sub(r"\1[secret]", text)


def access_line(environ: dict, status: int, sent: int, seconds: float) -> None:
    """One access-log line per request the app answered, tokens taken out."""
    target = scrub(environ.get("RAW_URI", ""))
    referrer = scrub(environ.get("HTTP_REFERER", "-"))
    ACCESS_LOG.info(
        '%s "%s %s %s" %d %d "%s" %.3f',
        environ.get("REMOTE_ADDR", "-"),
        environ.get("REQUEST_METHOD", ""),
        target,
        environ.get("SERVER_PROTOCOL", ""),
        status,
        sent,
        referrer,
        seconds,
    )


class FrontWorker(Worker):
    """A gunicorn worker whose requests are read by minibinder's front (proxy/front.py), not by
    gunicorn: gunicorn forks, watches and restarts the workers; the front reads every request
    once and calls the app, already parsed, in a bounded pool of threads."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.stopping = threading.Event()

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        self.stopping.set()  # the loop below goes at once, not at its next tick

    def run(self) -> None:
        front: Front = self.wsgi  # what _Gunicorn.load made
        server: _Gunicorn = self.app
        front.start(server.listeners, _tls_context(server.minibinder_config))
        while self.alive:
            self.notify()
            if os.getppid() != self.ppid:
                break
            self.stopping.wait(1.0)
        front.stop()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while front.busy() and time.monotonic() < deadline:
            self.notify()
            time.sleep(0.2)


class _Gunicorn(BaseApplication):
    def __init__(self, config: Config, listeners: list[Listener]):
        self.minibinder_config = config
        self.listeners = listeners
        super().__init__()

    def load_config(self) -> None:
        config = self.minibinder_config
        for name, value in {
            "bind": [config.bind, config.admin_address],  # bound by run_server: named for logs
            "worker_class": "minibinder.server.FrontWorker",
            "workers": config.workers,
            "timeout": 60,
            "graceful_timeout": 10,
            "accesslog": "-",
            "errorlog": "-",
            # One per installation: several on one host must not replace each other's.
            "control_socket": str(config.data_path / "gunicorn.ctl"),
            # Called by the arbiter once its workers are gone, on a clean stop (SIGTERM, ^C).
            "on_exit": lambda arbiter: _stop_unclaimed(config),
        }.items():
            self.cfg.set(name, value)

    def load(self) -> Front:
        # Imported in the worker, after run_server set PROMETHEUS_MULTIPROC_DIR: metrics are
        # created at import time and pick their storage then.
        from .jobs import JobRunner
        from .metrics import note_front
        from .services import create_services
        from .sessions.helpers import notice_script
        from .web import create_app
        from .web.clients import BadForwarding, client_of, is_trusted, trusted_networks

        config = self.minibinder_config
        services = create_services(config)
        JobRunner(services).start()
        app = create_app(config, services=services)
        trusted = trusted_networks(config.trusted_proxies)

        def client_key(peer: str, headers: list[tuple[bytes, bytes]]) -> str:
            """Who asks: behind a trusted proxy, the client it forwards for."""
            if not trusted or not is_trusted(peer, trusted):
                return peer
            wanted = {b"x-forwarded-for", b"forwarded"}
            said = {
                n.decode("latin-1").lower(): v.decode("latin-1")
                for n, v in headers
                if n.lower() in wanted
            }
            try:
                return client_of(peer, said, "http", trusted).address
            except BadForwarding:
                return peer

        limits = Limits.of(config, exempt=lambda address: is_trusted(address, trusted))
        return Front(
            app.wsgi_app,
            services.routes,
            limits,
            config.threads,
            config.path_prefix,
            notice_script,
            client_key,
            access_line,
            note_front,
        )

    def run(self) -> None:
        arbiter = Arbiter(self)
        # The listeners are minibinder's own (bound before forking, with errors that name the
        # setting); gunicorn hands them to its workers as they are.
        arbiter.LISTENERS = [
            _gunicorn_socket(listener, self.cfg, arbiter.log) for listener in self.listeners
        ]
        arbiter.run()


def _gunicorn_socket(listener: Listener, cfg: Any, log: Any) -> Any:
    kind = (
        gunicorn_sock.TCP6Socket
        if listener.sock.family == socket.AF_INET6
        else (gunicorn_sock.TCPSocket)
    )
    # gunicorn closes the descriptor it is given: it gets a copy of its own.
    return kind(listener.sock.getsockname(), cfg, log, fd=os.dup(listener.sock.fileno()))


def listening_line(config: Config) -> str:
    """The start-up line: where users and the operator reach this service (under public_url's
    path, when it has one)."""
    scheme = "https" if config.tls_certificate else "http"
    prefix = config.path_prefix
    return (
        f"minibinder listens at {scheme}://{config.bind}{prefix}/ (the operator's pages: "
        f"{scheme}://{config.admin_address}{prefix}/admin/)"
    )


def _stop_unclaimed(config: Config) -> None:
    """Warm sessions nobody claimed are the pool's, not anybody's work: they go with `serve`
    (the next start fills the pool again). Claimed sessions stay, to be re-adopted."""
    from .services import create_services
    from .warm_pool import stop_unclaimed

    try:
        stopped = stop_unclaimed(create_services(config), "serve stopped")
    except Exception as error:  # the engine went away: the next start cleans up
        print(f"Warning: unclaimed warm sessions not stopped: {error}", file=sys.stderr)
        return
    if stopped:
        plural = "" if stopped == 1 else "s"
        print(f"stopped {stopped} unclaimed warm session{plural}", file=sys.stderr, flush=True)


def _make_base_image(config: Config, show: Callable[[Iterator[Event]], object] | None) -> None:
    from .builds.base_image import ensure_base_image
    from .errors import DockerUnavailable

    try:
        events = ensure_base_image(config, Docker.connect(timeout=30))
        if show is not None:
            show(events)
        else:
            for _ in events:
                pass
    except DockerUnavailable as error:  # serve anyway: /health and doctor say what is wrong
        print(f"Warning: {error}", file=sys.stderr, flush=True)


def _tls_context(config: Config) -> ssl.SSLContext | None:
    if not config.tls_certificate:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_certificate, config.tls_key)
    return context


def _raise_open_files_limit() -> None:
    """Each relayed connection is two descriptors: take all the kernel allows this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _listen(address: str, setting: str, admin: bool) -> Listener:
    try:
        return Listener(bind_listener(address), admin)
    except OSError as error:
        raise ConfigError(
            f"{setting}: cannot listen on {address}: {error.strerror or error} "
            "(is another minibinder running there?)"
        ) from None


def _log_to_stderr() -> None:
    """minibinder's own log lines (info and up: sessions stopped and why, images removed, the
    warm pool's changes) beside gunicorn's, in the same form; workers inherit it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
            "%Y-%m-%d %H:%M:%S %z",
        )
    )
    logger = logging.getLogger("minibinder")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False


def run_server(
    config: Config,
    bind: str,
    admin_bind: str = "",
    show: Callable[[Iterator[Event]], object] | None = None,
) -> None:
    """Serve until stopped. `show` displays the progress of making the base image, when the
    engine lacks it (the first serve after an install)."""
    _log_to_stderr()
    make_private(config.data_path)  # and umask 077 for everything made from here on
    # Every worker writes its metrics here; /metrics adds them up. Set before anything imports
    # prometheus_client, which picks its storage once, at import.
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before serve set its directory")
    metrics_dir = config.data_path / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    _make_base_image(config, show)
    # The address actually listened on decides, among others, which Host headers are answered.
    config = check_listeners(
        dataclasses.replace(config, bind=bind, admin_bind=admin_bind or config.admin_bind)
    )
    # The schema and WAL before the workers race; no request of an earlier run is open now.
    Store(config.data_path / "minibinder.sqlite").forget_requests()
    # Before any session or build can start; the jobs check them again every minute.
    docker = Docker.lazy()
    ensure_egress(config, docker, instance_id(config))
    cookie_secret(config)  # made once here: workers that raced to make it would disagree
    if config.placement == "swarm":
        agent_key(config)  # made before the workers fork: the nodes' agents sign with it
    facts = docker.engine_facts()
    engine_warning = (
        check_limits_policy(facts, bind, config.allow_unlimited_sessions) if facts else ""
    )
    _raise_open_files_limit()
    # Bound here, before the workers fork: a taken port is said at once, and every worker's
    # front accepts on the same sockets.
    listeners = [
        _listen(config.bind, "bind", admin=False),
        _listen(config.admin_address, "admin_bind", admin=True),
    ]
    if facts is not None:
        reach = decide_reach(facts, config.session_reach, config.placement)
        print(
            f"container engine: {facts.label}; sessions reached by {REACH_TEXT[reach]}"
            + (f"; {engine_warning}" if engine_warning else ""),
            file=sys.stderr,
            flush=True,
        )
    print(listening_line(config), file=sys.stderr, flush=True)
    _Gunicorn(config, listeners).run()
