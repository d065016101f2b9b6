"""The access code form (`access = "code"`): one field; a right code earns a signed, HttpOnly,
SameSite cookie; wrong ones are counted per client and limited."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, redirect, render_template, request

from .. import __version__
from ..identity import code_matches, cookie_secret
from .access import ACCESS_COOKIE, COOKIE_DAYS, safe_next, sign
from .api import services

blueprint = Blueprint("access", __name__)
FAILURES_ALLOWED, FAILURE_WINDOW = 10, 600  # wrong codes per client per ten minutes


@blueprint.get("/access")
def form():
    return render_template(
        "access.html",
        next=safe_next(request.args.get("next", "/")),
        message="",
        version=__version__,
    )


@blueprint.post("/access")
def submit():
    app_services, now = services(), time.time()
    client = request.remote_addr or ""
    target = safe_next(request.form.get("next", "/"))
    if app_services.config.access != "code":
        return redirect(target)
    if app_services.store.access_failures(client, now - FAILURE_WINDOW) >= FAILURES_ALLOWED:
        page = render_template(
            "access.html",
            next=target,
            version=__version__,
            message="Too many wrong codes from your address; try again in ten minutes.",
        )
        limited = current_app.make_response((page, 429))
        limited.headers["Retry-After"] = str(FAILURE_WINDOW)
        return limited
    code = request.form.get("code", "")
    if len(code) > 200 or not code_matches(code, app_services.config.access_code_hash):
        app_services.store.add_access_failure(client, now)
        return render_template(
            "access.html", next=target, version=__version__, message="That is not the code."
        ), 403
    response = redirect(target)
    response.set_cookie(
        ACCESS_COOKIE,
        sign("code", cookie_secret(app_services.config)),
        max_age=COOKIE_DAYS * 86400,
        httponly=True,
        samesite="Lax",
        secure=request.scheme == "https",
        path=request.script_root or "/",
    )
    return response
