"""Session origins: the URL a session is reached at, and which Host names a session."""

from __future__ import annotations

import pytest

from minibinder.errors import ConfigError
from minibinder.proxy.routes import session_of_host, session_url
from minibinder.settings_load import load_config
from minibinder.web.hosts import HostPolicy

ID = "0123456789abcdef"


def test_without_a_domain_sessions_live_under_the_main_address():
    assert session_url("https://lab.example.org/", ID) == f"https://lab.example.org/user/{ID}/"


def test_with_a_domain_each_session_has_its_own_origin():
    assert session_url("https://binder.example.org/", ID, "binder.example.org") == (
        f"https://{ID}.binder.example.org/user/{ID}/"
    )
    assert session_url("http://127.0.0.1:8585/", ID, "localhost") == (
        f"http://{ID}.localhost:8585/user/{ID}/"
    )


@pytest.mark.parametrize(("host", "expected"), [
    (f"{ID}.localhost:8585", ID),
    (f"{ID}.LOCALHOST", ID),
    (f"{ID}.evil.localhost", None),
    (f"x{ID}.localhost", None),
    ("localhost:8585", None),
    (f"{ID}.localhost.evil.example", None),
])  # fmt: skip
def test_session_hosts(host, expected):
    assert session_of_host(host, "localhost") == expected


def test_session_hosts_pass_the_host_check_on_the_main_port_only():
    config = load_config(
        overrides={
            "session_domain": "binder.example.org",
            "public_url": "https://binder.example.org/",
        }
    )
    policy = HostPolicy(config)
    assert policy.allows(f"{ID}.binder.example.org")
    assert policy.allows(f"{ID}.binder.example.org:443")
    assert not policy.allows(f"{ID}.binder.example.org:8586")
    assert not policy.allows("other.binder.example.org")
    assert not HostPolicy(config, "127.0.0.1:8586").allows(f"{ID}.binder.example.org")


@pytest.mark.parametrize("value", ["*.example.org", "Binder.Example.org", "http://x", "a..b"])
def test_bad_session_domains_are_named(value):
    with pytest.raises(ConfigError, match="session_domain: expected a lowercase DNS name"):
        load_config(overrides={"session_domain": value})
