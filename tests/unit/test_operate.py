"""The operator's shell commands: which sessions `stop` means, and the doctor's report."""

from __future__ import annotations

import pytest

from minibinder.cli.operate import Check, format_table, report, sessions_to_stop
from minibinder.errors import MinibinderError
from minibinder.store import SessionRecord


def record(session_id: str, spec: str) -> SessionRecord:
    return SessionRecord(session_id, "t", "c", "a:1", "img", "gh", spec, f"https://x/{spec}",
                         "sha", "running", 0.0, 0.0)  # fmt: skip


RECORDS = [record("a" * 16, "org/intro/HEAD"), record("b" * 16, "org/advanced/HEAD")]


def test_stop_by_id_all_or_pattern():
    assert sessions_to_stop(RECORDS, ["b" * 16], False, None) == [RECORDS[1]]
    assert sessions_to_stop(RECORDS, [], True, None) == RECORDS
    assert sessions_to_stop(RECORDS, [], False, "intro") == [RECORDS[0]]
    with pytest.raises(MinibinderError, match="no such session: " + "c" * 16):
        sessions_to_stop(RECORDS, ["c" * 16], False, None)
    with pytest.raises(MinibinderError, match="--repo: not a regular expression"):
        sessions_to_stop(RECORDS, [], False, "(")


def test_the_report_marks_failures_and_their_fixes():
    text, healthy = report([
        Check("docker", True, "the daemon answers"),
        Check("conda channel", False, "no answer", "set conda_channel_alias", warning=True),
    ])  # fmt: skip
    assert healthy and "warn  conda channel: no answer\n      → set conda_channel_alias" in text
    text, healthy = report([Check("base image", False, "missing", "build it")])
    assert not healthy and text.startswith("FAIL  base image: missing")


def test_tables_line_up():
    assert format_table([["ID", "STATE"], ["abc", "running"]]) == "ID   STATE\nabc  running"


def test_the_doctor_asks_the_r_repository_for_its_newest_index():
    from minibinder.cli.operate import r_package_index
    from minibinder.config import load_config

    assert r_package_index(load_config()) == (
        "https://packagemanager.posit.co/cran/__linux__/bookworm/latest/src/contrib/PACKAGES"
    )
    mirror = load_config(overrides={"r_package_repository": "http://cran.lab.example/"})
    assert r_package_index(mirror) == "http://cran.lab.example/src/contrib/PACKAGES"


def test_the_doctor_says_how_many_seats_the_host_has():
    from minibinder.cli.operate import _seats
    from minibinder.config import load_config

    loopback = _seats(load_config(), 16 * 2**30)
    assert loopback.ok and "this host admits 15 sessions" in loopback.found
    assert "per browser 10, per address 40" in loopback.found
    public = _seats(load_config(overrides={"bind": "0.0.0.0:8585"}), 16 * 2**30)
    assert not public.ok and public.warning and "max_sessions_per_address" in public.fix
    sized = load_config(overrides={"bind": "0.0.0.0:8585", "max_sessions_per_address": 30})
    assert _seats(sized, 16 * 2**30).ok
