"""The web face: the Flask application factory, its blueprints (pages, the event-stream API,
the operator's pages), and the session proxy in front of them.

May import everything below it (launch, services and the domains); nothing imports web except
the server that runs it.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, request

from ..config import Config
from ..docker_client import Docker
from ..identity import cookie_secret
from ..proxy.dispatch import SessionDispatch
from ..proxy.headers import strip_own_cookies
from ..services import Services, create_services
from ..sessions.helpers import HELPER_PATH, SessionHelpers
from ..settings_load import load_config
from .access import AccessControl
from .browsers import give_browser_cookie
from .clients import ClientAddress
from .hosts import HostCheck
from .origins import ListenerRouting, SessionOrigins
from .prefix import PathPrefix


def package_folder(name: str) -> str:
    """Where `templates` or `static` is: inside the installed package (the wheel maps the
    repository's top-level folders there), else, for a checkout or an editable install, the
    repository's own top-level folder."""
    installed = Path(__file__).resolve().parents[1] / name
    if installed.is_dir():
        return str(installed)
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / name).is_dir():
        return str(checkout / name)
    raise RuntimeError(
        f"minibinder's {name}/ folder is missing from {installed.parent}; reinstall the package"
    )


def create_app(
    config: Config | None = None, docker: Docker | None = None, services: Services | None = None
) -> Flask:
    config = config or load_config()
    app = Flask(
        "minibinder",
        template_folder=package_folder("templates"),
        static_folder=package_folder("static"),
    )
    services = services or create_services(config, docker)
    app.extensions["minibinder"] = services
    from . import access_form, admin, agents, api, pages

    secret = cookie_secret(config)
    app.config["MINIBINDER_COOKIE_SECRET"] = secret

    @app.after_request
    def browser_cookie(response: Response) -> Response:
        """Pages and launches give a browser its anonymous id (web/browsers.py)."""
        if request.method == "GET" and request.blueprint in ("pages", "api", "access"):
            give_browser_cookie(request, response, secret)
        return response

    app.register_blueprint(pages.blueprint)
    app.register_blueprint(access_form.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(admin.blueprint)
    app.register_blueprint(agents.blueprint)
    # Sessions are decided outside Flask (the front relays them): no routing, no request objects.
    helpers = SessionHelpers(services.sessions, strip_own_cookies)
    proxied = SessionDispatch(
        app.wsgi_app, services.routes, helper=helpers, helper_path=HELPER_PATH
    )
    # Every request, pages and sessions alike, passes the Host check first, then goes only
    # where its listener allows: the operator's pages on their own, never beside sessions.
    # Launching may need an access code or a name from the lab's sign-in proxy.
    guarded = AccessControl(SessionOrigins(proxied, config), config, secret)
    routed = ListenerRouting(guarded, config)
    # The client's own address and scheme first (from a trusted proxy's headers, if any).
    checked = PathPrefix(HostCheck(routed, config), config)  # under public_url's path, if any
    app.wsgi_app = ClientAddress(checked, config)  # type: ignore[method-assign]
    return app
