"""Human-facing pages (for now the home page and the health check)."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from .. import __version__

blueprint = Blueprint("pages", __name__)


@blueprint.get("/")
def home():
    return render_template("home.html", version=__version__)


@blueprint.get("/versions")
def versions():
    return jsonify({"minibinder": __version__, "builder": "minibinder buildpacks"})
