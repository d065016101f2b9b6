"""Hostile clone URLs are refused before git runs."""

import pytest

from minibinder.errors import SpecError
from minibinder.repos.urlpolicy import check_clone_url

HTTPS_ONLY = ["https"]

HOSTILE = [
    "",
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
