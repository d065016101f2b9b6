"""The Flask app through its test client (SQLite store, fake Docker, fake launch pipeline):
the event stream's framing, keepalive, CORS and failure events, and the launch page."""

from __future__ import annotations

import json
import threading
import time

import pytest

from minibinder.events import Event
from minibinder.launch import LaunchOptions
from minibinder.settings_load import load_config
from minibinder.store import SessionRecord
from minibinder.web import api, create_app


def settings(tmp_path, values):
    # Flask's test client says "Host: localhost".
    return load_config(
        overrides={"data_dir": str(tmp_path), "allowed_hosts": ["localhost"], **values}
    )


class FakeDocker:
    def __init__(self, up=False):
        self.up = up

    def ping(self):
        return self.up


@pytest.fixture
def app(tmp_path, monkeypatch):
    def fake_events(provider_spec, options, services):
        yield Event("building", "Step 1/2 : RUN \x1b[32mgreen\x1b[0m\n")
        time.sleep(0.3)
        yield Event("failed", f"no such thing: {provider_spec}")

    monkeypatch.setattr(api, "launch_events", fake_events)
    monkeypatch.setattr(api, "KEEPALIVE_SECONDS", 0.1)
    config = settings(tmp_path, {"cors_allow_origin": "*"})
    return create_app(config, docker=FakeDocker())


def test_event_stream_framing_keepalive_and_cors(app):
    response = app.test_client().get("/build/gl/group%2Fproject/HEAD")
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    body = response.get_data(as_text=True)
    chunks = body.split("\n\n")
    data = [json.loads(c[len("data: ") :]) for c in chunks if c.startswith("data: ")]
    assert data[0] == {"phase": "building", "message": "Step 1/2 : RUN \x1b[32mgreen\x1b[0m\n"}
    assert data[-1]["phase"] == "failed"
    assert data[-1]["message"] == "no such thing: gl/group%2Fproject/HEAD"  # raw, still escaped
    assert ":keepalive" in chunks


def test_no_cors_header_by_default(tmp_path, monkeypatch):
    monkeypatch.setattr(api, "launch_events", lambda *a: iter([Event("failed", "x")]))
    app = create_app(settings(tmp_path, {}), docker=FakeDocker())
    response = app.test_client().get("/build/gh/o/r/HEAD")
    assert "Access-Control-Allow-Origin" not in response.headers


def test_health_is_503_without_docker(app):
    response = app.test_client().get("/health")
    assert response.status_code == 503
    assert response.json["checks"]["docker"] is False
    assert "Docker" in response.json["message"]


def test_launch_page_refuses_off_site_urlpath(app):
    response = app.test_client().get("/v2/gh/o/r/HEAD?urlpath=//evil.example/")
    assert response.status_code == 400
    assert b"must be a path inside the session" in response.data


def test_launch_page_says_when_docker_is_down(app):
    response = app.test_client().get("/v2/gh/o/r/HEAD")
    assert response.status_code == 503
    assert b"Docker daemon does not answer" in response.data
    assert b"Docker daemon does not answer" in app.test_client().get("/").data


def test_launch_page_when_the_server_is_full(tmp_path):
    config = settings(tmp_path, {"max_sessions": 1})
    app = create_app(config, docker=FakeDocker(up=True))
    app.extensions["minibinder"].store.add_session(
        SessionRecord(
            "0" * 16,
            "t",
            "c",
            "",
            "img",
            "gh",
            "x/y/HEAD",
            "https://github.com/x/y",
            "",
            "running",
            1.0,
            1.0,
        )
    )
    response = app.test_client().get("/v2/gh/o/r/HEAD")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    assert b"This server is full" in response.data


def test_launch_page_passes_the_landing_path(tmp_path):
    config = settings(tmp_path, {})
    app = create_app(config, docker=FakeDocker(up=True))
    response = app.test_client().get("/v2/gh/o/r/HEAD?filepath=a.ipynb")
    assert b'data-landing="tree/a.ipynb"' in response.data
    assert b'data-build-url="/build/gh/o/r/HEAD"' in response.data


def test_cancelled_flag_is_set_when_the_client_goes_away(tmp_path, monkeypatch):
    options = LaunchOptions(host_url="http://h/")
    app = create_app(settings(tmp_path, {}), docker=FakeDocker())
    with app.app_context():
        services = app.extensions["minibinder"]

    def slow(provider_spec, options, services):
        yield Event("building", "x")
        time.sleep(5)
        yield Event("ready", "")

    monkeypatch.setattr(api, "launch_events", slow)
    stream = api.event_stream("gh/o/r/HEAD", options, services, keepalive=0.05)
    assert next(stream).startswith("data: ")
    stream.close()
    assert options.cancelled.is_set()


def test_a_stream_whose_client_left_ends_without_writing(tmp_path, monkeypatch):
    # The front sets `gone` when the connection closes: the stream ends (and the request is
    # cancelled) at once, not at its next keepalive write.
    options = LaunchOptions(host_url="http://h/")
    app = create_app(settings(tmp_path, {}), docker=FakeDocker())
    with app.app_context():
        services = app.extensions["minibinder"]

    def slow(provider_spec, options, services):
        yield Event("building", "x")
        options.cancelled.wait(30)
        yield Event("failed", "cancelled")

    monkeypatch.setattr(api, "launch_events", slow)
    gone = threading.Event()
    stream = api.event_stream("gh/o/r/HEAD", options, services, keepalive=60, gone=gone)
    assert next(stream).startswith("data: ")
    gone.set()
    assert list(stream) == []  # ended before its first keepalive (60 s), and wrote nothing
    assert options.cancelled.is_set()


def test_the_home_page_states_the_kept_work_policy(tmp_path):
    config = settings(tmp_path, {"keep_work": "browser", "keep_work_hours": 6})
    client = create_app(config, docker=FakeDocker()).test_client()
    first = client.get("/?deleted=all+your+files").get_data(as_text=True)
    assert "kept for 6 hours" in first and "Nothing is kept for this browser" in first
    assert "all your files" not in first  # only a count is ever said
    again = client.get("/").get_data(as_text=True)  # with the cookie the first page gave
    assert "Delete my kept work" in again
    refused = client.post("/work/delete", data={"token": "forged"})
    assert refused.status_code == 400 and "Nothing was deleted" in refused.get_data(as_text=True)
    off = create_app(settings(tmp_path / "off", {}), docker=FakeDocker()).test_client()
    page = off.get("/").get_data(as_text=True)
    assert "everything in it is deleted" in page and "Delete my kept work" not in page
