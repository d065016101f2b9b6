"""The access code form (`access = "code"`): one field; a right code earns a signed, HttpOnly,
SameSite cookie; wrong ones are counted per browser (its anonymous cookie), and per address
with a ceiling sized for a room, so ten typos in a classroom lock out one browser, not all."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, redirect, render_template, request

from .. import __version__
from ..identity import code_matches, cookie_secret
from .access import ACCESS_COOKIE, COOKIE_DAYS, safe_next, sign
from .api import services
from .browsers import who_asks

blueprint = Blueprint("access", __name__)
FAILURE_WINDOW = 600  # seconds over which wrong codes are counted


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
    config, store = app_services.config, app_services.store
    asker = who_asks()
    target = safe_next(request.form.get("next", "/"))
    if config.access != "code":
        return redirect(target)
    since = now - FAILURE_WINDOW
    if (
        store.access_failures(asker.client, since) >= config.access_code_attempts
        or store.access_failures("", since, address=asker.address)
        >= config.access_code_attempts_per_address
    ):
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
        store.add_access_failure(asker.client, now, asker.address)
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
