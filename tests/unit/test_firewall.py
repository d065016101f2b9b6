"""The egress rules, as text: what is refused, what passes, and the settings that shape them."""

from __future__ import annotations

import pytest

from minibinder.errors import ConfigError
from minibinder.firewall import (
    EgressPolicy,
    allowed_networks,
    chain_prefix,
    jumps,
    resolvers_in,
    restore_text,
)
from minibinder.settings_load import load_config

POLICY = EgressPolicy(
    "MB-0123456789ab", ("br-abc", "mbb01234567+"), ("10.9.8.0/24",), ("10.255.255.53",)
)


def rules(text: str, chain: str) -> list[str]:
    return [line.split(" ", 2)[2] for line in text.splitlines() if line.startswith(f"-A {chain} ")]


def test_the_host_chain_lets_only_replies_in():
    host = rules(restore_text(POLICY), "MB-0123456789ab-HOST")
    assert host == [
        "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        "-p tcp -j REJECT --reject-with tcp-reset",
        "-j REJECT",
    ]


def test_the_out_chain_allows_first_then_refuses_every_special_range():
    out = rules(restore_text(POLICY), "MB-0123456789ab-OUT")
    assert out[0].endswith("ESTABLISHED -j RETURN")
    assert out[1] == "-d 10.9.8.0/24 -j RETURN"
    assert out[2:4] == [
        "-d 10.255.255.53/32 -p udp --dport 53 -j RETURN",
        "-d 10.255.255.53/32 -p tcp --dport 53 -j RETURN",
    ]
    refused = {rule.split()[1] for rule in out[4:]}
    for network in (
        "169.254.0.0/16",
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
    ):
        assert network in refused
    assert all("REJECT" in rule for rule in out[4:])


def test_the_restore_text_replaces_only_its_own_chains():
    text = restore_text(POLICY)
    assert text.startswith("*filter\n:MB-0123456789ab-HOST - [0:0]\n:MB-0123456789ab-OUT - [0:0]")
    assert text.endswith("COMMIT\n")
    assert "INPUT" not in text and "DOCKER-USER" not in text


def test_each_bridge_jumps_to_both_chains():
    assert jumps(POLICY) == [
        ("INPUT", ["-i", "br-abc", "-j", "MB-0123456789ab-HOST"]),
        ("DOCKER-USER", ["-i", "br-abc", "-j", "MB-0123456789ab-OUT"]),
        ("INPUT", ["-i", "mbb01234567+", "-j", "MB-0123456789ab-HOST"]),
        ("DOCKER-USER", ["-i", "mbb01234567+", "-j", "MB-0123456789ab-OUT"]),
    ]
    assert len(chain_prefix("f" * 16) + "-HOST") <= 28  # iptables' limit


def test_resolvers_leave_out_loopback_and_ipv6():
    texts = [
        "nameserver 127.0.0.53\nnameserver 10.0.0.2\n# nameserver 1.1.1.1\n",
        "nameserver 10.0.0.2\nnameserver fe80::1\nnameserver 9.9.9.9\nsearch x\n",
    ]
    assert resolvers_in(texts) == ("10.0.0.2", "9.9.9.9")


def test_allowed_entries_resolve_names_and_keep_networks():
    resolved = {"mirror.lab": ["10.1.2.3"], "gone.example": []}
    found = allowed_networks(
        ["10.9.0.0/16", "mirror.lab", "gone.example", "10.1.2.3"], lambda name: resolved[name]
    )
    assert found == ("10.9.0.0/16", "10.1.2.3/32")


@pytest.mark.parametrize(("value", "error"), [
    ("fe80::/10", "only IPv4 is filtered"),
    ("not a host!", "expected an IPv4 address, network or host name"),
    ("999.1.1.1", "expected an IPv4 address, network or host name"),
])  # fmt: skip
def test_bad_allow_entries_are_named(value, error):
    with pytest.raises(ConfigError, match=f"egress_allow: {error}"):
        load_config(overrides={"egress_allow": [value]})


def test_allow_entries_are_normalised():
    config = load_config(
        overrides={"egress_allow": ["10.1.2.3", "10.2.0.0/255.255.0.0", "Mirror.Lab"]}
    )
    assert config.egress_allow == ["10.1.2.3/32", "10.2.0.0/16", "mirror.lab"]
    with pytest.raises(ConfigError, match="egress_filter: expected one of auto, required, off"):
        load_config(overrides={"egress_filter": "sometimes"})


def test_configured_repositories_pass_at_their_address_and_port_only():
    policy = EgressPolicy("MB-x", ("br-abc",), services=(("172.30.0.1", 8123),))
    host = rules(restore_text(policy), "MB-x-HOST")
    assert host[1] == "-d 172.30.0.1/32 -p tcp --dport 8123 -j RETURN"
    assert host[2:] == ["-p tcp -j REJECT --reject-with tcp-reset", "-j REJECT"]
    assert rules(restore_text(policy), "MB-x-OUT")[1] == host[1]


def test_repository_services_read_urls():
    from minibinder.firewall import repository_services

    found = repository_services(
        ["http://172.30.0.1:8123/cran/", "https://mirror.example/x", "ftp://no", ""],
        lambda name: ["198.51.100.7"],
    )
    assert found == (("172.30.0.1", 8123), ("198.51.100.7", 443))
