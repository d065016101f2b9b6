"""The hostile-input corpus (tests/security/corpus.py) against a running service: no path,
header or spec answered with a 5xx. Its pure cases (specs and landings refused before any
process starts) are in tests/unit/test_corpus.py."""

from __future__ import annotations

import http.client
import urllib.error

import pytest

from ..support.sse import events
from . import corpus


def get(port: int, path: str, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_host="Host" in headers)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory, git_server, build_config):
    from ..integration.conftest import serve_config
    from ..support.serving import ServeProcess

    folder = tmp_path_factory.mktemp("corpus")
    config = serve_config(
        folder / "minibinder.toml",
        folder / "data",
        build_config,
        git_server,
        admin_token="s3cret-s3cret-s3cret-s3cret-s3cret",
    )
    serve = ServeProcess(config, folder / "serve.log").start()
    yield serve
    serve.stop()


def test_hostile_paths_and_headers_get_no_5xx(service):
    host = {"Host": f"127.0.0.1:{service.port}"}
    failures = []
    for path in corpus.hostile_paths():
        if path.startswith("/build/"):
            continue  # an event stream: checked below
        status = get(service.port, path, host)
        if status >= 500:
            failures.append((path, status))
    for headers in corpus.hostile_headers():
        status = get(service.port, "/", {**host, **headers})
        if status >= 500:
            failures.append((headers, status))
    assert failures == []


@pytest.mark.parametrize("spec", corpus.hostile_specs()[::7])
def test_hostile_specs_through_the_event_stream_fail_cleanly(service, spec):
    try:
        received = events(f"{service.url}/build/{spec}")
    except urllib.error.HTTPError as error:  # refused before the stream opened
        assert 400 <= error.code < 500
        return
    assert received[-1]["phase"] == "failed"
    assert all(event["phase"] != "ready" for event in received)
