"""Hostile clone URLs are refused before git runs; `internal_hosts` entries and their ports."""

import pytest

from minibinder.errors import ConfigError, SpecError
from minibinder.repos.urlpolicy import (
    check_clone_host,
    check_clone_url,
    internal_host_entry,
    listed_internal_host,
)
from minibinder.settings_load import load_config

HTTPS_ONLY = ["https"]

HOSTILE = [
    "",
    # git drops dot segments before it asks for credentials (a private prefix sidestepped)
    "https://github.com/x/../our-lab/secret",
    "https://github.com/x/%2e%2E/our-lab/secret",
    "https://github.com/our-lab/./secret",
    "-",
    "--upload-pack=touch /tmp/pwned",
    "-oProxyCommand=id",
    "--config=core.x=y",
    "file:///etc/passwd",
    "file://localhost/etc",
    "/etc/passwd",
    "./repo",
    "../repo",
    "~/repo",
    "repo",
    "C:\\repo",
    "\\\\host\\share\\repo",
    "ext::sh -c touch% /tmp/pwned",
    "ext::sh",
    "fd::17",
    "fd::0,1",
    "transport::foo",
    "ssh://git@github.com/owner/repo",
    "ssh://-oProxyCommand=id/repo",
    "git+ssh://github.com/o/r",
    "ssh+git://github.com/o/r",
    "git@github.com:owner/repo.git",
    "user@host:path",
    "https://user:password@github.com/o/r",
    "https://token@github.com/o/r",
    "https://github.com/o/r\n--upload-pack=id",
    "https://github.com/o/r\x00",
    "https://github.com/o r",
    "https://github.com/o/r\t",
    "https://github.com/$(id)",
    "https://github.com/`id`",
    "https://github.com/o/r;id",
    "https://github.com/o/r|id",
    "https://git hub.com/o/r",
    "https://",
    "https:///o/r",
    "https://github.com",
    "https://github.com/",
    "https://github.com:0/o/r",
    "https://github.com:99999/o/r",
    "https://github.com:abc/o/r",
    "https://-github.com/o/r",
    "https://github.com/-o/r",
    "https://github.com/o/--upload-pack",
    "https://github.com//o/r",
    "http://github.com/o/r",
    "git://github.com/o/r",
    "ftp://example.org/repo.git",
    "rsync://example.org/repo",
    "javascript:alert(1)",
    "data:text/plain,hi",
    "HTTPS://github.com/o/r\r\n",
    "https://exa_mple.org/o/r",
    "https://github.com/o/r{a}",
    "https://github.com/o/r<script>",
    "x" * 3000,
]


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_urls_are_refused(url):
    with pytest.raises(SpecError):
        check_clone_url(url, HTTPS_ONLY)


def test_there_are_at_least_forty_hostile_cases():
    assert len(HOSTILE) >= 40


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/owner/repo",
        "https://github.com/owner/repo.git",
        "https://gitlab.example.org:8443/group/sub/project.git",
        "https://[::1]/o/r",
        "https://10.0.0.1/o/r",
        "HTTPS://GitHub.com/Owner/Repo",
    ],
)
def test_ordinary_urls_pass(url):
    assert check_clone_url(url, HTTPS_ONLY) == url


def test_operator_can_allow_git_and_http():
    assert check_clone_url("git://127.0.0.1:9418/o/r", ["https", "git"])
    assert check_clone_url("http://127.0.0.1:8080/o/r", ["https", "http"])


def test_message_names_the_allowed_schemes():
    with pytest.raises(SpecError, match=r"git:// is not allowed here \(allowed: https://\)"):
        check_clone_url("git://127.0.0.1/o/r", HTTPS_ONLY)


@pytest.mark.parametrize(
    "entry, parsed",
    [
        ("127.0.0.1", ("127.0.0.1", None)),
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("GitLab.Lab", ("gitlab.lab", None)),
        ("gitlab.lab:443", ("gitlab.lab", 443)),
        ("::1", ("::1", None)),
        ("[::1]", ("::1", None)),
        ("[::1]:8080", ("::1", 8080)),
        ("[0:0::1]:8080", ("::1", 8080)),
    ],
)
def test_internal_host_entries(entry, parsed):
    assert internal_host_entry(entry) == parsed


@pytest.mark.parametrize(
    "entry",
    ["", ":80", "host:", "host:0", "host:65536", "host:http", "a:b:c", "[::1]x", "[::1]:",
     "[gitlab.lab]:443", "[127.0.0.1]", "-host", "host/path", "user@host", "*.lab"],
)  # fmt: skip
def test_invalid_internal_host_entries_are_refused_by_the_settings(entry):
    with pytest.raises(ConfigError, match="^internal_hosts: "):
        load_config(overrides={"internal_hosts": [entry]})


@pytest.mark.parametrize(
    "url, entries, listed",
    [
        ("https://gitlab.lab/o/r", ["gitlab.lab"], True),
        ("https://gitlab.lab:8443/o/r", ["gitlab.lab"], True),  # a bare host: every port
        ("https://gitlab.lab/o/r", ["gitlab.lab:443"], True),  # the scheme's own port
        ("http://gitlab.lab/o/r", ["gitlab.lab:443"], False),
        ("https://gitlab.lab:8443/o/r", ["gitlab.lab:443"], False),
        ("git://127.0.0.1/o/r", ["127.0.0.1:9418"], True),
        ("git://127.0.0.1:18586/o/r", ["127.0.0.1:9418"], False),
        ("https://[::1]:8080/o/r", ["[::1]:8080"], True),
        ("https://[::1]:8081/o/r", ["[::1]:8080"], False),
        ("https://[0::1]:8080/o/r", ["::1"], True),
        ("https://127.0.0.1:8080/o/r", ["localhost:8080"], False),  # names are not resolved
        ("https://gitlab.lab/o/r", ["bad:entry:x"], False),
    ],
)
def test_an_entry_with_a_port_allows_that_port_only(url, entries, listed):
    assert listed_internal_host(url, entries) is listed


def test_a_listed_host_at_another_port_is_refused_naming_the_entry_that_would_allow_it():
    with pytest.raises(SpecError, match=r"port 22 of 127\.0\.0\.1.*'127\.0\.0\.1:22'"):
        check_clone_host("https://127.0.0.1:22/o/r", ["127.0.0.1:443"], lambda h: [h])
    with pytest.raises(SpecError, match=r"'\[::1\]:22'"):
        check_clone_host("https://[::1]:22/o/r", ["[::1]:443"], lambda h: [h])
