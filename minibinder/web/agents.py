"""Where `minibinder agent` reports (swarm placement): POST /agent/report, signed with the
per-cluster key instead of a cookie or token. A refused report changes nothing."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, request

from .. import metrics
from ..identity import agent_key
from ..swarm.intake import take_report
from ..swarm.reports import SIGNATURE_HEADER, TIME_HEADER, ReportError, answer_body, sign_answer
from .api import services

blueprint = Blueprint("agents", __name__)
log = logging.getLogger(__name__)
MAX_REPORT_BYTES = 2 * 2**20
PATH = "/agent/report"


def _refuse(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, mimetype="text/plain")


@blueprint.post(PATH)
def report() -> Response:
    app_services = services()
    config = app_services.config
    if config.placement != "swarm":
        return _refuse(404, 'agents report only to a manager with placement = "swarm"')
    if (request.content_length or 0) > MAX_REPORT_BYTES:
        return _refuse(413, "the report is too large")
    body = request.get_data(cache=False)[: MAX_REPORT_BYTES + 1]
    if len(body) > MAX_REPORT_BYTES:
        return _refuse(413, "the report is too large")
    key, signature = agent_key(config), request.headers.get(SIGNATURE_HEADER, "")
    try:
        taken, answer = take_report(
            config,
            app_services.store,
            key,
            request.headers.get(TIME_HEADER, ""),
            signature,
            body,
            time.time(),
        )
    except ReportError as error:
        log.warning("agent report from %s refused: %s", request.remote_addr, error)
        return _refuse(403, f"report refused: {error}")
    for usage in taken.sessions:
        if app_services.sessions.take_reported(usage.session, usage.cpu_seconds, usage.oom_kills):
            metrics.OOM_EVENTS.inc(usage.oom_kills)
    reply = answer_body(answer)
    response = Response(reply, mimetype="application/json")
    response.headers[SIGNATURE_HEADER] = sign_answer(key, signature, reply)
    return response
