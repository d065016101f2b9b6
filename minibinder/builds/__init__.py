"""Builds: repository configuration → Dockerfile (buildpacks, pure), the environment step
(`prepare`: conda solves, Python versions; `prepare_r`: R and where its packages come from),
the build context, one `docker build` with its progress (`docker_build`), sharing one build
between identical requests, base images, disk.

May import repos (to fetch a checkout) and the shared pieces; nothing here knows of sessions.
"""

from __future__ import annotations

from .images import build_image, target_for_source

__all__ = ["build_image", "target_for_source"]
