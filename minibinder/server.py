"""The running service (`minibinder serve`): the web app under gunicorn's threaded worker, and
the background jobs in whichever worker wins the scheduler lock."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from .config import Config, check_listeners
from .docker_client import Docker
from .identity import instance_id
from .networks import ensure_egress
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
    def __init__(self, config: Config, bind: str):
        self.minibinder_config = config
        self.bind = bind
        super().__init__()

    def load_config(self) -> None:
        config = self.minibinder_config
        # gthread holds each SSE stream and WebSocket in a thread for as long as it lasts.
        for name, value in {
            "bind": [self.bind, config.admin_address],
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
            # gunicorn believes X-Forwarded-Proto from loopback by default; minibinder decides
            # whom to believe itself (trusted_proxies, web/clients.py).
            "forwarded_allow_ips": "",
        }.items():
            self.cfg.set(name, value)
        if config.tls_certificate:  # HTTPS on both listeners; checked by check_listeners
            self.cfg.set("certfile", config.tls_certificate)
            self.cfg.set("keyfile", config.tls_key)

    def load(self) -> Flask:
        # Imported in the worker, after run_server set PROMETHEUS_MULTIPROC_DIR: metrics are
        # created at import time and pick their storage then.
        from .jobs import JobRunner
        from .services import create_services
        from .web import create_app

        config = self.minibinder_config
        services = create_services(config)
        JobRunner(services).start()
        return create_app(config, services=services)


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
    _Gunicorn(config, bind).run()
