"""Web security: the session secret, sessions that end on the server, login throttling and
exact logins, trusted proxies, CSRF tokens of any text, and the headers on every response.

Runs on SQLite and MariaDB (the ``world`` fixture). People made here have logins of their
own, so ending their sessions never touches the shared clients of the other tests.
"""

from __future__ import annotations

import re
import stat
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.db import make_engine, upgrade
from cryolive.db.repo import visits
from cryolive.web import create_app
from cryolive.web.auth import COOKIE
from cryolive.web.secret import SECRET_FILE, WeakSecret

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "cryolive" / "web" / "templates"


def _token(client: TestClient) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert found
    return found.group(1)


def _login(client: TestClient, login: str, password: str) -> Any:
    form = {"login": login, "password": password, "csrf_token": _token(client)}
    return client.post("/login", data=form)


def _person(world: Any, *, staff: bool = False) -> str:
    """A new person with password ``password-<login>`` (committed); their login."""
    login = f"p{uuid.uuid4().hex[:10]}"
    engine = make_engine(world.url)
    with Session(engine) as session, session.begin():
        pid = visits.ensure_person(session, login=login)
        visits.set_password(session, person_id=pid, password=f"password-{login}")
        visits.add_member(session, session_id=world.session_id, person_id=pid, role="Team Member")
        if staff:
            visits.make_staff(session, person_id=pid)
    engine.dispose()
    return login


def _admin(world: Any, *args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(
        build_app(), ["admin", *args], input=stdin, env={"CRYOLIVE_DATABASE_URL": world.url}
    )
    assert result.exit_code == 0, result.output
    return result.output


def _replay(app: Any, cookie: str) -> TestClient:
    """A client of its own that presents a copied session cookie."""
    client = TestClient(app, follow_redirects=False)
    client.cookies.set(COOKIE, cookie)
    return client


# --- the session secret ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        "change-me-in-production",  # the old shipped default
        "test-secret",
        "",
        "   ",
        "short-but-random-3f9a",
        "x" * 64,  # long but one character
    ],
)
def test_the_app_refuses_a_known_empty_or_short_secret(world: Any, secret: str) -> None:
    with pytest.raises(WeakSecret, match=r"settings\.web\.secret"):
        create_app(world.settings(secret=secret))


def test_cryolive_web_refuses_the_old_default_with_a_clear_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        build_app(),
        ["web"],
        env={
            "CRYOLIVE_WEB__SECRET": "change-me-in-production",
            "CRYOLIVE_DATA_ROOT": str(tmp_path),
        },
    )
    assert result.exit_code == 2
    assert "published example" in result.output and "CRYOLIVE_WEB__SECRET" in result.output


def test_a_cookie_signed_with_the_old_default_gets_nowhere(app: Any, world: Any) -> None:
    engine = make_engine(world.url)
    with Session(engine) as session:
        carol = visits.person_id(session, login="carol")
    engine.dispose()
    for secret in ("change-me-in-production", "test-secret"):
        forged = URLSafeTimedSerializer(secret, salt="cryolive-session").dumps(
            {"n": "forged-nonce", "p": carol}
        )
        with _replay(app, forged) as client:
            assert client.get("/api/me").status_code == 401
            assert client.get("/api/staff/queues").status_code == 401
            assert client.get("/staff").headers["location"].startswith("/login")


def test_a_cookie_signed_with_the_right_key_needs_a_login_on_record(app: Any, world: Any) -> None:
    """Even the key's holder cannot make a session the server did not start."""
    engine = make_engine(world.url)
    with Session(engine) as session:
        carol = visits.person_id(session, login="carol")
    engine.dispose()
    secret = world.settings().web.secret.get_secret_value()
    forged = URLSafeTimedSerializer(secret, salt="cryolive-session").dumps({"n": "x", "p": carol})
    with _replay(app, forged) as client:
        assert client.get("/api/me").status_code == 401


def test_without_a_secret_one_is_generated_once_private_and_kept(
    world: Any, tmp_path: Path
) -> None:
    settings = world.settings(secret=None).model_copy(update={"data_root": tmp_path / "state"})
    first = create_app(settings)
    path = tmp_path / "state" / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text()
    assert len(key.strip()) >= 32
    with TestClient(first, follow_redirects=False) as client:
        assert _login(client, "alice", "password-alice").status_code == 303
        cookie = client.cookies[COOKIE]
    second = create_app(settings)  # the next start: same key, the login still holds
    assert path.read_text() == key
    with _replay(second, cookie) as client:
        assert client.get("/api/me").json()["login"] == "alice"

    path.chmod(0o644)  # a key others can read is no secret
    with pytest.raises(WeakSecret, match="chmod 600"):
        create_app(settings)


