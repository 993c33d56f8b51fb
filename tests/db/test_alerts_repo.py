"""What the alert rules read and the alerts' history, on both backends (rolled back)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from cryolive.db import ledger
from cryolive.db.repo import alerts, results
from cryolive.records import CtfRecord, MotionCorrectionRecord, MovieRecord, MovieRef

START = dt.datetime(2026, 11, 20, 9, 0, 0)


def test_latest_values_pace_failures_and_backlog(db: Session, collection: Any) -> None:
    c = collection
    refs = [
        MovieRef(data_collection_id=c.data_collection_id, movie_full_path=f"/raw/m{i}.tiff")
        for i in range(30)
    ]
    results.write_result_sets(
        db,
        movies=[
            MovieRecord(movie=r, created=START + dt.timedelta(minutes=i))
            for i, r in enumerate(refs)
        ],
        motion_corrections=[
            MotionCorrectionRecord(
                movie=r, auto_proc_program_id=c.motion_program_id, total_motion_a=i
            )
            for i, r in enumerate(refs)
        ],
        ctfs=[
            CtfRecord(
                movie=r,
                motion_correction_program_id=c.motion_program_id,
                auto_proc_program_id=c.ctf_program_id,
                estimated_defocus_a=1e4 + 100 * i,
            )
            for i, r in enumerate(refs)
        ],
    )
    values = alerts.latest_values(db, data_collection_id=c.data_collection_id)
    assert len(values["defocus_um"]) == 25
    assert values["defocus_um"][0] == 1.0 + 0.01 * 29  # newest first, in µm
    assert values["total_motion_a"][:2] == [29.0, 28.0]
    assert values["particles"] == []
    live = {x.data_collection_id: x for x in alerts.live_collections(db, now=START)}
    assert live[c.data_collection_id].last_movie == START + dt.timedelta(minutes=29)
    keys = [ledger.work_key(c.motion_program_id, f"/raw/m{i}.tiff") for i in range(3)]
    ledger.expect(db, items=[(k, "q", b"{}") for k in keys], now=START.timestamp())
    ledger.complete(db, keys=keys[:1], now=START.timestamp() + 60, outcome="failed")
    ledger.complete(db, keys=keys[1:2], now=START.timestamp() + 60)
    assert alerts.outcomes(db, data_collection_id=c.data_collection_id) == (1, 2)
    assert alerts.oldest_open(db, data_collection_id=c.data_collection_id) is not None


def test_an_alert_is_raised_once_until_it_clears(db: Session, collection: Any) -> None:
    key = f"stalled:dc:{collection.data_collection_id}"
    where = {"session_id": collection.session_id, "data_collection_id": 1}
    first = alerts.raise_alert(db, key=key, rule="stalled", message="a", now=START, **where)
    assert first is not None
    again = alerts.raise_alert(db, key=key, rule="stalled", message="b", now=START, **where)
    assert again is None
    assert alerts.clear_alert(db, key=key, now=START + dt.timedelta(minutes=5))
    assert not alerts.clear_alert(db, key=key, now=START + dt.timedelta(minutes=6))
    later = START + dt.timedelta(minutes=9)
    second = alerts.raise_alert(db, key=key, rule="stalled", message="c", now=later, **where)
    assert second is not None
    history = alerts.alerts_of_visit(db, session_id=collection.session_id)
    assert [(a.message, a.cleared_at is None) for a in history] == [("c", True), ("a", False)]
    assert history[0].alert_id in [a.alert_id for a in alerts.recent_alerts(db)]
