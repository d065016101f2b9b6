"""The Flask application factory: services, blueprints, and the proxy in front of them."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from ..config import Config, load_config
from ..docker_client import Docker
from ..flow import Services
from ..notices import SessionHelpers
from ..proxy import ProxyMiddleware, strip_own_cookies
from ..routes import RouteTable
from ..sessions import Sessions
from ..store import Store

ROOT = Path(__file__).resolve().parents[2]


def create_services(config: Config, docker: Docker | None = None) -> tuple[Services, RouteTable]:
    store = Store(config.data_path / "minibinder.sqlite")
    routes = RouteTable(store)
    docker = docker or Docker.lazy()
    return Services(config, store, Sessions(config, docker, store, routes), docker), routes


def create_app(config: Config | None = None, docker: Docker | None = None,
               start_jobs: bool = False) -> Flask:
    """The app; `start_jobs` (as `minibinder serve` does) also starts the background jobs in
    whichever process wins the scheduler lock."""
    config = config or load_config()
    app = Flask("minibinder", template_folder=str(ROOT / "templates"),
                static_folder=str(ROOT / "static"))
    services, routes = create_services(config, docker)
    app.extensions["minibinder"] = services
    if start_jobs:
        from ..scheduler import JobRunner

        JobRunner(services).start()
    from . import admin, api, pages

    app.register_blueprint(pages.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(admin.blueprint)
    # The proxy sits outside Flask: session traffic never pays for routing or request objects.
    helpers = SessionHelpers(services.sessions, strip_own_cookies)
    app.wsgi_app = ProxyMiddleware(app.wsgi_app, routes, helpers)  # type: ignore[method-assign]
    return app
