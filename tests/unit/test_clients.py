"""The client's address and scheme: from forwarding headers of trusted proxies only."""

from __future__ import annotations

import pytest

from minibinder.errors import ConfigError
from minibinder.settings_load import load_config
from minibinder.web.clients import BadForwarding, Client, client_of, trusted_networks

PROXY = trusted_networks(["127.0.0.1", "10.0.0.0/8"])


def test_headers_from_an_untrusted_peer_are_ignored():
    headers = {"x-forwarded-for": "198.51.100.7", "x-forwarded-proto": "https"}
    assert client_of("192.0.2.5", headers, "http", PROXY) == Client("192.0.2.5", "http")
    assert client_of("127.0.0.1", headers, "http", []) == Client("127.0.0.1", "http")


def test_the_first_untrusted_hop_from_the_right_is_the_client():
    headers = {"x-forwarded-for": "6.6.6.6, 198.51.100.7, 10.1.2.3", "x-forwarded-proto": "https"}
    assert client_of("127.0.0.1", headers, "http", PROXY) == Client("198.51.100.7", "https")


def test_forwarded_is_read_when_x_forwarded_for_is_absent():
    headers = {"forwarded": 'for=198.51.100.7;proto=https, for="[2001:db8::1]:4711"'}
    assert client_of("127.0.0.1", headers, "http", PROXY) == Client("2001:db8::1", "https")


def test_a_trusted_proxy_without_headers_is_the_client():
    assert client_of("127.0.0.1", {}, "http", PROXY) == Client("127.0.0.1", "http")


@pytest.mark.parametrize(("headers", "message"), [
    ({"x-forwarded-for": "not-an-address"}, "X-Forwarded-For names 'not-an-address'"),
    ({"x-forwarded-for": "198.51.100.7, <script>"}, "not an IP address"),
    ({"x-forwarded-for": "198.51.100.7", "x-forwarded-proto": "gopher"}, "expected http or https"),
    ({"forwarded": "for=unknown"}, "Forwarded names 'unknown'"),
])  # fmt: skip
def test_malformed_headers_from_a_trusted_proxy_are_named(headers, message):
    with pytest.raises(BadForwarding, match=message):
        client_of("127.0.0.1", headers, "http", PROXY)


def test_trusted_proxies_setting_is_checked():
    assert load_config(overrides={"trusted_proxies": ["10.0.0.1/8"]}).trusted_proxies == [
        "10.0.0.0/8"
    ]
    with pytest.raises(ConfigError, match="trusted_proxies: expected an IP address or network"):
        load_config(overrides={"trusted_proxies": ["nginx.local"]})


def test_a_clients_word_about_its_address_is_not_believed():
    """The front gives the connection's own address; no header of the client's replaces it
    (the header #10's front signed is gone with the second hop)."""
    from minibinder.web.clients import ClientAddress

    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        return []

    guard = ClientAddress(app, load_config(overrides={}))
    forged = "key=guess; for=10.9.8.7; proto=https; port=8586"
    guard(
        {
            "REMOTE_ADDR": "127.0.0.9",
            "HTTP_X_MINIBINDER_FRONT": forged,
            "HTTP_X_FORWARDED_FOR": "10.9.8.7",
            "wsgi.url_scheme": "http",
        },
        None,
    )
    assert seen["REMOTE_ADDR"] == "127.0.0.9" and seen["wsgi.url_scheme"] == "http"
