"""Pages for people: home (form and badges; with keep_work, the policy and "Delete my kept
work"), the launch page, health, versions, metrics."""

from __future__ import annotations

import hmac
import shutil

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)

from .. import __version__
from ..errors import QuotaExceeded, SpecError
from ..metrics import render_metrics
from ..repos.providers import PROVIDERS, parse_spec, spec_from_form
from ..sessions.admission import Ask
from ..sessions.keeping import describe_size, owner_of
from .api import host_url, raw_spec, services
from .browsers import cross_site, who_asks, work_form_token
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
    config = services().config
    asker = who_asks()
    owner = owner_of(config.keep_work, asker.user, asker.browser)
    return render_template(
        "home.html",
        keep_work=config.keep_work,
        work_token=work_form_token(_secret(), owner) if owner else "",
        keep_work_hours=f"{config.keep_work_hours:g}",
        keep_work_limit=describe_size(config.keep_work_limit),
        deleted=request.args.get("deleted", type=int),  # a count, or nothing is said
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


def _secret() -> str:
    return current_app.config["MINIBINDER_COOKIE_SECRET"]


@blueprint.post("/work/delete")
def delete_my_work():
    """ "Delete my kept work": everything kept for this browser (or signed-in user). Only from
    the home page's own form: another site's post is refused (its Origin, and the form's token,
    which is tied to the owner)."""
    app_services = services()
    asker = who_asks()
    owner = owner_of(app_services.config.keep_work, asker.user, asker.browser)
    offered = request.form.get("token", "")
    if (
        not owner
        or cross_site(dict(request.headers), host_url())
        or not hmac.compare_digest(offered.encode(), work_form_token(_secret(), owner).encode())
    ):
        return unavailable(
            "Nothing was deleted",
            "This form is stale or came from another site: open this server's home page "
            "and press Delete my kept work there.",
            400,
        )
    deleted = app_services.sessions.shelf.delete_owner(owner)
    return redirect(f"{url_for('pages.home')}?deleted={deleted}", 303)


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
    store, shelf = app_services.store, app_services.sessions.shelf

    def kept_work() -> tuple[int, int]:
        works = shelf.all()
        return len(works), sum(work.size for work in works)

    def running_by_node() -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in store.sessions("running"):
            counts[record.node or "-"] = counts.get(record.node or "-", 0) + 1
        return counts

    swarm = app_services.config.placement == "swarm"
    body, content_type = render_metrics(
        lambda: len(store.sessions("running")), kept_work, running_by_node if swarm else None
    )
    return Response(body, content_type=content_type)
