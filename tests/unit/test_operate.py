"""The operator's shell commands: which sessions `stop` means, and the doctor's report."""

from __future__ import annotations

import pytest

from minibinder.cli.operate import Check, format_table, report, sessions_to_stop
from minibinder.errors import MinibinderError
from minibinder.store import SessionRecord


def record(session_id: str, spec: str) -> SessionRecord:
    return SessionRecord(
        session_id,
        "t",
        "c",
        "a:1",
        "img",
        "gh",
        spec,
        f"https://x/{spec}",
        "sha",
        "running",
        0.0,
        0.0,
    )


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
    text, healthy = report(
        [
            Check("docker", True, "the daemon answers"),
            Check("conda channel", False, "no answer", "set conda_channel_alias", warning=True),
        ]
    )
    assert healthy and "warn  conda channel: no answer\n      → set conda_channel_alias" in text
    text, healthy = report([Check("base image", False, "missing", "build it")])
    assert not healthy and text.startswith("FAIL  base image: missing")


def test_tables_line_up():
    assert format_table([["ID", "STATE"], ["abc", "running"]]) == "ID   STATE\nabc  running"


def test_the_doctor_asks_the_r_repository_for_its_newest_index():
    from minibinder.cli.operate import r_package_index
    from minibinder.settings_load import load_config

    assert r_package_index(load_config()) == (
        "https://packagemanager.posit.co/cran/__linux__/bookworm/latest/src/contrib/PACKAGES"
    )
    mirror = load_config(overrides={"r_package_repository": "http://cran.lab.example/"})
    assert r_package_index(mirror) == "http://cran.lab.example/src/contrib/PACKAGES"


def test_the_doctor_says_how_many_seats_the_host_has():
    from minibinder.cli.operate import _seats
    from minibinder.settings_load import load_config

    loopback = _seats(load_config(), 16 * 2**30)
    assert loopback.ok and "this host admits 15 sessions" in loopback.found
    assert "per browser 10, per address 40" in loopback.found
    public = _seats(load_config(overrides={"bind": "0.0.0.0:8585"}), 16 * 2**30)
    assert not public.ok and public.warning and "max_sessions_per_address" in public.fix
    sized = load_config(overrides={"bind": "0.0.0.0:8585", "max_sessions_per_address": 30})
    assert _seats(sized, 16 * 2**30).ok


def test_stop_all_with_keep_pool_leaves_the_unclaimed_warm_sessions():
    from dataclasses import replace

    warm = replace(record("c" * 16, "org/intro/HEAD"), state="warm")
    assert sessions_to_stop([*RECORDS, warm], [], True, None) == [*RECORDS, warm]
    assert sessions_to_stop([*RECORDS, warm], [], True, None, keep_pool=True) == RECORDS


def test_the_doctor_says_why_a_pool_cannot_be_full(tmp_path):
    from minibinder.cli.operate import _warm_pool
    from minibinder.settings_load import load_config

    none = _warm_pool(load_config(overrides={"data_dir": str(tmp_path)}), 8 * 2**30)
    assert none.ok and none.found == "none (warm_pool)"
    config = load_config(
        overrides={"data_dir": str(tmp_path), "warm_pool": {"gh/org/workshop/HEAD": 5}}
    )
    short = _warm_pool(config, 3 * 2**30 + 2**29)  # room for 2 (1 GiB each, 1 GiB headroom)
    assert not short.ok and short.warning
    assert "gh/org/workshop/HEAD 5" in short.found
    assert "the warm pools want 5 sessions but this host admits 2 sessions" in short.found
    assert "memory 3.5 GiB, reservation 1 GiB each, headroom 1 GiB" in short.found
    assert "warm_pool" in short.fix and "session_memory_reservation" in short.fix
    assert _warm_pool(config, 16 * 2**30).ok


def test_the_doctor_probes_the_conda_mirror_the_operator_set():
    from minibinder.cli.operate import _conda_channels
    from minibinder.settings_load import load_config

    asked = []

    def probe(url):
        asked.append(url)
        return "" if "good" in url else "connection refused"

    mirrors = ["https://good.lab.example/conda-forge", "https://down.lab.example/bioconda/"]
    checks = _conda_channels(load_config(overrides={"conda_channels": mirrors}), probe)
    assert asked == [
        "https://good.lab.example/conda-forge/noarch/repodata.json",
        "https://down.lab.example/bioconda/noarch/repodata.json",
    ]
    assert checks[0].ok and "(conda_channels)" in checks[0].found
    assert not checks[1].ok and checks[1].warning
    assert "the mirror set in conda_channels, does not answer (connection refused)" in (
        checks[1].found
    )
    asked.clear()
    alias = load_config(overrides={"conda_channel_alias": "https://good.lab.example/c"})
    assert _conda_channels(alias, probe)[0].ok
    assert asked == ["https://good.lab.example/c/conda-forge/noarch/repodata.json"]
