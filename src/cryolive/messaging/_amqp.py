"""py-amqp helpers: URL parsing, connecting, and which errors a reconnect can cure."""

from __future__ import annotations

import contextlib
import socket
from typing import Any
from urllib.parse import unquote, urlsplit

import amqp
from amqp import exceptions as amqp_exc

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
