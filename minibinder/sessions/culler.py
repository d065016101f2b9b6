"""When a session must go, and when its user is warned: pure functions of (usage, now, limits)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config


@dataclass(frozen=True)
class Limits:
    idle_timeout: float
    max_age: float
    cpu_budget: float
    warning: float
    disk_bytes: float = float("inf")  # what a session may write to disk

    @classmethod
    def from_config(cls, config: Config) -> Limits:
        return cls(
            config.idle_timeout,
            config.max_age,
            config.cpu_budget,
            config.cull_warning,
            config.session_disk_limit,
        )


@dataclass(frozen=True)
class Usage:
    """What is known about a session at one moment."""

    created: float
    last_activity: float  # latest of proxy traffic and what Jupyter reports
    busy_kernels: int = 0  # a computation running with the tab closed is activity
    cpu_seconds: float | None = None
    extra_seconds: float = 0.0  # granted by an operator ("extend")
    # When the cgroup's CPU time was last seen growing; None when unknown.
    cpu_advanced_at: float | None = None
    disk_bytes: int | None = None  # written to its own layer and volumes; None when unknown


@dataclass(frozen=True)
class Notice:
    reason: str  # "idle" | "age"
    seconds_left: float


def effective_activity(usage: Usage, now: float) -> float:
    """A busy kernel is activity only while the session's CPU time advances: a kernel Jupyter
    still reports "busy" after it was killed and restarted uses none, and must not keep the
    session forever."""
    if usage.busy_kernels <= 0:
        return usage.last_activity
    if usage.cpu_advanced_at is None:
        return now
    return max(usage.last_activity, usage.cpu_advanced_at)


def should_cull(usage: Usage, now: float, limits: Limits) -> str | None:
    """The reason a session must stop now ("idle", "age", "cpu", "disk"), or None."""
    if now - usage.created >= limits.max_age + usage.extra_seconds:
        return "age"
    if usage.cpu_seconds is not None and usage.cpu_seconds >= limits.cpu_budget:
        return "cpu"
    if usage.disk_bytes is not None and usage.disk_bytes > limits.disk_bytes:
        return "disk"
    if now - effective_activity(usage, now) >= limits.idle_timeout:
        return "idle"
    return None


def cull_notice(usage: Usage, now: float, limits: Limits) -> Notice | None:
    """What to tell the user when a limit is less than `limits.warning` seconds away."""
    age_left = usage.created + limits.max_age + usage.extra_seconds - now
    idle_left = effective_activity(usage, now) + limits.idle_timeout - now
    reason, left = min((("age", age_left), ("idle", idle_left)), key=lambda pair: pair[1])
    if left <= limits.warning:
        return Notice(reason, max(0.0, left))
    return None


REASONS = {
    "idle": "it was idle for too long",
    "age": "it reached the maximum session length",
    "cpu": "it used up its CPU budget",
    "disk": "it wrote more than its disk limit",
    "operator": "an operator stopped it",
}
