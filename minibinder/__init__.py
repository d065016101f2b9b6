"""minibinder: a single-host Binder. The Flask app is built by `minibinder.web.create_app` (no
app at import time); `minibinder serve` runs it behind its front.

Layers, top to bottom (imports point down only; see ARCHITECTURE.md):
faces (cli, web) → server, launch, warm_pool, jobs, services → the domains (repos, build,
sessions, proxy) → shared pieces (config, store, docker_client, metrics, events, errors, identity).
"""

from __future__ import annotations

__version__ = "0.1.0"  # the one place the version is written (pyproject reads it)
