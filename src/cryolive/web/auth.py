"""Who is asking: authentication, the session cookie, CSRF tokens and login throttling.

- :class:`Authenticator` is the interface a facility swaps: :class:`LocalPasswords` checks
  cryolive's own argon2 hashes; a single sign-on (OIDC) module would instead run its redirect
  flow and end, like the local login, by calling :meth:`SessionCookies.issue` with the person.
- The session is a signed cookie (itsdangerous, keyed by the session secret, see
  :mod:`cryolive.web.secret`) holding a random nonce and the person's id; HttpOnly,
  SameSite=Lax, Secure when served over https, expiring after ``session_hours``. A new nonce is
  drawn at every login (no session fixation).
- A logged-in session is also recorded on the server (``cryolive_web_session``): the cookie is
  good only while its record lasts, and logging out, a password change or losing staff rights
  delete it (:mod:`cryolive.db.repo.web_sessions`).
- The CSRF token is an HMAC of the nonce: every form carries it in ``csrf_token`` and every
  API call that changes something in the ``X-CSRF-Token`` header.
- Failed logins are throttled per client address and login (so a client guessing at a login
  does not lock its owner out) and per client address (so one client cannot guess across many
  logins). The client address is the connection's peer, or, when that peer is one of
  ``settings.web.trusted_proxies``, what the proxy says in ``X-Forwarded-For`` (see
  :class:`TrustedProxies`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Receive, Scope, Send

from cryolive.db.repo import visits, web_sessions

COOKIE = "cryolive_session"
THROTTLE_WINDOW_S = 300.0
MAX_THROTTLE_KEYS = 10_000  # past this many keys, failed() forgets those whose window has passed


class Authenticator(Protocol):
    """Checks a login and password; returns the ISPyB personId, or None."""

    def authenticate(self, session: Session, *, login: str, password: str) -> int | None: ...


class LocalPasswords:
    """Local accounts: argon2 hashes in cryolive's own credential table."""

    def authenticate(self, session: Session, *, login: str, password: str) -> int | None:
        return visits.check_password(session, login=login, password=password)


@dataclass(frozen=True)
class WebSession:
    nonce: str
    person_id: int | None


