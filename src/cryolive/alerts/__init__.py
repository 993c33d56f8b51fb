"""Alerts: rules over a live session's measures, pace, failures, backlog and queues, raised
once until they clear, delivered by e-mail and webhook (docs/alerts.md)."""

from cryolive.alerts._deliver import Notice, post_webhook, send_email
from cryolive.alerts._evaluate import Evaluator
from cryolive.alerts._rules import backlogged, failing, out_of_bounds, stalled, unconsumed

__all__ = [
    "Evaluator",
    "Notice",
    "backlogged",
    "failing",
    "out_of_bounds",
    "post_webhook",
    "send_email",
    "stalled",
    "unconsumed",
]
