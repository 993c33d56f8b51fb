"""A stalled collection's alert reaches a local webhook and a local SMTP server exactly once;
it is raised again only after it has cleared; its history is kept."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from cryolive.alerts import Evaluator
from cryolive.config import AlertsSettings
from cryolive.db.models import Alert

from .conftest import NOW, Inbox, Live


def _evaluator(live: Live, inbox: Inbox) -> Evaluator:
    settings = AlertsSettings(
        smtp_host="127.0.0.1",
        smtp_port=inbox.smtp_port,
        smtp_from="cryolive@facility.example",
        webhook_url=inbox.webhook_url,
        stalled_after_s=600,
    )
    return Evaluator(live.sessions, settings, public_url="https://cryolive.example/")


def _history(live: Live) -> list[tuple[str, bool]]:
    with live.sessions() as session:
        rows = session.scalars(sa.select(Alert).order_by(Alert.alert_id)).all()
        return [(a.key, a.cleared_at is not None) for a in rows]


def test_a_stalled_collection_is_announced_once_by_webhook_and_mail(
    live: Live, inbox: Inbox
) -> None:
    evaluator = _evaluator(live, inbox)
    live.movie(NOW - dt.timedelta(minutes=5))
    assert evaluator.run_once(NOW) == []  # 5 min quiet: not stalled
    live.movie(NOW - dt.timedelta(minutes=4))
    later = NOW + dt.timedelta(minutes=7)  # 11 min since the last movie
    assert len(evaluator.run_once(later)) == 1
    for minutes in (8, 9, 30):  # still stalled: nothing new is sent
        assert evaluator.run_once(NOW + dt.timedelta(minutes=minutes)) == []
    dc = live.data_collection_id
    assert len(inbox.posts) == 1
    post = inbox.posts[0]
    assert post["rule"] == "stalled" and post["visit"] == "bi1-1"
    assert post["data_collection_id"] == dc
    assert post["link"] == f"https://cryolive.example/collections/{dc}"
    assert "no new movie" in post["text"] and post["link"] in post["text"]
    assert len(inbox.mails) == 1
    mail = inbox.mails[0]
    assert mail["To"] == "ann@example.org, bob@example.org"
    assert "bi1-1" in mail["Subject"] and "stalled" in mail["Subject"]
    assert f"https://cryolive.example/collections/{dc}" in mail.get_payload()
    with live.sessions() as session:
        delivery = session.scalar(sa.select(Alert.delivery))
    assert delivery == "email 2; webhook 200"


def test_a_cleared_alert_fires_again_only_after_clearing(live: Live, inbox: Inbox) -> None:
    evaluator = _evaluator(live, inbox)
    key = f"stalled:visit:{live.session_id}"
    live.movie(NOW - dt.timedelta(minutes=20))
    assert len(evaluator.run_once(NOW)) == 1
    assert evaluator.run_once(NOW + dt.timedelta(minutes=1)) == []
    assert _history(live) == [(key, False)]
    live.movie(NOW + dt.timedelta(minutes=2))  # collection goes on: the alert clears
    assert evaluator.run_once(NOW + dt.timedelta(minutes=3)) == []
    assert _history(live) == [(key, True)]
    assert len(inbox.posts) == 1  # clearing is recorded, not announced
    # quiet again for longer than 10 min: a second occurrence, announced once more
    assert len(evaluator.run_once(NOW + dt.timedelta(minutes=13))) == 1
    assert evaluator.run_once(NOW + dt.timedelta(minutes=14)) == []
    assert _history(live) == [(key, True), (key, False)]
    assert len(inbox.posts) == 2 and len(inbox.mails) == 2


def test_without_the_visit_opt_in_only_the_webhook_hears(live: Live, inbox: Inbox) -> None:
    from cryolive.db.repo import alerts

    with live.sessions.begin() as session:
        alerts.set_opt_in(session, session_id=live.session_id, enabled=False, login="ann")
    live.movie(NOW - dt.timedelta(minutes=20))
    assert len(_evaluator(live, inbox).run_once(NOW)) == 1
    assert len(inbox.posts) == 1 and inbox.mails == []


def test_defocus_out_of_bounds_fires_and_clears_through_the_database(
    live: Live, inbox: Inbox
) -> None:
    from cryolive.db.repo import collections, results
    from cryolive.records import CtfRecord, MotionCorrectionRecord, MovieRecord, MovieRef

    dc = live.data_collection_id
    with live.sessions.begin() as session:
        motion, ctf = (
            collections.register_processing_job(
                session, data_collection_id=dc, recipe=r, request_key="auto", parameters={}
            )[1]
            for r in ("motioncorr", "ctf")
        )

    def movies(defocus_um: list[float]) -> None:
        refs = [
            MovieRef(data_collection_id=dc, movie_full_path=f"/raw/m{live.movies + i}.tiff")
            for i in range(len(defocus_um))
        ]
        live.movies += len(refs)
        with live.sessions.begin() as session:
            results.write_result_sets(
                session,
                movies=[MovieRecord(movie=r, created=NOW) for r in refs],
                motion_corrections=[
                    MotionCorrectionRecord(movie=r, auto_proc_program_id=motion) for r in refs
                ],
                ctfs=[
                    CtfRecord(
                        movie=r,
                        motion_correction_program_id=motion,
                        auto_proc_program_id=ctf,
                        estimated_defocus_a=d * 1e4,
                    )
                    for r, d in zip(refs, defocus_um, strict=True)
                ],
            )

    evaluator = _evaluator(live, inbox)
    key = f"out_of_bounds:dc:{dc}:defocus_um"
    movies([6.0] * 18 + [2.0] * 6)  # 24 values: too few to tell
    assert evaluator.run_once(NOW) == []
    movies([6.0])  # 6 of the last 25 within [0.3, 4.0]: fewer than 25%
    assert len(evaluator.run_once(NOW)) == 1
    assert _history(live) == [(key, False)]
    assert "defocus_um" in inbox.posts[0]["text"]
    movies([2.0])  # the oldest (out) drops off: 7 of 25 within, it clears
    assert evaluator.run_once(NOW) == []
    assert _history(live) == [(key, True)]


def test_a_queue_without_consumer_alerts_the_facility_and_clears(live: Live, inbox: Inbox) -> None:
    consumers = {"motioncorr": 0}
    settings = AlertsSettings(webhook_url=inbox.webhook_url, watched_queues=["motioncorr"])
    evaluator = Evaluator(
        live.sessions, settings, public_url="https://cryolive.example", consumers=consumers.get
    )
    assert len(evaluator.run_once(NOW)) == 1
    assert inbox.posts[0]["rule"] == "no_consumers"
    assert inbox.posts[0]["link"] == "https://cryolive.example/staff"
    consumers["motioncorr"] = 2
    assert evaluator.run_once(NOW) == []
    assert _history(live) == [("no_consumers:motioncorr", True)]
    assert inbox.mails == []  # no visit: the facility's channel only


def test_backlog_counts_open_work_but_not_held_work(live: Live, inbox: Inbox) -> None:
    from cryolive.db import ledger
    from cryolive.db.models import HeldWork
    from cryolive.db.repo import collections

    with live.sessions.begin() as session:
        program = collections.register_processing_job(
            session,
            data_collection_id=live.data_collection_id,
            recipe="spa-preprocess",
            request_key="auto",
            parameters={},
        )[1]
        old = (NOW - dt.timedelta(hours=1)).replace(tzinfo=dt.UTC).timestamp()
        key = ledger.work_key(program, "/raw/m0.tiff")
        ledger.expect(session, items=[(key, "motioncorr", b"{}")], now=old)
        session.add(HeldWork(key=key, data_collection_id=live.data_collection_id, queue="q",
                             message="{}"))  # fmt: skip
    evaluator = _evaluator(live, inbox)  # backlog_max_s: 1800 by default
    assert evaluator.run_once(NOW) == []  # held on purpose: no backlog
    with live.sessions.begin() as session:
        session.execute(sa.delete(HeldWork))
    assert len(evaluator.run_once(NOW)) == 1
    assert inbox.posts[-1]["rule"] == "backlog"


def test_a_finished_grid_does_not_stall_a_visit_that_goes_on(live: Live, inbox: Inbox) -> None:
    from cryolive.db.repo import collections

    live.movie(NOW - dt.timedelta(hours=1))  # raw: finished an hour ago
    with live.sessions.begin() as session:
        _, raw2 = collections.register_data_collection(
            session,
            spec=collections.DataCollectionSpec(
                session_id=live.session_id,
                image_directory="/dls/m02/data/2026/bi1-1/raw2",
                file_template="*.tiff",
                voltage_kv=300,
                pixel_size_a=1.0,
            ),
        )
    evaluator = _evaluator(live, inbox)
    assert len(evaluator.run_once(NOW)) == 1  # the visit has stalled: raw2 has no movie yet
    live.data_collection_id = raw2
    live.movie(NOW)  # raw2 begins
    assert evaluator.run_once(NOW + dt.timedelta(minutes=1)) == []
    assert _history(live) == [(f"stalled:visit:{live.session_id}", True)]
