"""The operator's pages behind a token: sessions, images, builds, launches, and their history."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from markupsafe import Markup

from .. import __version__
from ..config import Config
from ..disk import IMAGE_LABEL, docker_disk
from ..errors import DockerUnavailable
from ..plots import line_chart
from .api import services

blueprint = Blueprint("admin", __name__, url_prefix="/admin")
COOKIE = "minibinder-admin"
DAY = 86400


def admin_token(config: Config) -> str:
    """The configured token, or one made once and kept in the data directory."""
    if config.admin_token:
        return config.admin_token
    path = config.data_path / "admin_token"
    if not path.exists():
        config.data_path.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def _csrf(token: str) -> str:
    return hmac.new(token.encode(), b"minibinder-admin-form", hashlib.sha256).hexdigest()[:32]


@blueprint.before_request
def require_token():
    token = admin_token(services().config)
    offered = (request.args.get("token") or request.cookies.get(COOKIE)
               or request.headers.get("Authorization", "").removeprefix("Bearer ").strip())
    if not offered or not hmac.compare_digest(offered, token):
        abort(Response("The operator's pages need the admin token: open /admin?token=... "
                       "(`minibinder admin-token` prints it).\n", 401,
                       {"Content-Type": "text/plain; charset=utf-8"}))
    if request.method == "POST" and not hmac.compare_digest(
            request.form.get("csrf", ""), _csrf(token)):
        abort(400)
    if request.args.get("token"):  # keep the token out of the address bar from now on
        response = redirect(request.path)
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/admin")
        return response
    return None


def _session_rows() -> list[dict]:
    app_services, now = services(), time.time()
    rows = []
    for record in app_services.store.sessions():
        cpu, memory = app_services.docker.usage(record.container_id) if record.container_id \
            else (None, None)
        rows.append({"record": record, "age": now - record.created,
                     "idle": now - record.last_activity, "cpu": cpu, "memory": memory,
                     "url": f"{request.host_url.rstrip('/')}{record.prefix}"})
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
            rows.append({"name": name, "size": image.get("Size", 0),
                         "last_used": last_used.get(name)})
    return sorted(rows, key=lambda row: -(row["last_used"] or 0))


def _build_logs(folder: Path, limit: int = 30) -> list[dict]:
    logs = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)[:limit]
    rows = []
    for path in logs:
        last = ""
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                last = line or last
        try:
            outcome = json.loads(last).get("phase", "") if last else ""
        except ValueError:
            outcome = ""
        rows.append({"key": path.stem, "time": path.stat().st_mtime, "outcome": outcome})
    return rows


@blueprint.get("/")
def overview():
    app_services, now = services(), time.time()
    launches = app_services.store.launches(limit=500, since=now - DAY)
    samples = app_services.store.samples(now - DAY)
    sessions_chart = line_chart([(t, float(n)) for t, n in samples], now - DAY, now,
                                "Running sessions, last 24 h")
    launch_chart = line_chart(
        [(row["time"], row["launch_seconds"] or 0.0) for row in launches
         if row["status"] == "success"], now - DAY, now, "Launch time (s), last 24 h", " s",
        dots=True)
    disk = docker_disk(app_services.config)
    from ..pool import pool_targets

    warm = app_services.store.sessions("warm")
    pool = [{"spec": spec, "size": size,
             "warm": sum(1 for r in warm if f"{r.provider}/{r.spec}" == spec)}
            for spec, size in sorted(pool_targets(app_services).items())]
    return render_template(
        "admin.html", pool=pool, sessions=_session_rows(), images=_image_rows(),
        builds=_build_logs(app_services.config.data_path / "builds"), launches=launches[:50],
        sessions_chart=Markup(sessions_chart), launch_chart=Markup(launch_chart),
        disk=disk, csrf=_csrf(admin_token(app_services.config)), version=__version__,
        docker_ok=app_services.docker.ping(), now=now)


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
    from ..errors import SpecError
    from ..spec import parse_spec

    spec = request.form.get("spec", "").strip()
    try:
        parse_spec(spec, services().config)
        size = int(request.form.get("size", "0"))
        if not 0 <= size <= 500:
            raise ValueError
    except (SpecError, ValueError):
        abort(Response("Give a spec like gh/owner/repo/HEAD and a size from 0 to 500.\n", 400,
                       {"Content-Type": "text/plain; charset=utf-8"}))
    services().store.set_pool_target(spec, size)
    return redirect(url_for("admin.overview"))


@blueprint.get("/builds/<key>")
def build_log(key: str):
    folder = services().config.data_path / "builds"
    path = folder / f"{key}.log"
    if "/" in key or not path.is_file():
        abort(404)
    lines = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                lines.append(json.loads(line).get("message", ""))
            except ValueError:
                continue
    return Response("".join(lines), content_type="text/plain; charset=utf-8")


@blueprint.get("/launches.jsonl")
def launches_export():
    since = float(request.args.get("since", 0) or 0)
    rows = services().store.launches(limit=1_000_000, since=since)
    return Response("".join(launch_event(row, request.host) + "\n" for row in reversed(rows)),
                    content_type="application/jsonl; charset=utf-8")


PROVIDER_NAMES = {"gh": "GitHub", "gl": "GitLab", "git": "Git", "gist": "Gist"}


def launch_event(row: dict, origin: str) -> str:
    """One launch as in mybinder.org's events archive (no client IP: it is private)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row["time"]))
    return json.dumps({
        "timestamp": stamp, "schema": "binderhub.jupyter.org/launch", "version": 3,
        "provider": PROVIDER_NAMES.get(row["provider"], row["provider"]), "spec": row["spec"],
        "ref": row["resolved_ref"], "status": row["status"], "build_token": False,
        "origin": origin, "build_seconds": row["build_seconds"],
        "launch_seconds": row["launch_seconds"]})
