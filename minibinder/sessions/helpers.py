"""What minibinder adds inside a session, under /user/<id>/_minibinder/: the warning before the
session is stopped (a script the proxy adds to the session's pages asks for it), and a download
of the user's work as a zip.

Both ask the session's own Jupyter whether the caller may enter (its cookie or token), so they
are exactly as private as the session itself.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from html import escape
from importlib import resources
from urllib.parse import parse_qs

from ..errors import MinibinderError
from ..store import SessionRecord
from ..wsgi import StartResponse, reply
from . import jupyter
from .archive import tar_to_zip
from .culler import REASONS, Limits, cull_notice
from .keeping import describe_size
from .launcher import Sessions

HELPER_PATH = "_minibinder/"
DISK_WARNING = 0.8  # share of session_disk_limit at which the banner warns


@cache
def _zip_script() -> str:
    return resources.files(__package__).joinpath("zip_home.py").read_text()


def notice_script(prefix: str) -> bytes:
    """The tag added to a session's pages: it polls `status` and shows the warning banner."""
    static = prefix.rsplit("/user/", 1)[0] + "/static/session_notice.js"  # under the same root
    return (f'<script src="{escape(static)}" data-base="{escape(prefix)}" defer></script>').encode()


def caller_credentials(environ: dict, own_cookie_filter: Callable[[str], str]) -> dict[str, str]:
    headers = {}
    cookie = own_cookie_filter(environ.get("HTTP_COOKIE", ""))
    if cookie:
        headers["Cookie"] = cookie
    if environ.get("HTTP_AUTHORIZATION"):
        headers["Authorization"] = environ["HTTP_AUTHORIZATION"]
    token = parse_qs(environ.get("QUERY_STRING", "")).get("token")
    if token:
        headers["Authorization"] = f"token {token[0]}"
    if headers and environ.get("HTTP_HOST"):
        # Jupyter names its login cookie after the host the browser used.
        headers["Host"] = environ["HTTP_HOST"]
    return headers


def _json(start_response: StartResponse, status: str, body: dict) -> list[bytes]:
    return reply(start_response, status, "application/json", json.dumps(body).encode())


class SessionHelpers:
    def __init__(self, sessions: Sessions, own_cookie_filter: Callable[[str], str]):
        self.sessions = sessions
        self.own_cookie_filter = own_cookie_filter

    def handle(
        self, environ: dict, start_response: StartResponse, session_id: str, action: str
    ) -> Iterable[bytes]:
        record = self.sessions.store.get_session(session_id)
        if record is None:
            return _json(start_response, "404 Not Found", {"error": "no such session"})
        credentials = caller_credentials(environ, self.own_cookie_filter)
        status = jupyter.status(record, credentials) if credentials else None
        if status is None:
            return _json(start_response, "403 Forbidden", {"error": "not your session"})
        if action == "status":
            return _json(start_response, "200 OK", self.status(record, status))
        if action == "download":
            return self.download(record, start_response)
        return _json(start_response, "404 Not Found", {"error": f"unknown: {action}"})

    __call__ = handle

    def status(self, record: SessionRecord, jupyter_status: dict) -> dict:
        usage = self.sessions.usage(record, with_cpu=False, status=jupyter_status)
        limits = Limits.from_config(self.sessions.config)
        notice = cull_notice(usage, time.time(), limits)
        body: dict = {"download_url": f"{record.prefix}{HELPER_PATH}download", "warning": None}
        if notice:
            minutes, seconds = divmod(int(notice.seconds_left), 60)
            why = (
                "it has been idle"
                if notice.reason == "idle"
                else "it reaches the maximum session length"
            )
            body["warning"] = {
                "reason": notice.reason,
                "seconds_left": int(notice.seconds_left),
                "message": f"This session will stop in {minutes}:{seconds:02d} because {why}. "
                + ("Any activity keeps it running. " if notice.reason == "idle" else "")
                + self.keeping_text(record),
                "why": REASONS[notice.reason],
            }
        limit, written = limits.disk_bytes, usage.disk_bytes
        if body["warning"] is None and written is not None and written > DISK_WARNING * limit:
            body["warning"] = {
                "reason": "disk",
                "seconds_left": None,
                "message": f"This session has written {written / 2**20:.0f} MiB of the "
                f"{limit / 2**20:.0f} MiB it may; past that it stops. Delete what you do not "
                "need, and download your work to keep it.",
                "why": REASONS["disk"],
            }
        return body

    def keeping_text(self, record: SessionRecord) -> str:
        """What becomes of the user's files: kept for N hours (keep_work), or nothing."""
        config = self.sessions.config
        if record.keeper and config.keep_work != "off":
            hours = f"{config.keep_work_hours:g}"
            return (
                f"Your changed files will be kept for {hours} hours and come back when you "
                "launch this repository again (up to "
                f"{describe_size(config.keep_work_limit)}); download them to be sure."
            )
        return "Download your work to keep it."

    def download(self, record: SessionRecord, start_response: StartResponse) -> Iterable[bytes]:
        """The session's home folder as a zip, made inside the session (its CPU, its memory)
        when it has Python; else from Docker's tar stream, here."""
        script = _zip_script()
        first: bytes | None
        try:
            chunks = self.sessions.docker.run_in(
                record.container_id, ["python3", "-c", script, "/home/jovyan"], user="1000"
            )
            first = next(chunks)
        except (MinibinderError, StopIteration):
            first = None
        if not first or not first.startswith(b"PK"):  # no python3 in this image: Docker's tar
            chunks, first = self._tar_zip(record)
        if first is None:
            return _json(
                start_response,
                "503 Service Unavailable",
                {"error": "the session's files cannot be read right now"},
            )
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", record.spec.rsplit("/", 1)[0]) or "session"

        def everything() -> Iterator[bytes]:
            yield first
            yield from chunks

        start_response(
            "200 OK",
            [
                ("Content-Type", "application/zip"),
                ("Cache-Control", "no-store"),
                ("Content-Disposition", f'attachment; filename="{name}-work.zip"'),
            ],
        )
        return everything()

    def _tar_zip(self, record: SessionRecord) -> tuple[Iterator[bytes], bytes | None]:
        try:
            chunks = tar_to_zip(
                self.sessions.docker.archive(record.container_id, "/home/jovyan"), strip="jovyan"
            )
            return chunks, next(chunks)
        except (MinibinderError, StopIteration):
            return iter(()), None
