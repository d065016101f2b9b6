"""The BinderHub-compatible event stream: GET /build/<provider>/<spec>."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, request

from ..errors import QuotaExceeded
from ..events import Event
from ..launch import LaunchOptions, launch_events
from ..proxy.wire import CLIENT_GONE
from ..services import Services
from ..sessions.admission import Ask
from .browsers import who_asks

blueprint = Blueprint("api", __name__)
log = logging.getLogger(__name__)
KEEPALIVE_SECONDS = 25.0
GONE_CHECK_SECONDS = 1.0  # how soon a stream notices the front saw its client leave


def services() -> Services:
    return current_app.extensions["minibinder"]


def raw_spec(prefix: str) -> str:
    """The `<provider>/<spec>` part of the raw request path, still percent-encoded.

    Flask decodes `%2F`, which would break `gl/` and `git/` specs; BinderHub reads the raw path.
    """
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
    path = raw.split("?", 1)[0]
    return path.split(prefix, 1)[1] if prefix in path else request.path.split(prefix, 1)[-1]


def host_url() -> str:
    public = services().config.public_url
    return (public.rstrip("/") + "/") if public else request.host_url


_remembered_host: list[str] = []


def remember_host(url: str) -> None:
    """Keep the address users reach us at, for the BINDER_LAUNCH_HOST of warm sessions."""
    if url not in _remembered_host:
        services().store.remember_host_url(url)
        _remembered_host[:] = [url]


def sse(event: Event) -> str:
    return f"data: {event.to_json()}\n\n"


def event_stream(
    provider_spec: str,
    options: LaunchOptions,
    app_services: Services,
    keepalive: float | None = None,
    gone: threading.Event | None = None,
) -> Iterator[str]:
    """Run the request in a thread; relay its events and a keepalive comment while it works.
    The stream ends, and the request is cancelled, within a second of `gone` being set (the
    client left), or at the next write that fails."""
    keepalive = keepalive or KEEPALIVE_SECONDS
    events: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            for event in launch_events(provider_spec, options, app_services):
                events.put(event)
        except Exception as error:  # never leave the client waiting on a crashed thread
            log.exception("launch of %s crashed", provider_spec)
            events.put(Event("failed", f"internal error: {type(error).__name__}: {error}"))
        finally:
            events.put(None)

    threading.Thread(target=work, name=f"launch {provider_spec}", daemon=True).start()
    try:
        wrote = time.monotonic()
        while True:
            try:
                event = events.get(timeout=min(keepalive, GONE_CHECK_SECONDS))
            except queue.Empty:
                if gone is not None and gone.is_set():
                    return
                if time.monotonic() - wrote >= keepalive:
                    wrote = time.monotonic()
                    yield ":keepalive\n\n"
                continue
            if event is None:
                return
            wrote = time.monotonic()
            yield sse(event)
    finally:
        options.cancelled.set()
        if options.request_id:
            app_services.store.close_request(options.request_id)


@blueprint.get("/build/<provider>/<path:spec>")
def build_events(provider: str, spec: str):
    app_services = services()
    remember_host(host_url())
    asker = who_asks()
    build_only = request.args.get("build_only", "").lower() in ("true", "1", "yes")
    try:  # one client may not hold every seat, build slot or thread
        app_services.sessions.admit(
            Ask.stream(asker.client, asker.address, launching=not build_only)
        )
    except QuotaExceeded as error:
        # As BinderHub does: the refusal is the stream's one event, so EventSource clients
        # (thebe, Jupyter Book buttons, the JS client) show the message; 200, as EventSource
        # delivers no events of any other status. Retry-After says when to come back.
        refusal = Event("failed", str(error), {"retry_after": error.retry_after})
        response = Response(sse(refusal), mimetype="text/event-stream")
        response.headers["Cache-Control"] = "no-cache"
        response.headers["Retry-After"] = str(error.retry_after)
        return _cors(response)
    options = LaunchOptions(
        host_url=host_url(),
        build_only=build_only,
        client_ip=asker.address,
        user=asker.user,
        browser=asker.browser,
        request_id=app_services.store.open_request(asker.client, asker.address),
        clean=request.args.get("clean", "").lower() in ("true", "1", "yes"),
    )
    response = Response(
        event_stream(
            raw_spec("/build/"), options, app_services, gone=request.environ.get(CLIENT_GONE)
        ),
        mimetype="text/event-stream",
    )
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return _cors(response)


def _cors(response: Response) -> Response:
    origin = services().config.cors_allow_origin
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
    return response
