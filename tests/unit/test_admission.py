"""Admission decisions for total, per-repository and memory limits."""

import pytest

from minibinder.errors import QuotaExceeded
from minibinder.sessions.admission import (
    ClientLoad,
    Occupancy,
    check_admission,
    check_client_build,
    check_client_stream,
    client_key,
    repo_limit,
    total_limit,
)
from minibinder.settings_load import load_config

GIB = 2**30


@pytest.mark.parametrize(
    "settings, memory, expected",
    [
        ({}, 24 * GIB, 23),  # (24 GiB - 1 GiB headroom) / 1 GiB reservations
        ({"max_sessions": 10}, 24 * GIB, 10),
        ({"max_sessions": 100}, 24 * GIB, 23),  # never more than memory allows
        ({"session_memory_reservation": "512M"}, 4 * GIB, 6),
        ({}, GIB // 2, 0),
    ],
)
def test_total_limit(settings, memory, expected):
    assert total_limit(load_config(overrides=settings), memory) == expected


def test_repo_quota_overrides_by_regex():
    config = load_config(
        overrides={"repo_quotas": {"^gh/workshop/": 60, "^gh/tiny/": 1}, "max_sessions_per_repo": 5}
    )
    assert repo_limit(config, "gh/workshop/intro/HEAD") == 60
    assert repo_limit(config, "gh/tiny/x/main") == 1
    assert repo_limit(config, "gh/other/x/main") == 5


def test_admitted():
    check_admission("gh/o/r/HEAD", Occupancy(3, 1, 24 * GIB), load_config())


def test_server_full_is_polite():
    with pytest.raises(QuotaExceeded, match="server is full: 23 sessions .* room for 23") as error:
        check_admission("gh/o/r/HEAD", Occupancy(23, 0, 24 * GIB), load_config())
    assert error.value.retry_after > 0


def test_repository_full():
    config = load_config(overrides={"max_sessions_per_repo": 2})
    with pytest.raises(QuotaExceeded, match="already has 2 sessions"):
        check_admission("gh/o/r/HEAD", Occupancy(2, 2, 24 * GIB), config)


BROWSER, OTHER, ADDRESS = "browser:b-1", "browser:b-2", "192.0.2.7"


def test_one_browser_may_hold_only_its_share_of_sessions():
    config = load_config(overrides={"max_sessions_per_client": 2})
    check_admission("gh/o/r/HEAD", Occupancy(3, 1, 24 * GIB, 1, 1, BROWSER), config)
    with pytest.raises(QuotaExceeded, match=r"max_sessions_per_client = 2") as refused:
        check_admission("gh/o/r/HEAD", Occupancy(3, 1, 24 * GIB, 2, 2, BROWSER), config)
    assert refused.value.retry_after > 0
    assert "Shut one down" in str(refused.value)
    unlimited = load_config(overrides={"max_sessions_per_client": 0, "max_sessions_per_address": 0})
    check_admission("gh/o/r/HEAD", Occupancy(3, 1, 24 * GIB, 99, 99, BROWSER), unlimited)


def test_a_room_behind_one_address_gets_its_seats_and_no_more():
    config = load_config(overrides={"max_sessions_per_client": 1, "max_sessions_per_address": 40})
    # The 40th browser of a classroom behind one NAT address: one session each.
    check_admission("gh/o/r/HEAD", Occupancy(39, 39, 64 * GIB, 0, 39, OTHER), config)
    with pytest.raises(QuotaExceeded, match=r"network address .*\(max_sessions_per_address = 40\)"):
        check_admission("gh/o/r/HEAD", Occupancy(40, 40, 64 * GIB, 0, 40, OTHER), config)
    # A client without a cookie (a script) is the address, sized for a room.
    check_admission("gh/o/r/HEAD", Occupancy(20, 20, 64 * GIB, 39, 39, ADDRESS), config)
    with pytest.raises(QuotaExceeded, match="max_sessions_per_address = 40"):
        check_admission("gh/o/r/HEAD", Occupancy(40, 40, 64 * GIB, 40, 40, ADDRESS), config)
    # A user the lab's sign-in proxy names is counted as that user only.
    check_admission("gh/o/r/HEAD", Occupancy(45, 45, 64 * GIB, 0, 45, "user:ada"), config)


@pytest.mark.parametrize(
    "address, user, browser, key",
    [("192.0.2.7", "", "", "192.0.2.7"), ("192.0.2.7", "", "b-1", "browser:b-1"),
     ("192.0.2.7", "ada", "b-1", "user:ada")],
)  # fmt: skip
def test_who_the_limits_count(address, user, browser, key):
    assert client_key(address, user, browser) == key


def test_streams_and_builds_per_client():
    config = load_config(
        overrides={
            "max_streams_per_client": 3,
            "max_builds_per_client": 1,
            "max_sessions_per_client": 1,
        }
    )
    check_client_stream(ClientLoad(sessions=0, streams=2, builds=0), BROWSER, config)
    with pytest.raises(QuotaExceeded, match=r"3 launches open.*max_streams_per_client = 3"):
        check_client_stream(ClientLoad(sessions=0, streams=3, builds=0), BROWSER, config)
    with pytest.raises(QuotaExceeded, match="max_sessions_per_client = 1"):
        check_client_stream(ClientLoad(sessions=1, streams=0, builds=0), BROWSER, config)
    # Asking for an image only (build_only) does not count the client's sessions.
    check_client_stream(ClientLoad(1, 0, 0), BROWSER, config, launching=False)
    # An address alone is a room: as many streams as the address may have sessions.
    check_client_stream(ClientLoad(0, 39, 0), ADDRESS, config, launching=False)
    check_client_build(ClientLoad(sessions=0, streams=1, builds=0), config)
    with pytest.raises(QuotaExceeded, match=r"1 builds waiting or running.*max_builds_per_client"):
        check_client_build(ClientLoad(sessions=0, streams=2, builds=1), config)


def test_a_client_without_a_cookie_counts_everyone_behind_its_address():
    config = load_config(overrides={"max_sessions_per_address": 3})
    # Three browsers behind 192.0.2.7 hold the address's three seats; a script (or a forged
    # cookie) from there holds none of its own, and is refused all the same.
    with pytest.raises(QuotaExceeded, match=r"max_sessions_per_address = 3"):
        check_admission("gh/o/r/HEAD", Occupancy(3, 3, 64 * GIB, 0, 3, ADDRESS), config)
