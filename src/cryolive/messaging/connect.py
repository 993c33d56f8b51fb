"""Open the transport a broker URL names. The factory sits above the Transport protocol and
both implementations, so that transport.py (which they import) imports neither of them."""

from __future__ import annotations

from typing import Any

from cryolive.messaging.transport import Transport


def open_transport(url: str, *, prefix: str = "", **options: Any) -> Transport:
    """A transport for ``url``: ``memory://[name]`` (embedded) or ``amqp://…`` (RabbitMQ).

    Parameters
    ----------
    url
        Broker URL, as in ``Settings.broker_url``.
    prefix
        Prepended to every queue name (isolates tests and deployments sharing a broker).
    **options
        Passed to the backend (e.g. ``delivery_limit`` for RabbitMQ).
    """
    if url.startswith("memory://"):
        from cryolive.messaging.embedded import EmbeddedTransport

        return EmbeddedTransport(url, prefix=prefix, **options)
    if url.startswith(("amqp://", "amqps://")):
        from cryolive.messaging.rabbitmq import RabbitTransport

        return RabbitTransport(url, prefix=prefix, **options)
    raise ValueError(f"url: unsupported broker URL {url!r} (memory:// or amqp://)")
