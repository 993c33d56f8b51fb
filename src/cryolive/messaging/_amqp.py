"""py-amqp helpers: URL parsing, connecting, and which errors a reconnect can cure."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import amqp
from amqp import exceptions as amqp_exc

from cryolive.messaging.transport import REASON_HEADER, Delivery

# Errors after which a fresh connection may succeed: the broker went away (connection
# forced, refused or reset, heartbeat lost), a confirm was nacked, or a queue was briefly
# unavailable while the broker restarted.
RECOVERABLE: tuple[type[BaseException], ...] = (
    OSError,
    socket.timeout,
    amqp_exc.ConnectionError,
    amqp_exc.RecoverableChannelError,
    amqp_exc.MessageNacked,
    amqp_exc.NotFound,
)


def connection_params(url: str) -> dict[str, Any]:
    """Keyword arguments for :class:`amqp.Connection` from ``amqp://user:pass@host:port/vhost``."""
    parts = urlsplit(url)
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        raise ValueError(f"url: not an AMQP URL: {url!r}")
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    return {
        "host": f"{parts.hostname}:{parts.port or 5672}",
        "userid": unquote(parts.username or "guest"),
        "password": unquote(parts.password or "guest"),
        "virtual_host": vhost,
        "ssl": parts.scheme == "amqps",
    }


def connect(params: dict[str, Any], *, confirm: bool, heartbeat: int) -> Any:
    """An open py-amqp connection (publisher confirms on when ``confirm``)."""
    conn = amqp.Connection(
        **params, confirm_publish=confirm, heartbeat=heartbeat, connect_timeout=5
    )
    conn.connect()
    return conn


def close_quietly(conn: Any) -> None:
    if conn is None:
        return
    try:
        conn.close()
    except Exception:
        with contextlib.suppress(Exception):
            conn.collect()


def dead_reason(headers: Mapping[str, Any]) -> str:
    if REASON_HEADER in headers:
        return str(headers[REASON_HEADER])
    deaths = headers.get("x-death") or []
    if deaths:
        first = deaths[0]
        return (
            f"broker: {first.get('reason')} from {first.get('queue')} (count {first.get('count')})"
        )
    return "unknown"


QUORUM = {"x-queue-type": "quorum"}


class ConfirmTracker:
    """Publisher confirms of one channel, counted without waiting for each (see
    ``RabbitTransport.consume``): publish sequence numbers still unconfirmed, and any nack."""

    def __init__(self, channel: Any) -> None:
        self.published = 0
        self.outstanding: set[int] = set()
        self.nacked = False
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)

    def sent(self) -> None:
        self.published += 1
        self.outstanding.add(self.published)

    def _settle(self, tag: int, multiple: bool) -> None:
        if multiple:
            self.outstanding = {t for t in self.outstanding if t > tag}
        else:
            self.outstanding.discard(tag)

    def _on_ack(self, tag: int, multiple: bool) -> None:
        self._settle(tag, multiple)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self.nacked = True
        self._settle(tag, multiple)


def deliver(
    channel: Any,
    msg: Any,
    on_message: Callable[[Delivery], None],
    stop: threading.Event,
    deferred: list[int] | None,
) -> None:
    """Hand one py-amqp message to ``on_message``; with ``deferred``, acknowledgements are
    collected there (by delivery tag) to be sent once the outputs' confirms are in."""
    if stop.is_set():
        return  # prefetched after the stop: left unacked, the closing connection returns it
    headers = dict(msg.properties.get("application_headers") or {})
    tag = msg.delivery_tag
    settled = [False]

    def ack() -> None:
        settled[0] = True
        if deferred is None:
            channel.basic_ack(tag)
        else:
            deferred.append(tag)

    def requeue() -> None:
        if not settled[0]:
            settled[0] = True
            channel.basic_reject(tag, requeue=True)

    count = int(headers.get("x-delivery-count", 0))
    try:
        on_message(Delivery(bytes(msg.body), headers, count, ack, requeue))
    finally:
        if not settled[0]:
            # If the connection is gone, the broker requeues the message by itself.
            with contextlib.suppress(*RECOVERABLE):
                requeue()


def deliver_batch(
    channel: Any,
    messages: Sequence[Any],
    on_batch: Callable[[Sequence[Delivery]], None],
) -> None:
    """Hand py-amqp messages to ``on_batch`` together; each is acknowledged when its delivery
    is (publishes are confirmed one by one on this path), and those left unsettled are
    requeued."""
    settled = [False] * len(messages)
    deliveries = []
    for i, msg in enumerate(messages):
        headers = dict(msg.properties.get("application_headers") or {})
        tag = msg.delivery_tag

        def ack(i: int = i, tag: int = tag) -> None:
            settled[i] = True
            channel.basic_ack(tag)

        def requeue(i: int = i, tag: int = tag) -> None:
            if not settled[i]:
                settled[i] = True
                channel.basic_reject(tag, requeue=True)

        count = int(headers.get("x-delivery-count", 0))
        deliveries.append(Delivery(bytes(msg.body), headers, count, ack, requeue))
    try:
        on_batch(deliveries)
    finally:
        for delivery in deliveries:
            # If the connection is gone, the broker requeues the messages by itself.
            with contextlib.suppress(*RECOVERABLE):
                delivery.requeue()
