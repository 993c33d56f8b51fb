"""RabbitMQ transport over py-amqp.

Topology, for a logical queue ``q`` (names prefixed by ``prefix``):

- ``q``: quorum queue, ``x-delivery-limit`` set, dead-lettering to ``q.dlq`` through the
  default exchange (a message whose worker keeps dying lands there, marked by the broker);
- ``q.dlq``: quorum queue holding dead letters; cryolive puts its own reason in a header
  (``dlq.q``, where Zocalo's tools look, with ``?dead_letters=zocalo`` on the broker URL);
- ``q.delay.<ms>``: classic durable queue with a message TTL of ``<ms>`` that dead-letters
  back into ``q``: a delayed retry without broker plugins.

Publishes wait for the broker's confirm. Each thread publishes on its own connection;
consumers use a connection of their own. Both reconnect by themselves with backoff.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import amqp
from amqp import exceptions as amqp_exc

from cryolive.messaging._amqp import (
    QUORUM,
    RECOVERABLE,
    ConfirmTracker,
    close_quietly,
    connect,
    connection_params,
    dead_reason,
    deliver,
    deliver_batch,
)
from cryolive.messaging.transport import (
    ORIGIN_HEADER,
    REASON_HEADER,
    BrokerUnavailable,
    DeadLetter,
    Delivery,
    QueueStats,
    dlq_name,
)

log = logging.getLogger(__name__)

GATHER_S = 0.02  # consume_batch: a batch closes when nothing more arrives for this long


class RabbitTransport:
    """Transport on RabbitMQ (see module docstring).

    Parameters
    ----------
    url
        ``amqp://user:password@host:port/vhost``.
    prefix
        Prepended to every queue name.
    delivery_limit
        Redeliveries after which the broker dead-letters a message (``x-delivery-limit``:
        guards against a message that kills its worker every time).
    reconnect_timeout_s
        How long a publish keeps trying to reach the broker before raising
        :class:`BrokerUnavailable`.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "",
        delivery_limit: int = 10,
        reconnect_timeout_s: float = 120.0,
    ) -> None:
        if delivery_limit < 1:
            raise ValueError(f"delivery_limit: must be >= 1, got {delivery_limit}")
        if reconnect_timeout_s <= 0:
            raise ValueError(f"reconnect_timeout_s: must be > 0, got {reconnect_timeout_s}")
        self._params = connection_params(url)
        style = parse_qs(urlsplit(url).query).get("dead_letters", ["cryolive"])[-1]
        if style not in ("cryolive", "zocalo"):
            raise ValueError(
                f"url: dead_letters must be 'cryolive' (<queue>.dlq) or 'zocalo' (dlq.<queue>), "
                f"got {style!r}"
            )
        self._zocalo_dlq = style == "zocalo"
        self._prefix = prefix
        self._delivery_limit = delivery_limit
        self._reconnect_timeout_s = reconnect_timeout_s
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: set[Any] = set()
        self._declared: set[str] = set()
        self._exchanges: set[str] = set()  # fanout exchanges of the topics it used

    def _dlq(self, name: str) -> str:
        """The dead-letter queue of queue ``name`` (prefixed): ``dlq.<name>`` where the URL
        says ``?dead_letters=zocalo`` (Zocalo's tools look there), else ``<name>.dlq``."""
        return f"dlq.{name}" if self._zocalo_dlq else dlq_name(name)

    def _physical(self, queue: str) -> str:
        """The broker's name for ``queue``; ``<q>.dlq`` stands for the dead letters of ``q``."""
        if queue.endswith(".dlq"):
            return self._dlq(self._prefix + queue.removesuffix(".dlq"))
        return self._prefix + queue

    # -- connections -------------------------------------------------------------------
    def _open(self, *, confirm: bool) -> Any:
        conn = connect(self._params, confirm=confirm, heartbeat=0)
        with self._lock:
            self._connections.add(conn)
        return conn

    def _drop(self, conn: Any) -> None:
        with self._lock:
            self._connections.discard(conn)
        close_quietly(conn)

    def _with_publisher(self, action: Callable[[Any, set[str]], None]) -> None:
        """Run ``action(channel, declared)`` on this thread's publishing channel, reconnecting
        on recoverable errors until ``reconnect_timeout_s``."""
        deadline = time.monotonic() + self._reconnect_timeout_s
        delay = 0.05
        local = self._local
        batching = getattr(local, "batching", False)
        while True:
            try:
                if getattr(local, "conn", None) is None:
                    # Batching: confirms are counted, not awaited, per publish (consume waits).
                    local.conn = self._open(confirm=not batching)
                    local.channel = local.conn.channel()
                    local.declared = set()
                    local.tracker = ConfirmTracker(local.channel) if batching else None
                action(local.channel, local.declared)
                if local.tracker is not None:
                    local.tracker.sent()
                return
            except RECOVERABLE as exc:
                self._drop(getattr(local, "conn", None))
                local.conn = None
                if batching:
                    raise  # earlier unconfirmed publishes died too: the consumer redoes the batch
                if time.monotonic() + delay > deadline:
                    raise BrokerUnavailable(f"publish: broker unreachable: {exc!r}") from exc
                log.warning("publisher reconnecting after %r", exc)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    # -- topology ----------------------------------------------------------------------
    def _declare_queue(self, channel: Any, name: str) -> None:
        dlq = self._dlq(name)
        channel.queue_declare(dlq, durable=True, auto_delete=False, arguments=QUORUM)
        channel.queue_declare(
            name,
            durable=True,
            auto_delete=False,
            arguments={
                **QUORUM,
                "x-delivery-limit": self._delivery_limit,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": dlq,
            },
        )
        with self._lock:
            self._declared.update((name, dlq))

    def _exists(self, name: str) -> bool:
        """Whether queue ``name`` exists, whatever its arguments: a queue that others declared
        (a Zocalo facility's, say) is published to as it is, not re-declared with ours. Asked
        on a channel of its own, which a missing queue closes."""
        probe = self._local.conn.channel()
        try:
            probe.queue_declare(name, passive=True)
        except amqp_exc.NotFound:
            return False
        with contextlib.suppress(*RECOVERABLE):
            probe.close()
        return True

    def _existing_or_declared(self, conn: Any, name: str) -> Any:
        """A channel on ``conn`` after making sure queue ``name`` exists, whatever arguments
        it was declared with (tools such as ``cryolive dlq`` must not insist on theirs)."""
        channel = conn.channel()
        try:
            channel.queue_declare(name, passive=True)
            return channel
        except amqp_exc.NotFound:
            channel = conn.channel()  # the failed passive declare closed the channel
            self._declare_queue(channel, name)
            return channel

    def _declare_delay(self, channel: Any, name: str, delay_ms: int) -> str:
        delayed = f"{name}.delay.{delay_ms}"
        channel.queue_declare(
            delayed,
            durable=True,
            auto_delete=False,
            arguments={
                "x-message-ttl": delay_ms,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": name,
            },
        )
        with self._lock:
            self._declared.add(delayed)
        return delayed

    # -- Transport ---------------------------------------------------------------------
    def publish(
        self,
        queue: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        name = self._prefix + queue
        delay_ms = round(delay_s * 1000)
        target = name if delay_ms <= 0 else f"{name}.delay.{delay_ms}"

        def action(channel: Any, declared: set[str]) -> None:
            if target not in declared:
                if not self._exists(name):
                    self._declare_queue(channel, name)
                if delay_ms > 0:
                    self._declare_delay(channel, name, delay_ms)
                declared.add(target)
            message = amqp.Message(body, delivery_mode=2, application_headers=dict(headers or {}))
            channel.basic_publish(message, exchange="", routing_key=target, mandatory=True)

        self._with_publisher(action)

    def broadcast(
        self, topic: str, body: bytes, *, headers: Mapping[str, str] | None = None
    ) -> None:
        """A fanout exchange named by the topic (as python-workflows' broadcasts use)."""
        exchange = self._prefix + topic

        def action(channel: Any, declared: set[str]) -> None:
            if f"exchange:{exchange}" not in declared:
                self._declare_exchange(channel, exchange)
                declared.add(f"exchange:{exchange}")
            message = amqp.Message(body, delivery_mode=2, application_headers=dict(headers or {}))
            channel.basic_publish(message, exchange=exchange, routing_key="")

        self._with_publisher(action)

    def subscribe(self, topic: str, queue: str) -> None:
        exchange, name = self._prefix + topic, self._prefix + queue

        def action(channel: Any, declared: set[str]) -> None:
            self._declare_exchange(channel, exchange)
            if not self._exists(name):
                self._declare_queue(channel, name)
            channel.queue_bind(name, exchange=exchange, routing_key="")

        self._with_publisher(action)

    def _declare_exchange(self, channel: Any, exchange: str) -> None:
        channel.exchange_declare(exchange, "fanout", durable=True, auto_delete=False)
        with self._lock:
            self._exchanges.add(exchange)

    def dead_letter(self, queue: str, body: bytes, *, reason: str) -> None:
        name = self._prefix + queue

        def action(channel: Any, declared: set[str]) -> None:
            if name not in declared:
                self._declare_queue(channel, name)
                declared.add(name)
            headers = {REASON_HEADER: reason, ORIGIN_HEADER: name}
            message = amqp.Message(body, delivery_mode=2, application_headers=headers)
            channel.basic_publish(message, exchange="", routing_key=self._dlq(name), mandatory=True)

        self._with_publisher(action)

    def consume(
        self,
        queue: str,
        on_message: Callable[[Delivery], None],
        *,
        prefetch: int,
        stop: threading.Event,
    ) -> None:
        if prefetch < 1:
            raise ValueError(f"prefetch: must be >= 1, got {prefetch}")
        name = self._prefix + queue
        delay = 0.05
        # prefetch > 1: acknowledgements wait until the confirms of the outputs published for
        # a batch of messages are in, instead of one confirm round trip per message.
        self._local.batching = prefetch > 1
        flush_at = max(1, prefetch // 2)
        pending: list[int] = []
        try:
            while not stop.is_set():
                conn = None
                pending.clear()
                try:
                    conn = self._open(confirm=False)
                    # A queue others declared (a Zocalo facility's) is consumed as it is.
                    channel = self._existing_or_declared(conn, name)
                    channel.basic_qos(0, prefetch, False)
                    deferred = pending if prefetch > 1 else None
                    channel.basic_consume(
                        name,
                        callback=lambda m, ch=channel, d=deferred: deliver(
                            ch, m, on_message, stop, d
                        ),
                    )
                    delay = 0.05
                    while not stop.is_set():
                        try:
                            conn.drain_events(timeout=0.01 if pending else 0.25)
                        except TimeoutError:
                            self._flush(channel, pending)
                            continue
                        if len(pending) >= flush_at:
                            self._flush(channel, pending)
                    self._flush(channel, pending)  # finish the messages in hand
                    return  # closing the connection returns unhandled prefetched messages
                except RECOVERABLE as exc:
                    log.warning("consumer of %s reconnecting after %r", name, exc)
                    self._drop(getattr(self._local, "conn", None))
                    self._local.conn = None
                    stop.wait(delay)
                    delay = min(delay * 2, 2.0)
                finally:
                    self._drop(conn)
        finally:
            self._local.batching = False
            self._drop(getattr(self._local, "conn", None))
            self._local.conn = None

    def consume_batch(
        self,
        queue: str,
        on_batch: Callable[[Sequence[Delivery]], None],
        *,
        prefetch: int,
        stop: threading.Event,
    ) -> None:
        """The broker pushes up to ``prefetch`` unacknowledged messages; those that arrive
        back to back (gaps under :data:`GATHER_S`) make one batch. Publishes on this path wait
        for their confirm each, so a delivery is acknowledged as soon as it is settled."""
        if prefetch < 1:
            raise ValueError(f"prefetch: must be >= 1, got {prefetch}")
        name = self._prefix + queue
        delay = 0.05
        try:
            while not stop.is_set():
                conn = None
                try:
                    conn = self._open(confirm=False)
                    channel = self._existing_or_declared(conn, name)
                    channel.basic_qos(0, prefetch, False)
                    arrived: list[Any] = []
                    channel.basic_consume(name, callback=arrived.append)
                    delay = 0.05
                    while not stop.is_set():
                        with contextlib.suppress(TimeoutError):
                            conn.drain_events(timeout=0.25)
                        while arrived and len(arrived) < prefetch:
                            try:
                                conn.drain_events(timeout=GATHER_S)
                            except TimeoutError:
                                break
                        if arrived and not stop.is_set():
                            batch = arrived[:]
                            arrived.clear()
                            deliver_batch(channel, batch, on_batch)
                    return  # closing the connection returns unhandled prefetched messages
                except RECOVERABLE as exc:
                    log.warning("consumer of %s reconnecting after %r", name, exc)
                    self._drop(getattr(self._local, "conn", None))
                    self._local.conn = None
                    stop.wait(delay)
                    delay = min(delay * 2, 2.0)
                finally:
                    self._drop(conn)
        finally:
            self._drop(getattr(self._local, "conn", None))
            self._local.conn = None

    def _flush(self, channel: Any, pending: list[int]) -> None:
        """Wait for the confirms of this thread's publishes, then send the deferred acks."""
        if not pending:
            return
        tracker = getattr(self._local, "tracker", None)
        if tracker is not None and getattr(self._local, "conn", None) is not None:
            deadline = time.monotonic() + self._reconnect_timeout_s
            while tracker.outstanding:
                if time.monotonic() > deadline:
                    raise BrokerUnavailable("publish: no confirms within reconnect_timeout_s")
                with contextlib.suppress(TimeoutError):
                    self._local.conn.drain_events(timeout=1.0)
            if tracker.nacked:
                raise amqp_exc.MessageNacked("broker refused a publish of this batch")
        for tag in pending:
            channel.basic_ack(tag)
        pending.clear()

    def depth(self, queue: str) -> int:
        conn = self._open(confirm=False)
        try:
            _, count, _ = conn.channel().queue_declare(self._physical(queue), passive=True)
            return int(count)
        except amqp_exc.NotFound:
            return 0
        finally:
            self._drop(conn)

    def stats(self, queue: str) -> QueueStats:
        # A passive declare reports both counts and creates nothing (no management plugin).
        conn = self._open(confirm=False)
        try:
            _, ready, consumers = conn.channel().queue_declare(self._physical(queue), passive=True)
            return QueueStats(queue, int(ready), int(consumers))
        except amqp_exc.NotFound:
            return QueueStats(queue, 0, 0)
        finally:
            self._drop(conn)

    def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetter]:
        conn = self._open(confirm=False)
        letters: list[DeadLetter] = []
        try:
            channel = conn.channel()
            while len(letters) < limit:
                msg = channel.basic_get(self._dlq(self._prefix + queue), no_ack=False)
                if msg is None:
                    break
                headers = dict(msg.properties.get("application_headers") or {})
                letters.append(DeadLetter(bytes(msg.body), dead_reason(headers), headers))
        except amqp_exc.NotFound:
            pass
        finally:
            self._drop(conn)  # un-acked gets go back to the dead-letter queue
        return letters

    def reinject(
        self,
        queue: str,
        *,
        select: Callable[[DeadLetter], bool],
        rewrite: Callable[[bytes], bytes],
    ) -> int:
        name = self._prefix + queue
        conn = self._open(confirm=True)
        moved = 0
        try:
            channel = self._existing_or_declared(conn, name)
            while True:
                msg = channel.basic_get(self._dlq(name), no_ack=False)
                if msg is None:
                    break
                headers = dict(msg.properties.get("application_headers") or {})
                if select(DeadLetter(bytes(msg.body), dead_reason(headers), headers)):
                    fresh = amqp.Message(rewrite(bytes(msg.body)), delivery_mode=2)
                    channel.basic_publish(fresh, exchange="", routing_key=name, mandatory=True)
                    channel.basic_ack(msg.delivery_tag)
                    moved += 1
        finally:
            self._drop(conn)
        return moved

    def discard(self, queue: str, *, select: Callable[[DeadLetter], bool]) -> int:
        conn = self._open(confirm=False)
        dropped = 0
        try:
            channel = conn.channel()
            while True:
                msg = channel.basic_get(self._dlq(self._prefix + queue), no_ack=False)
                if msg is None:
                    break
                headers = dict(msg.properties.get("application_headers") or {})
                if select(DeadLetter(bytes(msg.body), dead_reason(headers), headers)):
                    channel.basic_ack(msg.delivery_tag)
                    dropped += 1
        except amqp_exc.NotFound:
            pass
        finally:
            self._drop(conn)  # the letters kept (not acked) go back to the dead-letter queue
        return dropped

    def purge(self, queue: str) -> int:
        conn = self._open(confirm=False)
        try:
            return int(conn.channel().queue_purge(self._physical(queue)) or 0)
        except amqp_exc.NotFound:
            return 0
        finally:
            self._drop(conn)

    def delete_declared(self) -> None:
        conn = self._open(confirm=False)
        try:
            with self._lock:
                names, self._declared = sorted(self._declared), set()
            for name in names:
                conn.channel().queue_delete(name)
            with self._lock:
                exchanges, self._exchanges = sorted(self._exchanges), set()
            for exchange in exchanges:
                conn.channel().exchange_delete(exchange)
        finally:
            self._drop(conn)

    def close(self) -> None:
        with self._lock:
            conns, self._connections = list(self._connections), set()
        for conn in conns:
            close_quietly(conn)
        self._local = threading.local()
