"""A database with one visit under way, a member who wants alerts, and a data collection;
a local webhook (http.server) and a local SMTP server (aiosmtpd) that record what they get."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.orm import Session, sessionmaker

from cryolive.db import make_engine, session_factory, upgrade
from cryolive.db.repo import alerts, collections, results, visits
from cryolive.records import MovieRecord, MovieRef

NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


@dataclass
class Live:
    sessions: sessionmaker[Session]
    session_id: int
    data_collection_id: int
    movies: int = 0

    def movie(self, created: dt.datetime) -> None:
        """A new movie, registered at ``created``."""
        ref = MovieRef(
            data_collection_id=self.data_collection_id,
            movie_full_path=f"/dls/m02/data/2026/bi1-1/raw/FoilHole_{self.movies}.tiff",
        )
        with self.sessions.begin() as session:
            results.write_result_sets(session, movies=[MovieRecord(movie=ref, created=created)])
        self.movies += 1


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    engine = make_engine(f"sqlite:///{tmp_path / 'alerts.sqlite'}")
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        sid = visits.ensure_visit(
            session,
            visit="bi1-1",
            microscope="m02",
            start=NOW - dt.timedelta(hours=2),
            end=NOW + dt.timedelta(hours=2),
        )
        for login, email in (("ann", "ann@example.org"), ("bob", "bob@example.org")):
            person = visits.ensure_person(session, login=login, email=email)
            visits.add_member(session, session_id=sid, person_id=person, role="Team Member")
        alerts.set_opt_in(session, session_id=sid, enabled=True, login="ann")
        _, dc = collections.register_data_collection(
            session,
            spec=collections.DataCollectionSpec(
                session_id=sid,
                image_directory="/dls/m02/data/2026/bi1-1/raw",
                file_template="*.tiff",
                voltage_kv=300,
                pixel_size_a=1.0,
            ),
        )
    yield Live(sessions, sid, dc)
    engine.dispose()


@dataclass
class Inbox:
    """What the local servers received."""

    posts: list[dict[str, Any]] = field(default_factory=list)
    mails: list[Message] = field(default_factory=list)
    webhook_url: str = ""
    smtp_port: int = 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            box.posts.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    class Mails:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.mails.append(message_from_bytes(envelope.content))
            return "250 OK"

    http = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    box.webhook_url = f"http://127.0.0.1:{http.server_address[1]}/hook"
    box.smtp_port = _free_port()
    smtp = Controller(Mails(), hostname="127.0.0.1", port=box.smtp_port)
    smtp.start()
    try:
        yield box
    finally:
        smtp.stop()
        http.shutdown()
        http.server_close()
