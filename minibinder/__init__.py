"""minibinder: a single-host Binder. `create_app` builds the Flask app (no app at import time).

Layers, top to bottom (imports point down only; see ARCHITECTURE.md):
faces (cli, web) → server, launch, warm_pool, jobs, services → the domains (repos, build,
sessions, proxy) → shared pieces (config, store, docker_client, metrics, events, errors, identity).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

__version__ = "0.1.0"  # the one place the version is written (pyproject reads it)


def create_app(config: Any = None) -> Flask:
    from .web import create_app as _create_app

    return _create_app(config)
