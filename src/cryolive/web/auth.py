"""Who is asking: authentication, the session cookie, CSRF tokens and login throttling.

- :class:`Authenticator` is the interface a facility swaps: :class:`LocalPasswords` checks
  cryolive's own argon2 hashes; a single sign-on (OIDC) module would instead run its redirect
  flow and end, like the local login, by calling :meth:`SessionCookies.issue` with the person.
- The session is a signed cookie (itsdangerous, keyed by ``settings.web.secret``) holding a
  random nonce and the person's id; HttpOnly, SameSite=Lax, Secure when served over https,
  expiring after ``session_hours``. A new nonce is drawn at every login (no session fixation).
- The CSRF token is an HMAC of the nonce: every form carries it in ``csrf_token`` and every
  API call that changes something in the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from cryolive.db.repo import visits

COOKIE = "cryolive_session"
THROTTLE_WINDOW_S = 300.0


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

    def issue(self, request: Request, response: Response, *, person_id: int | None) -> WebSession:
        """Set a new session (fresh nonce) on ``response``."""
        session = self.new(person_id=person_id)
        self.store(request, response, session)
        return session

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
        if session is None or not token:
            return False
        return hmac.compare_digest(self.csrf_token(session), token)


class LoginThrottle:
    """At most ``attempts`` failed logins per key (client address, login) in a sliding window.

    In memory, per server process: enough to make password guessing slow; a facility running
    several processes behind a proxy adds the proxy's own limit.
    """

    def __init__(self, *, attempts: int, window_s: float = THROTTLE_WINDOW_S) -> None:
        self._attempts = attempts
        self._window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

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
                if len(times) >= self._attempts:
                    wait = max(wait, times[0] + self._window_s - now)
        return wait

    def failed(self, *keys: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
