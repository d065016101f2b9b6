"""Prometheus metrics: build and launch counts and durations by status, sessions, builds running.

Under `minibinder serve` every worker writes to PROMETHEUS_MULTIPROC_DIR (set before this
module is imported), and /metrics sums them.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, float("inf"))

BUILDS = Counter("minibinder_builds_total", "Builds by outcome (built, cached, failed)", ["status"])
BUILD_SECONDS = Histogram(
    "minibinder_build_duration_seconds", "Build duration by outcome", ["status"], buckets=BUCKETS
)
LAUNCHES = Counter(
    "minibinder_launches_total", "Launches by outcome (success, failure)", ["status"]
)
LAUNCH_SECONDS = Histogram(
    "minibinder_launch_duration_seconds",
    "Time from request to ready, by outcome",
    ["status"],
    buckets=BUCKETS,
)
SESSIONS_ENDED = Counter(
    "minibinder_sessions_ended_total",
    "Sessions stopped, by reason (idle, age, cpu, operator, ...)",
    ["reason"],
)
OOM_EVENTS = Counter(
    "minibinder_oom_events_total", "Out-of-memory kills inside sessions (Docker oom events)"
)
IMAGES_REMOVED = Counter(
    "minibinder_images_removed_total", "Images removed by the disk watermark collector"
)
BUILDS_IN_PROGRESS = Gauge(
    "minibinder_builds_in_progress", "Builds running now", multiprocess_mode="livesum"
)
FRONT_APP_THREADS = Gauge(
    "minibinder_front_app_threads_busy",
    "Threads answering minibinder's own pages now",
    multiprocess_mode="livesum",
)
FRONT_UPSTREAM_CONNECTIONS = Gauge(
    "minibinder_front_upstream_connections",
    "Connections from the front to sessions (in use and kept alive)",
    multiprocess_mode="livesum",
)
WORK_SAVED_SECONDS = Histogram(
    "minibinder_kept_work_save_seconds",
    "Time to copy a session's work out as it ended (keep_work)",
    buckets=BUCKETS,
)
WORK_RESTORED = Counter("minibinder_kept_work_restores_total", "Launches kept work was put back in")
WORK_RESTORE_SECONDS = Histogram(
    "minibinder_kept_work_restore_seconds",
    "Time to put kept work back before a session started",
    buckets=BUCKETS,
)
FRONT_CLIENT_CONNECTIONS = Gauge(
    "minibinder_front_client_connections",
    "Client connections the front holds",
    multiprocess_mode="livesum",
)


def note_front(app_threads_busy: int, upstream_connections: int, client_connections: int) -> None:
    """The front's own counts, set once a second by each worker."""
    FRONT_APP_THREADS.set(app_threads_busy)
    FRONT_UPSTREAM_CONNECTIONS.set(upstream_connections)
    FRONT_CLIENT_CONNECTIONS.set(client_connections)


class SessionCollector(Collector):
    """Running sessions, read from the shared store at scrape time (in a swarm, also per
    node); and kept work (count, bytes) from its shelf, when `kept_work` is given."""

    def __init__(
        self,
        count_running: Callable[[], int],
        kept_work: Callable[[], tuple[int, int]] | None = None,
        running_by_node: Callable[[], dict[str, int]] | None = None,
    ):
        self.count_running = count_running
        self.kept_work = kept_work
        self.running_by_node = running_by_node

    def collect(self):
        gauge = GaugeMetricFamily("minibinder_sessions_running", "Sessions running now")
        gauge.add_metric([], self.count_running())
        yield gauge
        if self.kept_work is not None:
            count, size = self.kept_work()
            kept = GaugeMetricFamily(
                "minibinder_kept_work", "People's work kept (per person and repository)"
            )
            kept.add_metric([], count)
            yield kept
            kept_bytes = GaugeMetricFamily("minibinder_kept_work_bytes", "Bytes of kept work")
            kept_bytes.add_metric([], size)
            yield kept_bytes
        if self.running_by_node is not None:
            per_node = GaugeMetricFamily(
                "minibinder_node_sessions_running",
                "Sessions running now on each swarm node",
                labels=["node"],
            )
            for node, count in sorted(self.running_by_node().items()):
                per_node.add_metric([node], count)
            yield per_node


class _ThisProcess(Collector):
    """The metrics of this process (used when there is no multiprocess directory)."""

    def collect(self):
        yield from REGISTRY.collect()


def render_metrics(
    count_running: Callable[[], int],
    kept_work: Callable[[], tuple[int, int]] | None = None,
    running_by_node: Callable[[], dict[str, int]] | None = None,
) -> tuple[bytes, str]:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(SessionCollector(count_running, kept_work, running_by_node))
    return generate_latest(registry), CONTENT_TYPE_LATEST
