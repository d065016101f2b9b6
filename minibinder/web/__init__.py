"""The Flask application factory; each module hands it a blueprint."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from ..config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]


def create_app(config: Config | None = None) -> Flask:
    config = config or load_config()
    app = Flask("minibinder", template_folder=str(ROOT / "templates"),
                static_folder=str(ROOT / "static"))
    app.config["MINIBINDER"] = config
    from . import pages

    app.register_blueprint(pages.blueprint)
    return app
