"""The manager's side of agent reports: check one (key, time, replay), keep what it says about
its node, and say what the agent should do next. The sessions' part goes to the launcher
(`Sessions.take_reported`), which the web face calls with what `take_report` returns.
"""

from __future__ import annotations

from ..config import Config
from ..store import Store
from .reports import (
    Answer,
    NodeRecord,
    Report,
    agent_fact,
    check_newer,
    node_record,
    parse_report,
    read_node_record,
    verify,
)

PROBE_FACT = "agent probe image"  # what the doctor last pushed for every node to pull


def take_report(
    config: Config, store: Store, key: bytes, sent_at: str, signature: str, body: bytes, now: float
) -> tuple[Report, Answer]:
    """The report in `body`, checked and kept, and the answer to it; ReportError says why
    one is refused (and nothing is kept)."""
    verify(key, sent_at, body, signature, now)
    report = parse_report(body)
    fact = agent_fact(report.node)
    check_newer(read_node_record(store.fact(fact)), sent_at)
    store.remember(fact, node_record(report, float(sent_at)))
    answer = Answer(
        store.fact(PROBE_FACT) or "", config.registry, config.image_gc_high, config.image_gc_low
    )
    return report, answer


def node_records(store: Store, node_ids: list[str]) -> dict[str, NodeRecord | None]:
    """Each node's last report, None for a node whose agent never reported."""
    return {node: read_node_record(store.fact(agent_fact(node))) for node in node_ids}
