"""The security tier: every finding of the attacker's-eye review, against the real service,
real containers and a real browser where the finding is about a browser. Same fixtures as the
integration tier."""

from ..integration.conftest import *  # noqa: F403 - the integration fixtures, shared
