"""The warm pool's sizes: the settings file's, or one set while running until the file's value
changes; and why pools cannot all be full."""

from __future__ import annotations

import pytest

from minibinder.sessions.pool import FILE, SET, replaced, shortfall, sizes_in_force
from minibinder.settings_load import load_config
from minibinder.store import PoolOverride

SPEC = "gh/org/workshop/HEAD"
PAGE = "the operator's page"


@pytest.mark.parametrize(
    "file, override, size, source, why",
    [
        # Nothing set while running: the file's size.
        ({SPEC: 2}, None, 2, FILE, "warm_pool in the settings file"),
        # Set to 0 on the page while the file said 2: 0, and the page says why.
        ({SPEC: 2}, PoolOverride(SPEC, 0, 2, 1.0, PAGE), 0, SET,
         "the settings file says 2, and a change of the file's value takes over again"),
        # The file changed to 5 since (workshop morning): the file wins.
        ({SPEC: 5}, PoolOverride(SPEC, 0, 2, 1.0, PAGE), 5, FILE,
         "changed since the operator's page set 0"),
        # A pool only the page names.
        ({}, PoolOverride(SPEC, 3, None, 1.0, PAGE), 3, SET, "names no such pool"),
        # `stop --all` emptied it.
        ({SPEC: 2}, PoolOverride(SPEC, 0, 2, 1.0, "`minibinder stop --all`"), 0, SET,
         "set by `minibinder stop --all`"),
        # Set before minibinder kept the file's value: a pool the file names is the file's.
        ({SPEC: 2}, PoolOverride(SPEC, 0, None, 0.0, ""), 2, FILE, "changed since"),
        ({}, PoolOverride(SPEC, 4, None, 0.0, ""), 4, SET, "set by the operator's page;"),
    ],
)  # fmt: skip
def test_which_size_is_in_force_and_why(file, override, size, source, why):
    sizes = sizes_in_force(file, [override] if override else [])
    assert sizes[SPEC].size == size and sizes[SPEC].source == source
    assert why in sizes[SPEC].why
    overrides = [override] if override else []
    assert (override in replaced(file, overrides)) is (override is not None and source == FILE)


def test_a_pool_the_file_dropped_keeps_a_size_set_for_it_only_while_the_file_agrees():
    set_with_file = PoolOverride(SPEC, 1, 2, 1.0, PAGE)
    assert sizes_in_force({}, [set_with_file]) == {}  # the file no longer names it: gone
    assert replaced({}, [set_with_file]) == [set_with_file]


def test_pools_that_do_not_fit_the_memory_say_so():
    config = load_config()
    room_for_two = 3 * 2**30 + 2**29
    assert shortfall(config, room_for_two, {SPEC: 2}) == ""
    said = shortfall(config, room_for_two, {SPEC: 5})
    assert said.startswith("the warm pools want 5 sessions but this host admits 2 sessions")
    capped = load_config(overrides={"max_sessions": 1})
    assert "max_sessions 1" in shortfall(capped, 16 * 2**30, {SPEC: 2})
