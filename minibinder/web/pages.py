"""Pages for people: home (form and badges), the launch page, health, versions, metrics."""

from __future__ import annotations

import shutil

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    render_template,
    request,
    send_from_directory,
)

from .. import __version__
from ..errors import QuotaExceeded, SpecError
from ..metrics import render_metrics
from ..repos.providers import PROVIDERS, parse_spec, spec_from_form
from ..sessions.admission import Ask
from .api import host_url, raw_spec, services
from .browsers import who_asks
from .links import launch_link, session_path

blueprint = Blueprint("pages", __name__)


@blueprint.get("/")
def home():
    form = {key: request.args.get(key, "") for key in ("provider", "repo", "ref", "path", "ui")}
    form["provider"] = form["provider"] or "gh"
    form["ui"] = form["ui"] or "lab"
    badges, error = None, None
    if form["repo"]:
        try:
            spec = spec_from_form(form["provider"], form["repo"], form["ref"])
            badges = launch_link(host_url(), spec, form["path"], form["ui"])
        except SpecError as problem:
            error = str(problem)
    providers = {key: provider.display_name for key, provider in PROVIDERS.items()}
    return render_template(
        "home.html",
        form=form,
        providers=providers,
        badges=badges,
        error=error,
        version=__version__,
        docker_ok=services().docker.ping(),
    )


def unavailable(title: str, message: str, status: int, retry_after: int | None = None):
    response = current_app.make_response(
        (render_template("error.html", title=title, message=message, version=__version__), status)
    )
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


@blueprint.get("/v2/<provider>/<path:spec>")
def launch(provider: str, spec: str):
    try:
        landing = session_path(
            request.args.get("urlpath", ""),
            request.args.get("labpath", ""),
            request.args.get("filepath", ""),
        )
    except SpecError as error:
        return unavailable("Bad launch link", str(error), 400)
    provider_and_spec = raw_spec("/v2/")
    app_services = services()
    try:
        source = parse_spec(provider_and_spec, app_services.config)
        if not app_services.docker.ping():
            return unavailable(
                "Launching is unavailable right now",
                "This server's Docker daemon does not answer. Running sessions "
                "come back when it does; please try again in a few minutes.",
                503,
                60,
            )
        asker = who_asks()
        app_services.sessions.admit(
            Ask.session(provider_and_spec, source.repo_url, asker.client, asker.address)
        )
    except SpecError as error:
        return unavailable("Bad launch link", str(error), 400)
    except QuotaExceeded as error:
        return unavailable("This server is busy", str(error), 429, error.retry_after)
    return render_template(
        "loading.html",
        build_url=f"{request.script_root}/build/{provider_and_spec}",
        landing=landing,
        spec=provider_and_spec,
        version=__version__,
    )


@blueprint.get("/badge_logo.svg")
def badge_logo():
    return send_from_directory(
        current_app.static_folder or "", "badge_logo.svg", mimetype="image/svg+xml", max_age=86400
    )


@blueprint.get("/health")
def health():
    app_services = services()
    docker_ok = app_services.docker.ping()
    disk = shutil.disk_usage(app_services.config.data_path)
    checks = {"docker": docker_ok, "disk_free_bytes": disk.free}
    status = 200 if docker_ok else 503
    body = {
        "status": "ok" if status == 200 else "unhealthy",
        "version": __version__,
        "checks": checks,
    }
    if not docker_ok:
        body["message"] = "the Docker daemon does not answer"
    return jsonify(body), status


@blueprint.get("/versions")
def versions():
    return jsonify({"minibinder": __version__, "builder": f"minibinder {__version__}"})


@blueprint.get("/metrics")
def metrics():
    app_services = services()
    store = app_services.store

    def running_by_node() -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in store.sessions("running"):
            counts[record.node or "-"] = counts.get(record.node or "-", 0) + 1
        return counts

    swarm = app_services.config.placement == "swarm"
    body, content_type = render_metrics(
        lambda: len(store.sessions("running")), running_by_node if swarm else None
    )
    return Response(body, content_type=content_type)
