"""minibinder: a single-host Binder. `create_app` builds the Flask app (no app at import time)."""

from __future__ import annotations

__version__ = "0.1.0"


def create_app(config=None):
    from .web import create_app as _create_app

    return _create_app(config)