# --- sessions end on the server -------------------------------------------------------------


def test_a_cookie_replayed_after_logout_is_refused(app: Any, world: Any) -> None:
    login = _person(world)
    with TestClient(app, follow_redirects=False) as client:
        assert _login(client, login, f"password-{login}").status_code == 303
        cookie = client.cookies[COOKIE]
        csrf = client.get("/api/me").json()["csrf_token"]
        with _replay(app, cookie) as copy:  # a second browser with the same cookie
            assert copy.get("/api/me").status_code == 200
        assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    with _replay(app, cookie) as copy:
        assert copy.get("/api/me").status_code == 401
        assert copy.get(f"/api/visits/{world.visit}").status_code == 401


def test_logging_out_ends_only_that_session(app: Any, world: Any) -> None:
    login = _person(world)
    with (
        TestClient(app, follow_redirects=False) as laptop,
        TestClient(app, follow_redirects=False) as desktop,
    ):
        for client in (laptop, desktop):
            assert _login(client, login, f"password-{login}").status_code == 303
        csrf = laptop.get("/api/me").json()["csrf_token"]
        laptop.post("/logout", data={"csrf_token": csrf})
        assert laptop.get("/api/me").status_code == 401
        assert desktop.get("/api/me").status_code == 200


def test_a_password_change_ends_every_session(app: Any, world: Any) -> None:
    login = _person(world)
    with TestClient(app, follow_redirects=False) as client:
        assert _login(client, login, f"password-{login}").status_code == 303
        cookie = client.cookies[COOKIE]
    out = _admin(world, "set-password", login, "--password-stdin", stdin="a-new-password\n")
    assert "sessions have ended" in out
    with _replay(app, cookie) as copy:
        assert copy.get("/api/me").status_code == 401
    with TestClient(app, follow_redirects=False) as client:
        assert _login(client, login, f"password-{login}").status_code == 401
        assert _login(client, login, "a-new-password").status_code == 303


def test_revoking_staff_rights_ends_the_session_and_staff_access(app: Any, world: Any) -> None:
    login = _person(world, staff=True)
    with TestClient(app, follow_redirects=False) as client:
        assert _login(client, login, f"password-{login}").status_code == 303
        assert client.get("/api/staff/queues").status_code == 200
        cookie = client.cookies[COOKIE]
    assert "no longer staff" in _admin(world, "revoke-staff", login)
    with _replay(app, cookie) as copy:
        assert copy.get("/api/staff/queues").status_code == 401
        assert copy.get("/staff").headers["location"].startswith("/login")
    with TestClient(app, follow_redirects=False) as client:  # logging in again: no staff
        assert _login(client, login, f"password-{login}").status_code == 303
        assert client.get("/api/me").json()["staff"] is False
        assert client.get("/api/staff/queues").status_code == 403


def test_a_live_stream_ends_with_its_session(app: Any, world: Any) -> None:
    login = _person(world)
    with TestClient(app, follow_redirects=False) as client:
        assert _login(client, login, f"password-{login}").status_code == 303
        url = f"/api/collections/{world.data_collection_id}/events"
        lines: list[str] = []

        def watch() -> None:
            with client.stream("GET", url) as response:
                for line in response.iter_lines():
                    lines.append(line)
                    if line.startswith("event: update"):
                        _admin(world, "end-sessions", login)  # e.g. a stolen laptop

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        watcher.join(timeout=20)
        assert not watcher.is_alive(), "the stream went on after its session ended"
        assert lines.count("event: update") == 1


def test_end_sessions_logs_a_person_out_everywhere(app: Any, world: Any) -> None:
    login = _person(world)
    with TestClient(app, follow_redirects=False) as client:
        assert _login(client, login, f"password-{login}").status_code == 303
        assert "1 web session(s)" in _admin(world, "end-sessions", login)
        assert client.get("/api/me").status_code == 401


# --- login throttling, exact logins, trusted proxies ----------------------------------------


def _client(app: Any, host: str) -> TestClient:
    return TestClient(app, follow_redirects=False, client=(host, 40000))


def test_a_guesser_does_not_lock_the_owner_out(world: Any) -> None:
    app = create_app(world.settings(login_attempts=3, client_login_attempts=100))
    with _client(app, "198.51.100.7") as guesser, _client(app, "192.0.2.10") as owner:
        for _ in range(3):
            assert _login(guesser, "alice", "guess").status_code == 401
        refused = _login(guesser, "alice", "password-alice")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert _login(owner, "alice", "password-alice").status_code == 303  # elsewhere: in


