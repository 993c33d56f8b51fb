"""The one family of processing errors that readers, engines and services raise.

Which member a failure belongs to decides what the pipeline does with the message
(``cryolive.messaging.middleware.retries``):

- :class:`BadInputError` — the input can never be processed (a truncated movie, a gain of the
  wrong shape, a micrograph without Thon rings): retrying cannot help. The movie's failure is
  recorded once, its work closed, and the message settled.
- :class:`RetryableError` — transient (a file still being written, a database or broker
  down): the message is retried later with a growing delay.
- :class:`InternalError` — a bug in cryolive: the message is dead-lettered for a person to
  look at, and the movie's failure is recorded so the run does not wait for it forever.

Any other exception escaping a handler is treated like a retryable one until the service's
attempts are used up, then like an internal error.

This module sits below io, engines and services and imports nothing of cryolive.
"""

from __future__ import annotations


class ProcessingError(Exception):
    """Base of the family. ``reason`` is a short code for tables and counts ("truncated",
    "non-finite", …); ``str(exc)`` is the readable message for a person."""

    reason: str = "error"


class BadInputError(ProcessingError, ValueError):
    """The input can never be processed; retrying cannot help.

    Also a :class:`ValueError`, the type callers of readers and engines caught before the
    family existed.
    """

    reason = "bad-input"


class RetryableError(ProcessingError):
    """A transient failure: the same message may succeed later."""

    reason = "retryable"


class InternalError(ProcessingError):
    """A bug: neither the input nor the environment is at fault."""

    reason = "internal"


def short_reason(exc: BaseException) -> str:
    """What a failure is, in short: its ``reason`` when it has one, else the exception's class
    name without ``Error``."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    return type(exc).__name__.removesuffix("Error") or "error"


def printable(text: str, *, limit: int = 2000) -> str:
    """``text`` as one line of printable characters (a file name may hold a newline, escape
    sequences or other control characters): those are shown escaped, as Python writes them."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)[:limit]