class SessionCookies:
    def __init__(self, secret: str, *, max_age_s: float) -> None:
        self._secret = secret.encode()
        self._serializer = URLSafeTimedSerializer(secret, salt="cryolive-session")
        self._max_age_s = max_age_s

    def load(self, request: Request) -> WebSession | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=int(self._max_age_s))
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("n"), str):
            return None
        person = data.get("p")
        return WebSession(nonce=data["n"], person_id=person if isinstance(person, int) else None)

    def issue(
        self, request: Request, response: Response, db: Session, *, person_id: int | None
    ) -> WebSession:
        """Set a new session (fresh nonce) on ``response``; a person's is recorded through
        ``db`` (a writer session, committed by the caller)."""
        session = self.new(person_id=person_id)
        if person_id is not None:
            web_sessions.start(
                db,
                nonce=session.nonce,
                person_id=person_id,
                lasts=dt.timedelta(seconds=self._max_age_s),
            )
        self.store(request, response, session)
        return session

    @staticmethod
    def is_live(db: Session, session: WebSession) -> bool:
        """Whether a person's session has not been ended on the server nor expired."""
        return session.person_id is not None and web_sessions.is_live(
            db, nonce=session.nonce, person_id=session.person_id
        )

    def end(self, db: Session, response: Response, session: WebSession | None) -> None:
        """Log out: end the session on the server (through ``db``, a writer session) and
        clear the cookie."""
        if session is not None:
            web_sessions.end(db, nonce=session.nonce)
        self.clear(response)

    @staticmethod
    def new(*, person_id: int | None) -> WebSession:
        return WebSession(nonce=secrets.token_urlsafe(18), person_id=person_id)

    def store(self, request: Request, response: Response, session: WebSession) -> None:
        response.set_cookie(
            COOKIE,
            self._serializer.dumps({"n": session.nonce, "p": session.person_id}),
            max_age=int(self._max_age_s),
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")

    def csrf_token(self, session: WebSession) -> str:
        return hmac.new(self._secret, b"csrf:" + session.nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: WebSession | None, token: str | None) -> bool:
        if session is None or not token or not isinstance(token, str):
            return False
        # bytes: compare_digest raises TypeError on a str with non-ASCII characters
        return hmac.compare_digest(
            self.csrf_token(session).encode(), token.encode("utf-8", "surrogatepass")
        )


class LoginThrottle:
    """Failed logins in a sliding window: at most ``attempts`` per client and login, and at
    most ``client_attempts`` per client whatever the login.

    There is no key for a login alone: a client guessing at ``alice`` is refused, but alice
    logging in from elsewhere is not. In memory, per server process: enough to make password
    guessing slow; a facility running several processes behind a proxy adds the proxy's own
    limit.
    """

    def __init__(
        self,
        *,
        attempts: int,
        client_attempts: int | None = None,
        window_s: float = THROTTLE_WINDOW_S,
    ) -> None:
        self._attempts = attempts
        self._client_attempts = client_attempts or attempts * 6
        self._window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._prune_at = MAX_THROTTLE_KEYS
        self._lock = threading.Lock()

    @staticmethod
    def keys(client: str, login: str) -> tuple[str, str]:
        """The keys of a login attempt: (client and login, client)."""
        return f"login:{client}\x00{login}", f"client:{client}"

    def _limit(self, key: str) -> int:
        return self._client_attempts if key.startswith("client:") else self._attempts

    def retry_after(self, *keys: str, now: float | None = None) -> float:
        """Seconds until another attempt is allowed for all ``keys`` (0: allowed now)."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._failures.get(key)
                if not times:
                    continue
                while times and times[0] <= now - self._window_s:
                    times.popleft()
                if not times:
                    del self._failures[key]
                elif len(times) >= self._limit(key):
                    wait = max(wait, times[-self._limit(key)] + self._window_s - now)
        return wait

    def failed(self, *keys: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._failures) >= self._prune_at:  # many clients: forget the expired
                cutoff = now - self._window_s
                for stale in [k for k, t in self._failures.items() if not t or t[-1] <= cutoff]:
                    del self._failures[stale]
                self._prune_at = max(MAX_THROTTLE_KEYS, 2 * len(self._failures))
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


class TrustedProxies:
    """Which peers' ``X-Forwarded-For`` / ``X-Forwarded-Proto`` headers are believed.

    An ASGI middleware: when the connection's peer is one of the configured proxies (addresses
    or CIDR networks), the client becomes the right-most address of ``X-Forwarded-For`` that is
    not itself a trusted proxy, and the scheme that of ``X-Forwarded-Proto``. From any other
    peer the headers are ignored, so a client cannot choose its own address (and with it a
    fresh login throttle). With no proxies configured (the default) nothing is believed.
    """

    def __init__(self, app: ASGIApp, *, proxies: Iterable[str]) -> None:
        self.app = app
        self.networks = [ipaddress.ip_network(p, strict=False) for p in proxies]

    def trusted(self, host: str | None) -> bool:
        if not host or not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.networks:
            client = scope.get("client")
            if client and self.trusted(client[0]):
                scope = dict(scope)
                headers = dict(scope["headers"])
                forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
                hops = [h.strip() for h in forwarded.split(",") if h.strip()]
                while hops and self.trusted(hops[-1]):
                    hops.pop()
                if hops:
                    scope["client"] = (hops[-1], 0)
                proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").strip().lower()
                if proto in ("http", "https"):
                    scope["scheme"] = (
                        proto if scope["type"] == "http" else proto.replace("http", "ws")
                    )
        await self.app(scope, receive, send)
