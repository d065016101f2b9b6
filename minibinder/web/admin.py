"""The operator's pages behind a token: sessions, images, builds, launches, and their history."""

from __future__ import annotations

import hashlib
import hmac
import time

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from markupsafe import Markup

from .. import __version__
from ..builds.disk import IMAGE_LABEL, docker_disk
from ..builds.sharing import build_log_text, recent_builds
from ..errors import DockerUnavailable, SpecError
from ..identity import admin_token
from ..launch import launch_event, launch_origin
from ..proxy.routes import session_url
from ..repos.providers import parse_spec
from ..sessions.admission import host_memory_bytes
from ..sessions.pool import SET, shortfall
from ..warm_pool import pool_sizes, set_pool_size
from .access import USER
from .api import services
from .charts import line_chart

blueprint = Blueprint("admin", __name__, url_prefix="/admin")
COOKIE = "minibinder-admin"
HTML_PAGES = {"admin.overview"}
DAY = 86400


def _same(offered: str, expected: str) -> bool:
    """A constant-time comparison that takes any text (compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(offered.encode("utf-8", "replace"), expected.encode())


def _csrf(token: str) -> str:
    return hmac.new(token.encode(), b"minibinder-admin-form", hashlib.sha256).hexdigest()[:32]


@blueprint.before_request
def require_token():
    token = admin_token(services().config)
    offered = (
        request.args.get("token")
        or request.cookies.get(COOKIE)
        or request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    )
    user = request.environ.get(USER, "")
    named_admin = bool(user) and user.lower() in {
        name.lower() for name in services().config.admin_users
    }
    if named_admin:
        offered = token  # the lab's sign-in proxy named an admin: no token needed
    if not offered or not _same(offered, token):
        abort(
            Response(
                "The operator's pages need the admin token: open /admin?token=... "
                "(`minibinder admin-token` prints it).\n",
                401,
                {"Content-Type": "text/plain; charset=utf-8"},
            )
        )
    if request.method == "POST" and not _same(request.form.get("csrf", ""), _csrf(token)):
        abort(
            Response(
                "The form is stale or forged (CSRF check); reload the page.\n",
                400,
                {"Content-Type": "text/plain; charset=utf-8"},
            )
        )
    # A page keeps the token out of the address bar from now on: it is answered by a redirect
    # that sets the cookie. An export or a log asked for with ?token= (curl, a script) is
    # answered directly.
    if request.args.get("token") and request.endpoint in HTML_PAGES:
        response = redirect(request.script_root + request.path)
        response.set_cookie(
            COOKIE, token, httponly=True, samesite="Strict", path=f"{request.script_root}/admin"
        )
        return response
    return None


def _session_rows() -> list[dict]:
    app_services, now = services(), time.time()
    # Sessions are reached at the main address, not at this, the operator's own listener.
    main_url = app_services.config.public_url or app_services.store.last_host_url() or "/"
    rows = []
    for record in app_services.store.sessions():
        cpu, memory = (
            app_services.docker.usage(record.container_id) if record.container_id else (None, None)
        )
        rows.append(
            {
                "record": record,
                "age": now - record.created,
                "idle": now - record.last_activity,
                "cpu": cpu,
                "memory": memory,
                "url": session_url(main_url, record.id, app_services.config.session_domain),
            }
        )
    return rows


def _image_rows() -> list[dict]:
    app_services = services()
    last_used = app_services.store.image_last_used()
    try:
        images = app_services.docker.images(IMAGE_LABEL)
    except DockerUnavailable:
        return []
    rows = []
    for image in images:
        for name in image.get("RepoTags") or []:
            rows.append(
                {"name": name, "size": image.get("Size", 0), "last_used": last_used.get(name)}
            )
    return sorted(rows, key=lambda row: -(row["last_used"] or 0))


@blueprint.get("/")
def overview():
    app_services, now = services(), time.time()
    launches = app_services.store.launches(limit=500, since=now - DAY)
    samples = app_services.store.samples(now - DAY)
    sessions_chart = line_chart(
        [(t, float(n)) for t, n in samples], now - DAY, now, "Running sessions, last 24 h"
    )
    launch_chart = line_chart(
        [
            (row["time"], row["launch_seconds"] or 0.0)
            for row in launches
            if row["status"] == "success"
        ],
        now - DAY,
        now,
        "Launch time (s), last 24 h",
        " s",
        dots=True,
    )
    disk = docker_disk(app_services.config)
    warm = app_services.store.sessions("warm")
    notes = app_services.store.pool_notes()
    sizes = pool_sizes(app_services)
    pool = [
        {
            "spec": spec,
            "size": size.size,
            "why": size.why,
            "set": size.source == SET,
            "warm": sum(1 for r in warm if f"{r.provider}/{r.spec}" == spec),
            "short": notes.get(spec, ""),
        }
        for spec, size in sorted(sizes.items())
    ]
    short = shortfall(
        app_services.config, host_memory_bytes(), {s: v.size for s, v in sizes.items()}
    )
    return render_template(
        "admin.html",
        pool=pool,
        pool_shortfall=short,
        sessions=_session_rows(),
        images=_image_rows(),
        builds=recent_builds(app_services.config.data_path / "builds"),
        launches=launches[:50],
        sessions_chart=Markup(sessions_chart),
        launch_chart=Markup(launch_chart),
        disk=disk,
        csrf=_csrf(admin_token(app_services.config)),
        version=__version__,
        docker_ok=app_services.docker.ping(),
        now=now,
        swarm=app_services.config.placement == "swarm",
    )


@blueprint.post("/sessions/<session_id>/stop")
def stop_session(session_id: str):
    services().sessions.stop(session_id, "operator")
    return redirect(url_for("admin.overview"))


@blueprint.post("/sessions/<session_id>/extend")
def extend_session(session_id: str):
    services().sessions.extend(session_id, 3600)
    return redirect(url_for("admin.overview"))


@blueprint.post("/pool")
def set_pool():
    spec = request.form.get("spec", "").strip()
    try:
        parse_spec(spec, services().config)
        size = int(request.form.get("size", "0"))
        if not 0 <= size <= 500:
            raise ValueError
    except (SpecError, ValueError):
        abort(
            Response(
                "Give a spec like gh/owner/repo/HEAD and a size from 0 to 500.\n",
                400,
                {"Content-Type": "text/plain; charset=utf-8"},
            )
        )
    set_pool_size(services(), spec, size, "the operator's page")
    return redirect(url_for("admin.overview"))


@blueprint.get("/builds/<key>")
def build_log(key: str):
    text = build_log_text(services().config.data_path / "builds", key)
    if text is None:
        abort(404)
    return Response(text, content_type="text/plain; charset=utf-8")


@blueprint.get("/launches.jsonl")
def launches_export():
    try:
        since = float(request.args.get("since", 0) or 0)
    except ValueError:
        abort(
            Response(
                "`since` is a Unix time in seconds, e.g. ?since=1767225600\n",
                400,
                {"Content-Type": "text/plain; charset=utf-8"},
            )
        )
    rows = services().store.launches(limit=1_000_000, since=since)
    origin = launch_origin(services().config)
    return Response(
        "".join(launch_event(row, origin) + "\n" for row in reversed(rows)),
        content_type="application/jsonl; charset=utf-8",
    )
