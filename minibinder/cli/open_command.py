"""`minibinder open PATH|SPEC`: does my Binder repository work before I push it?

A directory is built as it is on disk (uncommitted changes included) and a session of it is
started beside the running `minibinder serve`, which relays it (routes live in the shared
store); a spec goes through that service's own event stream. With no service answering, one is
started for as long as `open` runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import webbrowser
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..errors import LaunchError, MinibinderError
from ..events import Event
from ..proxy.routes import session_url

Echo = Callable[[str], None]
SERVE_START_SECONDS = 90


@dataclass
class Opened:
    url: str  # with the token, ready to open
    session_id: str
    serve: subprocess.Popen | None  # the service `open` started, if it did


def service_url(config: Config) -> str:
    return config.public_url.rstrip("/") + "/" if config.public_url else f"http://{config.bind}/"


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}versions", timeout=2):
            return True
    except (OSError, ValueError):
        return False


def start_service(config_file: str | None, log_file: Path, url: str) -> subprocess.Popen:
    """`minibinder serve` in the background, for as long as `open` runs."""
    command = [sys.executable, "-m", "minibinder"]
    command += ["--config", config_file] if config_file else []
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            [*command, "serve"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    deadline = time.monotonic() + SERVE_START_SECONDS
    while time.monotonic() < deadline:
        if answers(url):
            return process
        if process.poll() is not None:
            raise LaunchError(f"minibinder serve stopped at start; its log: {log_file}")
        time.sleep(0.3)
    process.terminate()
    raise LaunchError(f"minibinder serve did not answer within {SERVE_START_SECONDS} s: {log_file}")


def stream_events(url: str) -> Iterator[Event]:
    """A launch through the service's BinderHub event stream."""
    try:
        response = urllib.request.urlopen(url, timeout=3600)
    except urllib.error.HTTPError as error:
        raise LaunchError(f"the service refused: {error.read().decode(errors='replace')}") from None
    with response:
        for raw in response:
            line = raw.decode(errors="replace").strip()
            if line.startswith("data: "):
                data = json.loads(line[6:])
                yield Event(data.pop("phase"), data.pop("message", ""), data)


def open_repository(
    config: Config,
    config_file: str | None,
    what: str,
    show: Callable[[Iterator[Event]], Event],
    echo: Echo,
) -> Opened:
    """Build `what` (a directory or a spec), start a session, and say where it is."""
    url = service_url(config)
    serve = None
    if not answers(url):
        config.data_path.mkdir(parents=True, exist_ok=True)
        log_file = config.data_path / "open-serve.log"
        echo(f"No minibinder answers at {url}; starting one (its log: {log_file}) ...")
        serve = start_service(config_file, log_file, url)
    try:
        if Path(what).is_dir():
            opened = _open_directory(config, Path(what), url, show)
        else:
            last = show(stream_events(f"{url}build/{what.strip('/')}"))
            if last.phase != "ready":
                raise LaunchError(last.message.strip() or "the launch failed")
            session_id = last.data["url"].rstrip("/").rsplit("/", 1)[-1]
            opened = Opened(f"{last.data['url']}?token={last.data['token']}", session_id, None)
    except BaseException:
        if serve is not None:
            serve.terminate()
        raise
    opened.serve = serve
    return opened


def _open_directory(
    config: Config, path: Path, url: str, show: Callable[[Iterator[Event]], Event]
) -> Opened:
    from ..services import create_services
    from ..sessions.launcher import LaunchRequest
    from .build_command import build_command

    built = build_command(config, str(path), None, False, False, show)
    if built.phase == "failed":
        raise LaunchError(built.message.strip() or "the build failed")
    image = built.data["imageName"]
    root = path.resolve()
    request = LaunchRequest(
        image=image,
        provider="local",
        spec=str(root),
        repo_url=f"local:{root}",
        resolved_ref="",
        binder_env={"BINDER_REPO_URL": f"local:{root}", "BINDER_LAUNCH_HOST": url},
    )
    session = create_services(config).sessions.launch(request)
    address = session_url(url, session.id, config.session_domain)
    return Opened(f"{address}?token={session.token}", session.id, None)


def hold(config: Config, opened: Opened, browser: bool, wait: bool, echo: Echo) -> None:
    """Open the browser; with `wait`, keep the session (and a service `open` started) until
    Ctrl-C, then stop them."""
    echo(opened.url)
    if browser:
        webbrowser.open(opened.url)
    if not wait:
        if opened.serve is not None:
            pid = opened.serve.pid
            echo(f"minibinder serve (pid {pid}) keeps running; `kill {pid}` stops it")
        return
    echo("Press Ctrl-C to stop the session.")
    try:
        while opened.serve is None or opened.serve.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        from ..services import create_services

        try:
            create_services(config).sessions.stop(opened.session_id, "closed by open")
        except MinibinderError as error:
            echo(f"could not stop the session: {error}")
        if opened.serve is not None:
            opened.serve.terminate()
            opened.serve.wait(30)