def test_one_client_is_slowed_across_logins(world: Any) -> None:
    app = create_app(world.settings(login_attempts=3, client_login_attempts=5))
    with _client(app, "198.51.100.8") as guesser, _client(app, "192.0.2.11") as other:
        for login in ("alice", "alice", "bob", "bob", "carol"):
            assert _login(guesser, login, "guess").status_code == 401
        assert _login(guesser, "dave", "guess").status_code == 429  # a login not tried yet
        assert _login(other, "bob", "password-bob").status_code == 303


@pytest.mark.parametrize("variant", ["Alice", "ALICE", "alíce", "alice ", "ålice"])
def test_logins_compare_exactly(app: Any, variant: str) -> None:
    """MariaDB's collations deem these equal to ``alice``; a login is not a near miss."""
    with TestClient(app, follow_redirects=False) as client:
        response = _login(client, variant, "password-alice")
        assert response.status_code == 401, variant
        assert client.get("/api/me").status_code == 401


def test_forwarded_for_is_ignored_from_an_untrusted_peer(world: Any) -> None:
    app = create_app(world.settings(login_attempts=2))
    with _client(app, "127.0.0.1") as client:
        for n in range(2):
            headers = {"X-Forwarded-For": f"203.0.113.{n}"}
            form = {"login": "bob", "password": "guess", "csrf_token": _token(client)}
            assert client.post("/login", data=form, headers=headers).status_code == 401
        form = {"login": "bob", "password": "password-bob", "csrf_token": _token(client)}
        fresh = {"X-Forwarded-For": "203.0.113.99"}  # a new address of its own choosing
        assert client.post("/login", data=form, headers=fresh).status_code == 429


def test_forwarded_for_is_believed_from_a_trusted_proxy(world: Any) -> None:
    app = create_app(world.settings(login_attempts=2, trusted_proxies=["10.1.0.0/16"]))
    with _client(app, "10.1.2.3") as proxy:

        def attempt(client_address: str, password: str) -> int:
            form = {"login": "bob", "password": password, "csrf_token": _token(proxy)}
            headers = {"X-Forwarded-For": f"{client_address}, 10.1.9.9"}  # two proxies
            return int(proxy.post("/login", data=form, headers=headers).status_code)

        assert [attempt("203.0.113.5", "guess") for _ in range(2)] == [401, 401]
        assert attempt("203.0.113.5", "password-bob") == 429  # that client is throttled
        assert attempt("203.0.113.6", "password-bob") == 303  # another behind the proxy: in


def test_a_trusted_proxy_decides_the_cookies_secure_flag(world: Any) -> None:
    app = create_app(world.settings(trusted_proxies=["10.1.2.3"]))
    with _client(app, "10.1.2.3") as proxy:
        form = {"login": "alice", "password": "password-alice", "csrf_token": _token(proxy)}
        response = proxy.post("/login", data=form, headers={"X-Forwarded-Proto": "https"})
        assert "secure" in response.headers["set-cookie"].lower()
    with _client(app, "10.9.9.9") as direct:  # not a proxy: its header is ignored
        form = {"login": "alice", "password": "password-alice", "csrf_token": _token(direct)}
        response = direct.post("/login", data=form, headers={"X-Forwarded-Proto": "https"})
        assert "secure" not in response.headers["set-cookie"].lower()


def test_trusted_proxies_must_be_addresses(world: Any) -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        world.settings(trusted_proxies=["proxy.example.org"])


# --- CSRF tokens of any text ----------------------------------------------------------------


@pytest.mark.parametrize("token", ["é" * 64, "☃", "\u00ff" * 3])
def test_a_non_ascii_csrf_token_is_refused_not_an_error(
    app: Any, clients: Any, world: Any, token: str
) -> None:
    with TestClient(app, follow_redirects=False) as client:
        _token(client)
        form = {"login": "alice", "password": "password-alice", "csrf_token": token}
        assert client.post("/login", data=form).status_code == 403
    client, _ = clients["member"]
    form = client.post(
        f"/collections/{world.data_collection_id}/reprocess", data={"csrf_token": token}
    )
    assert form.status_code == 403 and "CSRF" in form.text
    api = client.post("/api/jobs/1/stop", headers={"X-CSRF-Token": token.encode()})
    assert api.status_code == 403 and "CSRF" in api.json()["detail"]


