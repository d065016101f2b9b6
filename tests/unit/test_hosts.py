"""Which Host headers minibinder answers, and that tokens never reach a log line."""

import pytest

from minibinder.server import scrub
from minibinder.settings_load import load_config
from minibinder.web.hosts import host_allowed


@pytest.mark.parametrize(
    "settings, host, allowed",
    [
        ({"public_url": "https://binder.example.org/"}, "binder.example.org", True),
        ({"public_url": "https://binder.example.org/"}, "binder.example.org:443", True),
        ({"public_url": "https://binder.example.org/"}, "attacker.example", False),
        # The names of the address listened on stay answered beside public_url (#22 item 2).
        ({"public_url": "https://binder.example.org/"}, "127.0.0.1:8585", True),
        ({"public_url": "https://binder.example.org/"}, "localhost:8585", True),
        ({"public_url": "https://binder.example.org/"}, "127.0.0.1:9999", False),
        ({"public_url": "http://w.example.org:8585/", "bind": "0.0.0.0:8585"},
         "198.51.100.20:8585", True),
        ({"public_url": "http://w.example.org:8585/", "bind": "0.0.0.0:8585"},
         "attacker.example:8585", False),
        ({"public_url": "http://10.0.0.5:8585"}, "10.0.0.5:8585", True),
        ({"public_url": "https://b.example", "allowed_hosts": ["alias.example"]},
         "alias.example", True),
        ({"bind": "127.0.0.1:8585"}, "127.0.0.1:8585", True),
        ({"bind": "127.0.0.1:8585"}, "localhost:8585", True),
        ({"bind": "127.0.0.1:8585"}, "[::1]:8585", True),
        ({"bind": "127.0.0.1:8585"}, "localhost:9999", False),
        ({"bind": "127.0.0.1:8585"}, "attacker.example:8585", False),
        ({"bind": "0.0.0.0:8585"}, "203.0.113.7:8585", True),
        ({"bind": "0.0.0.0:8585"}, "attacker.example:8585", False),
        ({"bind": "0.0.0.0:8585", "allowed_hosts": ["vm.lab"]}, "vm.lab:8585", True),
        ({"bind": "0.0.0.0:8585"}, "", False),
        ({"bind": "0.0.0.0:8585"}, "203.0.113.7:8585\r\nX: y", False),
    ],
)  # fmt: skip
def test_host_allowed(settings, host, allowed):
    assert host_allowed(host, load_config(overrides=settings)) is allowed


@pytest.mark.parametrize(
    "line, scrubbed",
    [
        ("GET /user/abc/lab?token=s3cr3t HTTP/1.1", "GET /user/abc/lab?token=[secret] HTTP/1.1"),
        ("/admin?token=x&since=1", "/admin?token=[secret]&since=1"),
        ("http://h/user/a/tree?a=1&TOKEN=x", "http://h/user/a/tree?a=1&TOKEN=[secret]"),
        ("/x?_xsrf=abc;csrf=def", "/x?_xsrf=[secret];csrf=[secret]"),
        ("/build/gh/o/r/HEAD", "/build/gh/o/r/HEAD"),
    ],
)
def test_tokens_are_scrubbed(line, scrubbed):
    assert scrub(line) == scrubbed


def test_the_start_up_line_names_the_operators_pages_under_the_path_prefix():
    from minibinder.server import listening_line
    from minibinder.settings_load import load_config

    config = load_config(overrides={"public_url": "https://lab.example.edu/binder/"})
    line = listening_line(config)
    assert "http://127.0.0.1:8585/binder/ " in line
    assert "(the operator's pages: http://127.0.0.1:8586/binder/admin/)" in line
    assert "8586/admin/" in listening_line(load_config())


def test_the_operators_listener_answers_to_the_public_name_on_its_own_port():
    from minibinder.settings_load import load_config

    config = load_config(
        overrides={"public_url": "http://w.example.org:8585/", "bind": "0.0.0.0:8585"}
    )
    assert host_allowed("w.example.org:8586", config, config.admin_address)
    assert host_allowed("198.51.100.20:8586", config, config.admin_address)
    assert not host_allowed("w.example.org:8585", config, config.admin_address)
    assert not host_allowed("attacker.example:8586", config, config.admin_address)
