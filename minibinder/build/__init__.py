"""Builds: repository configuration → Dockerfile (buildpacks, pure), the build context, the
Docker build with its progress, sharing one build between identical requests, base images, disk.

May import repos (to fetch a checkout) and the shared pieces; nothing here knows of sessions.
"""
