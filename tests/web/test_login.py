"""Login, logout, the session cookie, CSRF tokens and login throttling."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cryolive.web import create_app
from cryolive.web.auth import COOKIE


def _token(client: TestClient) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert found
    return found.group(1)


def _login(client: TestClient, login: str, password: str, token: str, **extra: str) -> Any:
    form = {"login": login, "password": password, "csrf_token": token, **extra}
    return client.post("/login", data=form)


def test_login_sets_a_secure_session_and_logout_ends_it(app: Any) -> None:
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        response = _login(client, "alice", "password-alice", _token(client), next="/visits/x")
        assert response.status_code == 303 and response.headers["location"] == "/visits/x"
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
        me = client.get("/api/me").json()
        assert me["login"] == "alice" and me["staff"] is False
        out = client.post("/logout", data={"csrf_token": me["csrf_token"]})
        assert out.status_code == 303
        assert client.get("/api/me").status_code == 401


def test_plain_http_cookie_is_not_secure(app: Any) -> None:
    with TestClient(app, follow_redirects=False) as client:
        response = _login(client, "alice", "password-alice", _token(client))
        assert "secure" not in response.headers["set-cookie"].lower()


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil"])
def test_login_goes_only_to_local_pages(app: Any, target: str) -> None:
    with TestClient(app, follow_redirects=False) as client:
        response = _login(client, "alice", "password-alice", _token(client), next=target)
        assert response.headers["location"] == "/visits"


def test_wrong_password_is_refused_with_a_message(app: Any) -> None:
    with TestClient(app, follow_redirects=False) as client:
        response = _login(client, "alice", "wrong-password", _token(client))
        assert response.status_code == 401 and "Wrong login or password" in response.text
        assert client.get("/api/me").status_code == 401


@pytest.mark.parametrize("token", [None, "", "0" * 64])
def test_login_refuses_a_missing_or_wrong_csrf_token(app: Any, token: str | None) -> None:
    with TestClient(app, follow_redirects=False) as client:
        _token(client)
        form = {"login": "alice", "password": "password-alice"}
        if token is not None:
            form["csrf_token"] = token
        response = client.post("/login", data=form)
        assert response.status_code == 403 and "expired" in response.text
        assert client.get("/api/me").status_code == 401


def test_login_refuses_a_token_from_another_session(app: Any) -> None:
    with TestClient(app) as other, TestClient(app, follow_redirects=False) as client:
        _token(client)
        response = _login(client, "alice", "password-alice", _token(other))
        assert response.status_code == 403


def test_a_forged_cookie_is_no_session(app: Any) -> None:
    with TestClient(app, follow_redirects=False) as client:
        client.cookies.set(COOKIE, "eyJuIjoiYSIsInAiOjF9.forged.signature")
        assert client.get("/api/me").status_code == 401
        assert client.get("/visits").headers["location"] == "/login?next=/visits"


@pytest.mark.parametrize(
    "path", ["/logout", "/collections/{dc}/reprocess", "/jobs/1/stop", "/api/jobs/1/stop"]
)
@pytest.mark.parametrize("token", [None, "wrong"])
def test_forms_refuse_a_missing_or_wrong_csrf_token(
    clients: Any, world: Any, path: str, token: str | None
) -> None:
    client, _ = clients["member"]
    url = path.format(dc=world.data_collection_id)
    if url.startswith("/api/"):
        response = client.post(url, headers={} if token is None else {"X-CSRF-Token": token})
    else:
        response = client.post(url, data={} if token is None else {"csrf_token": token})
    assert response.status_code == 403
    assert "CSRF" in response.text
    assert client.get("/api/me").status_code == 200  # still logged in


def test_login_is_throttled_per_login(world: Any) -> None:
    app = create_app(world.settings(login_attempts=3))
    with TestClient(app, follow_redirects=False) as client:
        for _ in range(3):
            assert _login(client, "carol", "guess", _token(client)).status_code == 401
        refused = _login(client, "carol", "password-carol", _token(client))
        assert refused.status_code == 429 and "Too many failed logins" in refused.text
        assert int(refused.headers["retry-after"]) > 0


def test_the_throttle_forgets_expired_keys() -> None:
    from cryolive.web.auth import MAX_THROTTLE_KEYS, LoginThrottle

    throttle = LoginThrottle(attempts=3, window_s=10)
    for n in range(MAX_THROTTLE_KEYS):
        throttle.failed(*throttle.keys(f"10.0.{n // 256}.{n % 256}", "alice"), now=0.0)
    throttle.failed(*throttle.keys("192.0.2.1", "alice"), now=100.0)
    assert len(throttle._failures) == 2  # only the new client's two keys are left
    assert throttle.retry_after(*throttle.keys("10.0.0.1", "alice"), now=100.0) == 0


def test_the_login_page_keeps_a_logged_in_session(app: Any) -> None:
    """Opening /login in a second tab once logged in says so and ends nothing."""
    with TestClient(app, follow_redirects=False) as client:
        _login(client, "alice", "password-alice", _token(client))
        page = client.get("/login", params={"next": "/visits/bi10001-1"})
        assert page.status_code == 200 and "set-cookie" not in page.headers
        assert "You are logged in as <strong>alice</strong>" in page.text
        assert 'href="/visits/bi10001-1">Continue' in page.text
        assert 'name="password"' not in page.text
        assert client.get("/api/me").json()["login"] == "alice"  # still logged in
