"""Every value put in a URL is encoded; every value shown is escaped. A dead letter's message
id and a failure message come from outside cryolive's control: neither can reshape a link or
a form's target, nor inject markup."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

from markupsafe import escape
from sqlalchemy.orm import Session

from cryolive.db import make_engine
from cryolive.db.repo import collections
from cryolive.messaging import open_transport
from cryolive.messaging.envelope import Envelope
from cryolive.web.pages import url_segment

HOSTILE_ID = 'odd?x=1&y=2#frag "<b>'
HOSTILE_MESSAGE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _dead_letter(world: Any, message_id: str) -> None:
    body = Envelope.model_validate(
        {
            "key": "movie-hostile",
            "recipe": {
                "name": "spa-preprocess",
                "start": ["motioncorr"],
                "steps": {"motioncorr": {"service": "motioncorr", "queue": "motioncorr"}},
            },
            "step": "motioncorr",
            "message_id": message_id,
        }
    )
    open_transport(world.broker_url).dead_letter("motioncorr", body.to_bytes(), reason="test")


def test_url_segment_encodes_everything_that_shapes_a_url() -> None:
    assert url_segment("a/../b?c=d&e#f g") == "a%2F..%2Fb%3Fc%3Dd%26e%23f%20g"
    assert url_segment(12) == "12" and url_segment("bi23047-100") == "bi23047-100"


def test_a_dead_letter_id_is_encoded_in_its_forms_and_they_still_act_on_it(
    clients: Any, world: Any
) -> None:
    _dead_letter(world, HOSTILE_ID)
    client, csrf = clients["staff"]
    page = client.get("/staff").text
    actions = re.findall(r'action="(/staff/queues/motioncorr/dead/odd[^"]*)"', page)
    encoded = url_segment(HOSTILE_ID)
    assert actions == [
        f"/staff/queues/motioncorr/dead/{encoded}/reinject",
        f"/staff/queues/motioncorr/dead/{encoded}/discard",
    ]
    assert f'data-message="{escape(HOSTILE_ID)}"' in page  # escaped where shown
    done = client.post(html.unescape(actions[1]), data={"csrf_token": csrf})
    assert done.status_code == 303, done.text
    letters = client.get("/api/staff/queues").json()["queues"]
    assert all(d["message_id"] != HOSTILE_ID for q in letters for d in q["newest_dead"])


def test_a_path_like_dead_letter_id_cannot_retarget_its_form(clients: Any, world: Any) -> None:
    _dead_letter(world, "x/../../../../logout")
    client, csrf = clients["staff"]
    page = client.get("/staff").text
    assert 'action="/staff/queues/motioncorr/dead/x%2F..%2F..%2F..%2F..%2Flogout/discard"' in page
    assert "/dead/x/../" not in page
    headers = {"X-CSRF-Token": csrf}
    gone = client.post(
        "/api/staff/queues/motioncorr/dead/x%2F..%2F..%2F..%2F..%2Flogout/discard",
        headers=headers,
    )
    assert gone.status_code in (200, 404)  # never a different route's answer
    assert client.get("/api/me").status_code == 200  # still logged in


def test_failure_messages_are_escaped_in_pages(clients: Any, world: Any) -> None:
    engine = make_engine(world.url)
    with Session(engine) as session, session.begin():
        spec = collections.DataCollectionSpec(
            session_id=world.session_id,
            image_directory=f"{world.root}/{world.visit}/raw6/",
            file_template="*.tiff",
            voltage_kv=300,
            pixel_size_a=0.83,
            total_exposed_dose_e_per_a2=50,
        )
        dc = collections.register_data_collection(session, spec=spec)[1]
        _, program = collections.register_processing_job(
            session,
            data_collection_id=dc,
            recipe="ctf",
            request_key="hostile-message",
            parameters={},
        )
        collections.finish_program(
            session,
            auto_proc_program_id=program,
            success=False,
            message=HOSTILE_MESSAGE[:200],
            when=dt.datetime(2026, 11, 20, 12, 0),
        )
        collections.add_program_message(
            session, auto_proc_program_id=program, severity="ERROR", message=HOSTILE_MESSAGE
        )
    engine.dispose()
    for url in ("/staff", f"/collections/{dc}"):
        page = clients["staff"][0].get(url).text
        assert "<script>alert" not in page and "<img src=x" not in page, url
        assert escape(HOSTILE_MESSAGE) in page, url
