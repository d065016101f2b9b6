"""The culler's decisions, by time travel: no sleeping."""

import pytest

from minibinder.sessions.culler import Limits, Notice, Usage, cull_notice, should_cull
from minibinder.sessions.launcher import computing

LIMITS = Limits(idle_timeout=600, max_age=21600, cpu_budget=3600, warning=120, disk_bytes=5 * 2**30)
T0 = 1_000_000.0


@pytest.mark.parametrize(
    "usage, now, expected",
    [
        (Usage(T0, T0), T0 + 10, None),
        (Usage(T0, T0), T0 + 599, None),
        (Usage(T0, T0), T0 + 600, "idle"),
        (Usage(T0, T0 + 500), T0 + 1000, None),
        (Usage(T0, T0, busy_kernels=1), T0 + 5000, None),  # computing with the tab closed
        (Usage(T0, T0 + 21000, busy_kernels=1), T0 + 21600, "age"),
        (Usage(T0, T0 + 21599), T0 + 21600, "age"),
        (Usage(T0, T0 + 21599, extra_seconds=3600), T0 + 21600, None),
        (Usage(T0, T0 + 100, cpu_seconds=3600.0), T0 + 200, "cpu"),
        (Usage(T0, T0 + 100, cpu_seconds=3599.0), T0 + 200, None),
        (Usage(T0, T0 + 100, cpu_seconds=None), T0 + 200, None),
        # "busy" counts only while the CPU time advances: a kernel stuck busy after an OOM
        # restart uses none, and the idle limit runs from when it last did.
        (Usage(T0, T0, busy_kernels=1, cpu_advanced_at=T0 + 4900), T0 + 5000, None),
        (Usage(T0, T0, busy_kernels=1, cpu_advanced_at=T0 + 100), T0 + 5000, "idle"),
        (Usage(T0, T0, busy_kernels=1, cpu_advanced_at=T0 + 100), T0 + 699, None),
        (Usage(T0, T0 + 3000, busy_kernels=1, cpu_advanced_at=T0), T0 + 3500, None),
        # What a session wrote to its own filesystem, against session_disk_limit.
        (Usage(T0, T0 + 100, disk_bytes=6 * 2**30), T0 + 200, "disk"),
        (Usage(T0, T0 + 100, disk_bytes=4 * 2**30), T0 + 200, None),
        (Usage(T0, T0 + 100, disk_bytes=None), T0 + 200, None),
    ],
)
def test_should_cull(usage, now, expected):
    assert should_cull(usage, now, LIMITS) == expected


@pytest.mark.parametrize(
    "usage, now, expected",
    [
        (Usage(T0, T0), T0 + 100, None),
        (Usage(T0, T0), T0 + 480, Notice("idle", 120)),
        (Usage(T0, T0), T0 + 590, Notice("idle", 10)),
        (Usage(T0, T0 + 590), T0 + 600, None),  # activity resets the idle warning
        (Usage(T0, T0 + 21400), T0 + 21500, Notice("age", 100)),
        (Usage(T0, T0, busy_kernels=2), T0 + 21490, Notice("age", 110)),
        (Usage(T0, T0, busy_kernels=2), T0 + 3000, None),
    ],
)
def test_cull_notice(usage, now, expected):
    assert cull_notice(usage, now, LIMITS) == expected


def test_a_day_in_the_life():
    usage = Usage(T0, T0)
    decisions = [should_cull(usage, T0 + minute * 60, LIMITS) for minute in range(12)]
    assert decisions.index("idle") == 10


@pytest.mark.parametrize(
    "before, at, now_cpu, now, expected",
    [
        (10.0, 100.0, 25.0, 115.0, True),  # a full CPU for 15 s
        (10.0, 100.0, 13.0, 115.0, True),  # 20 %
        (10.0, 100.0, 10.4, 115.0, False),  # an idle server answering probes
        (10.0, 100.0, 10.0, 115.0, False),
        (0.0, 0.0, 3.0, 115.0, True),  # the first look: it has worked at all
    ],
)
def test_what_counts_as_computing(before, at, now_cpu, now, expected):
    assert computing(before, at, now_cpu, now) is expected
