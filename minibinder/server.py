"""The running service (`minibinder serve`): in every worker, the front (proxy/front.py) on the
TCP listeners, relaying sessions itself and everything else to the web app under gunicorn's
threaded worker on a unix socket; the background jobs in whichever worker wins the scheduler
lock."""

from __future__ import annotations

import dataclasses
import os
import re
import resource
import secrets
import shutil
import ssl
import sys
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from .config import Config, check_listeners
from .docker_client import Docker
from .errors import ConfigError
from .identity import instance_id
from .networks import ensure_egress
from .proxy.front import Front, Limits, Listener, bind_listener
from .store import Store

TOKEN = re.compile(r"((?:^|[?&;])(?:token|_xsrf|csrf)=)[^&;\s\"]*", re.IGNORECASE)


def scrub(text: str) -> str:
    """A request line or URL with every token's value replaced."""
    return TOKEN.sub(r"\1[secret]", text)


class ScrubbingLogger(Logger):
    """gunicorn's logger, with tokens taken out of request lines, query strings and referrers
    before the access log sees them."""

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "q", "f", "U"):
            if isinstance(atoms.get(key), str):
                atoms[key] = scrub(atoms[key])
        return atoms


class _Gunicorn(BaseApplication):
    def __init__(self, config: Config, listeners: list[Listener]):
        self.minibinder_config = config
        self.listeners = listeners
        self.app_socket = config.data_path / "app.sock"
        # The front signs the client's address with it; the workers inherit it.
        self.front_key = secrets.token_urlsafe(32)
        super().__init__()

    def load_config(self) -> None:
        config = self.minibinder_config
        # gthread holds each event stream in a thread for as long as it lasts; only the front
        # talks to it, so no slow client ever holds one.
        for name, value in {
            "bind": [f"unix:{self.app_socket}"],
            "umask": 0o077,  # the socket: for minibinder's own user only
            "worker_class": "gthread",
            "workers": config.workers,
            "threads": config.threads,
            "timeout": 60,
            "graceful_timeout": 10,
            "keepalive": 75,
            "accesslog": "-",
            "errorlog": "-",
            "logger_class": ScrubbingLogger,
            # One per installation: several on one host must not replace each other's.
            "control_socket": str(config.data_path / "gunicorn.ctl"),
            "worker_connections": max(1000, config.threads * 4),
            # gunicorn believes X-Forwarded-Proto from loopback and unix sockets by default;
            # minibinder decides whom to believe itself (trusted_proxies, web/clients.py).
            "forwarded_allow_ips": "",
            "secure_scheme_headers": {},
        }.items():
            self.cfg.set(name, value)

    def load(self) -> Flask:
        # Imported in the worker, after run_server set PROMETHEUS_MULTIPROC_DIR: metrics are
        # created at import time and pick their storage then.
        from .jobs import JobRunner
        from .services import create_services
        from .sessions.helpers import notice_script
        from .web import create_app
        from .web.clients import is_trusted, trusted_networks

        config = self.minibinder_config
        services = create_services(config)
        JobRunner(services).start()
        app = create_app(config, services=services, front_key=self.front_key)
        trusted = trusted_networks(config.trusted_proxies)
        limits = Limits.of(config, exempt=lambda address: is_trusted(address, trusted))
        front = Front(app.wsgi_app, services.routes, str(self.app_socket), self.front_key,
                      limits, config.path_prefix, notice_script)  # fmt: skip
        front.start(self.listeners, _tls_context(config))
        return app


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
        raise ConfigError(f"{setting}: cannot listen on {address}: {error.strerror or error} "
                          "(is another minibinder running there?)") from None  # fmt: skip


def run_server(config: Config, bind: str, admin_bind: str = "") -> None:
    config.data_path.mkdir(parents=True, exist_ok=True)
    # Every worker writes its metrics here; /metrics adds them up.
    metrics_dir = config.data_path / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    # The address actually listened on decides, among others, which Host headers are answered.
    config = check_listeners(
        dataclasses.replace(config, bind=bind, admin_bind=admin_bind or config.admin_bind)
    )
    # The schema and WAL before the workers race; no request of an earlier run is open now.
    Store(config.data_path / "minibinder.sqlite").forget_requests()
    # Before any session or build can start; the jobs check them again every minute.
    ensure_egress(config, Docker.lazy(), instance_id(config))
    _raise_open_files_limit()
    # Bound here, before the workers fork: a taken port is said at once, and every worker's
    # front accepts on the same sockets.
    listeners = [_listen(config.bind, "bind", admin=False),
                 _listen(config.admin_address, "admin_bind", admin=True)]  # fmt: skip
    scheme = "https" if config.tls_certificate else "http"
    print(f"minibinder listens at {scheme}://{config.bind}/ (the operator's pages: "
          f"{scheme}://{config.admin_address}/admin/)", file=sys.stderr, flush=True)  # fmt: skip
    _Gunicorn(config, listeners).run()
