"""The culler's decisions, by time travel: no sleeping."""

import pytest

from minibinder.sessions.culler import Limits, Notice, Usage, cull_notice, should_cull

LIMITS = Limits(idle_timeout=600, max_age=21600, cpu_budget=3600, warning=120)
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