# --- headers and assets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/login",
        "/visits",
        "/api/me",
        "/api/visits",
        "/static/cryolive.css",
        "/vendor/plotly.min.js",
        "/docs",
        "/openapi.json",
        "/vendor/swagger-ui/swagger-ui.css",
        "/no/such/page",
        "/api/movies/notanumber",
    ],
)
@pytest.mark.parametrize("role", ["anonymous", "member"])
def test_every_response_has_the_security_headers(clients: Any, path: str, role: str) -> None:
    client, _ = clients[role]
    headers = client.get(path).headers
    csp = headers["content-security-policy"]
    script_src = re.search(r"script-src ([^;]*)", csp)
    assert script_src and script_src.group(1).split() == ["'self'"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"


def test_a_crash_is_a_plain_500_with_the_security_headers(world: Any) -> None:
    app = create_app(world.settings())

    @app.get("/api/crash-for-test")
    def crash() -> None:
        raise RuntimeError("secret detail: /etc/shadow")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/crash-for-test")
    assert response.status_code == 500
    assert "secret detail" not in response.text and "Internal error" in response.json()["detail"]
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_docs_serve_swagger_ui_from_the_package(clients: Any) -> None:
    client, _ = clients["anonymous"]
    page = client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources)
    assert "cdn" not in page.text.lower()
    for source in sources:
        asset = client.get(source)
        assert asset.status_code == 200 and len(asset.content) > 100, source
    assert "SwaggerUIBundle" in client.get("/vendor/swagger-ui/swagger-ui-bundle.js").text
    assert client.get("/redoc").status_code == 404  # it would load from a CDN


def test_templates_hold_no_inline_script() -> None:
    for template in sorted(TEMPLATES.glob("*.html")):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, f"{template.name}: {tag}"
        handlers = re.findall(r"\son[a-z]+\s*=", text)
        assert handlers == [], f"{template.name}: event handler attributes {handlers}"
        assert "javascript:" not in text.lower(), template.name


@pytest.mark.parametrize("world", ["mariadb"], indirect=True)  # accounts exist on MariaDB only
def test_logins_work_with_least_privilege_accounts(world: Any) -> None:
    """On MariaDB the web reads as the read-only account and records logins as the writer."""
    import sqlalchemy as sa

    from cryolive.db import Account, grant_accounts

    tag = uuid.uuid4().hex[:8]
    writer = Account(f"cww_{tag}", "writer-password-1")
    reader = Account(f"cwr_{tag}", "reader-password-1")
    admin = make_engine(world.url)
    grant_accounts(admin, writer=writer, reader=reader)
    url = admin.url

    def as_(account: Account) -> str:
        return url.set(username=account.name, password=account.password).render_as_string(False)

    try:
        settings = world.settings(reader_url=as_(reader)).model_copy(
            update={"database_url": as_(writer)}
        )
        with TestClient(create_app(settings), follow_redirects=False) as client:
            assert _login(client, "alice", "password-alice").status_code == 303
            me = client.get("/api/me").json()
            assert me["login"] == "alice"
            assert client.post("/logout", data={"csrf_token": me["csrf_token"]}).status_code == 303
            assert client.get("/api/me").status_code == 401
        reading = make_engine(as_(reader))
        with pytest.raises(sa.exc.DBAPIError, match="denied"), reading.begin() as connection:
            connection.exec_driver_sql("DELETE FROM cryolive_web_session")
        reading.dispose()
    finally:
        with admin.begin() as connection:
            for account in (writer, reader):
                connection.exec_driver_sql(f"DROP USER IF EXISTS {account.sql()}")
        admin.dispose()


def test_cryolive_web_refuses_a_database_behind_this_version(tmp_path: Path) -> None:
    """A database one migration behind (its pages would fail on the missing table with a
    500) is refused at start with what to run, not served."""
    url = f"sqlite:///{tmp_path / 'cryolive.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE cryolive_series_row"))
        connection.execute(sa.text("UPDATE cryolive_alembic_version SET version_num = '0006'"))
    engine.dispose()
    result = CliRunner().invoke(
        build_app(),
        ["web"],
        env={
            "CRYOLIVE_DATABASE_URL": url,
            "CRYOLIVE_DATA_ROOT": str(tmp_path),
            "CRYOLIVE_WEB__SECRET": "Qm7vXk2pLr9sTz4wYb8nHc3dFg6jKe5aUo1iPq0x",
        },
    )
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "behind this cryolive" in said and "cryolive db upgrade" in said and "0006" in said
