"""Access control's pure parts: the hashed code, the signed cookie, allowlists, `next`."""

from __future__ import annotations

import pytest

from minibinder.errors import ConfigError
from minibinder.identity import code_matches, hash_code
from minibinder.settings_load import load_config
from minibinder.web.access import safe_next, sign, user_allowed, verified


def test_codes_are_stored_hashed_and_checked():
    stored = hash_code("sesame", iterations=1000)
    assert stored.startswith("pbkdf2_sha256$1000$") and "sesame" not in stored
    assert code_matches("sesame", stored) and not code_matches("Sesame", stored)
    assert not code_matches("sesame", "md5$x") and not code_matches("sesame", "garbage")


def test_signed_cookies_cannot_be_forged_or_kept_forever():
    cookie = sign("code", "secret", now=1000.0)
    assert verified(cookie, "secret", now=2000.0) == "code"
    assert verified(cookie, "other secret", now=2000.0) is None
    assert verified(cookie.replace("code", "admin"), "secret", now=2000.0) is None
    assert verified(cookie, "secret", now=1000.0 + 8 * 86400) is None  # expired
    assert verified("", "secret") is None and verified("a.b.c", "secret") is None


@pytest.mark.parametrize(("name", "allowed"), [
    ("alice", True), ("ALICE", True), ("carol@lab.example.edu", True),
    ("mallory", False), ("eve@evil.example", False), ("lab.example.edu", False),
])  # fmt: skip
def test_allowlists(name, allowed):
    assert user_allowed(name, ["alice"], ["lab.example.edu"]) is allowed
    assert user_allowed(name, [], []) is True  # no list: anyone the proxy names


@pytest.mark.parametrize(("target", "expected"), [
    ("/v2/gh/o/r/HEAD?x=1", "/v2/gh/o/r/HEAD?x=1"), ("//evil.example/", "/"),
    ("https://evil.example/", "/"), ("/\\evil.example", "/"), ("", "/"),
])  # fmt: skip
def test_next_stays_on_this_server(target, expected):
    assert safe_next(target) == expected


def test_access_settings_that_cannot_work_are_named():
    with pytest.raises(ConfigError, match='access_code_hash: access = "code" needs the hash'):
        load_config(overrides={"access": "code"})
    with pytest.raises(ConfigError, match='access = "header" needs trusted_proxies'):
        load_config(overrides={"access": "header"})
