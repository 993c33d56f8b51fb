"""A run's status tells the truth: running while work is in flight or movies come, idle when
the pipeline has nothing for it, finished when its visit ended, stopped (not failed) when a
person stopped it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.orm import Session

from cryolive.db import ledger, make_engine
from cryolive.db.repo import browse, collections, results, visits
from cryolive.records import MovieRecord, MovieRef

T0 = dt.datetime(2026, 11, 21, 10, 0, 0)


def _live_run(db: Session, session_id: int, root: Any) -> tuple[int, int]:
    """A new collection of ``session_id`` with one movie at T0 and an automatic run started
    then: (data collection id, program id)."""
    folder = uuid.uuid4().hex[:8]
    spec = collections.DataCollectionSpec(
        session_id=session_id,
        image_directory=f"{root}/status/{folder}/",
        file_template="*.tiff",
    )
    dc = collections.register_data_collection(db, spec=spec)[1]
    program = collections.register_processing_job(
        db, data_collection_id=dc, recipe="motioncorr", request_key="auto", parameters={}
    )[1]
    collections.start_program(db, auto_proc_program_id=program, when=T0)
    ref = MovieRef(data_collection_id=dc, movie_full_path=f"/data/{folder}/m1.tiff")
    results.write_result_sets(db, movies=[MovieRecord(movie=ref, movie_number=1, created=T0)])
    return dc, program


def _status(db: Session, dc: int, program: int, now: dt.datetime) -> str:
    jobs = browse.jobs_of(db, data_collection_id=dc, now=now)
    return next(j.status for j in jobs if j.auto_proc_program_id == program)


def test_live_run_is_running_then_idle_then_finished(world: Any) -> None:
    engine = make_engine(world.url)
    with Session(engine) as db:  # rolled back: the shared world is left as it was
        dc, program = _live_run(db, world.session_id, world.root)
        assert _status(db, dc, program, T0 + dt.timedelta(minutes=1)) == "running"
        later = T0 + browse.IDLE_AFTER + dt.timedelta(minutes=1)
        assert _status(db, dc, program, later) == "idle"  # no movie, nothing in flight
        key = ledger.work_key(program, "/data/m1.tiff")
        ledger.expect(db, items=[(key, "motioncorr", b"{}")], now=T0.timestamp())
        assert _status(db, dc, program, later) == "running"  # work still queued for it
        ledger.complete(db, keys=[key], now=T0.timestamp())
        assert _status(db, dc, program, later) == "idle"
        ended = visits.ensure_visit(
            db, visit=f"bi{uuid.uuid4().int % 90000 + 10000}-1", start=T0, end=T0
        )
        dc2, program2 = _live_run(db, ended, world.root)
        assert _status(db, dc2, program2, later) == "finished"
        db.rollback()
    engine.dispose()


def test_stop_shows_stopped_not_failed(clients: Any, world: Any) -> None:
    engine = make_engine(world.url)
    with Session(engine) as db, db.begin():
        dc, program = _live_run(db, world.session_id, world.root)
    engine.dispose()
    client, csrf = clients["member"]
    assert client.get(f"/api/jobs/{program}").json()["status"] == "idle"  # T0 is long ago
    page = client.get(f"/collections/{dc}").text
    assert 'class="badge idle"' in page and f"/jobs/{program}/stop" in page
    stopped = client.post(f"/api/jobs/{program}/stop", headers={"X-CSRF-Token": csrf})
    assert stopped.json() == {"status": "stopped", "message": "stopped by alice"}
    assert client.get(f"/api/jobs/{program}").json()["status"] == "stopped"
    page = client.get(f"/collections/{dc}").text
    assert 'class="badge stopped"' in page and f"/jobs/{program}/stop" not in page
    staff, _ = clients["staff"]
    failed = staff.get("/api/staff/failures").json()
    assert program not in [f["auto_proc_program_id"] for f in failed]


def test_a_visit_is_live_only_while_movies_come_and_queues_have_consumers(world: Any) -> None:
    engine = make_engine(world.url)
    with Session(engine) as db:  # rolled back: the shared world is left as it was
        name = f"bi{uuid.uuid4().int % 90000 + 10000}-1"
        sid = visits.ensure_visit(db, visit=name, microscope="m97", start=T0)
        _live_run(db, sid, world.root)  # its one movie came at T0

        def state(now: dt.datetime, consuming: bool | None) -> str:
            rows = browse.microscopes(db, now=now, consuming=consuming)["m97"]
            assert rows[0].last_movie == T0
            return rows[0].state

        soon = T0 + dt.timedelta(minutes=2)
        assert state(soon, True) == "live"
        assert state(soon, False) == "stalled"  # movies come, nobody consumes
        assert state(soon, None) == "stalled"  # no broker known: not claimed live
        assert state(T0 + browse.IDLE_AFTER, True) == "quiet"  # no movie lately
        db.rollback()
    engine.dispose()


def test_staff_microscopes_show_state_and_last_movie(clients: Any, world: Any) -> None:
    client, _ = clients["staff"]
    scopes = client.get("/api/staff/microscopes").json()
    visit = next(v for v in scopes["m02"] if v["name"] == world.visit)
    # under way by its dates (no end) with movies, but the test broker has no consumer
    assert visit["state"] in ("quiet", "stalled") and visit["live"] is False
    assert visit["last_movie"]
    page = client.get("/staff").text
    item = page.split(f'data-visit="{world.visit}"')[1].split("</li>")[0]
    assert f">{visit['state']}<" in item and ">live<" not in item and "last movie 20" in item


def test_a_movie_says_whether_it_is_processed(clients: Any, world: Any) -> None:
    engine = make_engine(world.url)
    with Session(engine) as db, db.begin():
        dc, _ = _live_run(db, world.session_id, world.root)
    with Session(engine) as db:
        series = browse.collection(db, data_collection_id=dc)
        assert series is not None and series.movies == 1
    engine.dispose()
    client, _ = clients["member"]
    movies = client.get(f"/api/collections/{dc}/series").json()["movie_id"]
    fresh = client.get(f"/api/movies/{movies[0]}").json()
    assert fresh["processed"] is False and fresh["defocus_a"] is None and fresh["files"] == []
    done = client.get(f"/api/movies/{world.movie_ids[0]}").json()
    assert done["processed"] is True


def test_summary_has_progress_per_stage_with_backlog_and_eta(world: Any) -> None:
    from cryolive.db.repo import series

    engine = make_engine(world.url)
    with Session(engine) as db:  # rolled back: the shared world is left as it was
        dc, program = _live_run(db, world.session_id, world.root)
        ref = "/data/extra"
        extra = [
            MovieRecord(movie=MovieRef(data_collection_id=dc, movie_full_path=f"{ref}{i}.tiff"))
            for i in range(3)
        ]
        results.write_result_sets(db, movies=extra)
        now = T0 + dt.timedelta(minutes=20)
        keys = [ledger.work_key(program, f"/m{i}.tiff") for i in range(2)]
        ledger.expect(db, items=[(k, "q", b"{}") for k in keys], now=0.0)
        done_at = (now - dt.timedelta(minutes=5)).replace(tzinfo=dt.UTC).timestamp()
        ledger.complete(db, keys=keys, now=done_at)  # 2 movies in the last 15 min: 8 an hour
        got = series.summary(db, data_collection_id=dc, now=now)["progress"]
        stages = {s["stage"]: (s["done"], s["backlog"]) for s in got["stages"]}
        assert stages["movies"] == (4, 0) and stages["motion_corrected"] == (0, 4)
        assert got["behind"] == 4 and got["movies_per_hour"] == 8.0
        assert got["eta_s"] == 4 / 8 * 3600  # half an hour
        later = series.summary(db, data_collection_id=dc, now=now + dt.timedelta(hours=1))
        assert later["progress"]["eta_s"] is None  # nothing done lately: no ETA claimed
        db.rollback()
    engine.dispose()
    # the processed collection of the world: every movie through CTF, nothing behind
    with Session(engine) as db:
        got = series.summary(db, data_collection_id=world.data_collection_id)["progress"]
    stages = {s["stage"]: (s["done"], s["backlog"]) for s in got["stages"]}
    assert stages["ctf_estimated"] == (12, 0) and stages["picked"][0] == 12
    assert got["behind"] == 0 and got["eta_s"] is None


def test_collections_are_named_by_their_raw_folder_in_the_visit() -> None:
    name = browse.collection_name
    assert name("/dls/m02/data/2026/bi10001-1/raw/", "bi10001-1") == "raw"
    assert name("/data/bi10001-1/raw2/GridSquare_3", "bi10001-1") == "raw2/GridSquare_3"
    assert name("/elsewhere/session/raw3/", "bi10001-1") == "session/raw3"  # visit not in it


def test_visits_list_status_movies_and_last_movie(clients: Any, world: Any) -> None:
    client, _ = clients["member"]
    visit = next(v for v in client.get("/api/visits").json() if v["name"] == world.visit)
    assert visit["status"] == "under way"  # started 2026-11-20, no end
    assert visit["movies"] >= 12 and visit["last_movie"]
    page = client.get("/visits").text
    assert '<th scope="col">Last movie</th>' in page and "under way" in page
    detail = client.get(f"/api/visits/{world.visit}").json()
    raw = next(c for c in detail["data_collections"] if c["directory"].endswith("/raw/"))
    assert raw["name"] == "raw"
    visit_page = client.get(f"/visits/{world.visit}").text
    assert ">raw</a>" in visit_page and '<details id="register-by-hand">' in visit_page


def test_times_carry_their_zone_and_spans_read_as_words(clients: Any, world: Any) -> None:
    from cryolive.web.pages import ago, duration, utc_time

    when = dt.datetime(2026, 12, 6, 19, 38, 12)
    assert utc_time(when) == "2026-12-06 19:38 UTC" and utc_time(None) == ""
    assert ago(when, when + dt.timedelta(minutes=3)) == "3 min ago"
    assert ago(when, when + dt.timedelta(seconds=5)) == "just now"
    assert duration(3 * 3600 + 5 * 60) == "3 h 5 min" and duration(45) == "45 s"
    assert duration(5 * 86400) == "5 days"
    page = clients["member"][0].get("/visits").text
    assert "2026-11-20 09:00 UTC" in page  # the visit's start, with its zone


def _job(program: int, *, automatic: bool, parameters: dict[str, str]) -> browse.JobRow:
    return browse.JobRow(
        auto_proc_program_id=program,
        processing_job_id=program,
        data_collection_id=1,
        session_id=1,
        recipe="spa-preprocess",
        display_name="",
        automatic=automatic,
        status="running",
        message="",
        start=None,
        end=None,
        parameters=parameters,
    )


def test_the_reprocess_form_starts_from_the_runs_own_values() -> None:
    from cryolive.params import RunParameters
    from cryolive.web import reprocess

    auto = RunParameters.model_validate(
        {
            "acquisition": {"pixel_size_a": 0.9, "dose_per_frame_e_per_a2": 1.3},
            "picking": {"diameter_min_a": 140, "diameter_max_a": 180},
            "class2d": {"classes": 80},
        }
    ).stored()
    asked = RunParameters.model_validate({"acquisition": {"pixel_size_a": 2.0}}).stored()
    jobs = [
        _job(9, automatic=False, parameters=asked),
        _job(3, automatic=True, parameters=auto),
        _job(2, automatic=True, parameters={"stage": '"motioncorr"'}),  # not a run's rows
    ]
    form = reprocess.form_defaults(jobs, pixel_size_a=0.83)
    assert form["from_program"] == 3 and form["dose_per_frame_e_per_a2"] == 1.3
    assert (form["particle_diameter_min_a"], form["particle_diameter_max_a"]) == (140, 180)
    assert form["number_of_classes"] == 80 and form["pixel_size_a"] == 0.9
    assert reprocess.form_defaults(jobs[2:], pixel_size_a=0.83) == {"pixel_size_a": 0.83}
    assert "pixel 2.0 Å" in reprocess.asked_for(asked)


def test_a_request_row_shows_what_was_asked_for(clients: Any, world: Any) -> None:
    client, csrf = clients["member"]
    body = {
        "pixel_size_a": 1.07,
        "dose_per_frame_e_per_a2": 1.21,
        "particle_diameter_min_a": 111,
        "particle_diameter_max_a": 155,
        "number_of_classes": 33,
    }
    url = f"/api/collections/{world.data_collection_id}/reprocess"
    program = client.post(url, json=body, headers={"X-CSRF-Token": csrf}).json()[
        "auto_proc_program_id"
    ]
    job = client.get(f"/api/jobs/{program}").json()
    assert job["asked_for"].startswith("pixel 1.07 Å · dose 1.21 e⁻/Å²/frame · particles 111")
    assert "33 classes" in job["asked_for"]
    page = client.get(f"/collections/{world.data_collection_id}").text
    assert "Asked for: pixel 1.07 Å" in page
    # the world's automatic runs record no run parameters: the form starts from this request
    assert (
        'name="dose_per_frame_e_per_a2" type="number" step="any" min="0" required value="1.21"'
        in page
    )
    assert f"starts from the values of run {program}" in page
    client.post(f"/api/jobs/{program}/stop", headers={"X-CSRF-Token": csrf})


def test_the_history_lists_every_classification_of_a_batch(clients: Any, world: Any) -> None:
    client, _ = clients["member"]
    url = f"/api/collections/{world.data_collection_id}/classes/history"
    history = client.get(url).json()
    batch1 = [h for h in history if h["batch_number"] == 1]
    assert [h["attempt"] for h in batch1] == [1, 2]  # classified again with more particles
    assert batch1[-1]["newest"] and not batch1[0]["newest"]
    assert batch1[-1]["particles"] == 1200 and batch1[-1]["selected"] == 2
    assert batch1[0]["particles"] < 1200
    # when each ran and how long (cryolive's own record: ISPyB has no column for it)
    assert [(h["started_at"], h["duration_s"]) for h in batch1] == [
        ("2026-11-20T09:20:00", 42.0),
        ("2026-11-20T09:40:00", 95.0),
    ]
    assert batch1[-1]["selected_particles"] == 700
    page = client.get(f"/collections/{world.data_collection_id}").text
    assert 'id="class-history"' in page and "History of classifications (2)" in page
    assert "2026-11-20 09:40 UTC" in page and "<td>2 min</td>" in page  # 95 s, in words
    assert "ran 2026-11-20 09:40 UTC, took 2 min" in page  # the batch shown
    assert (
        client.get(f"/api/collections/{world.outside_collection_id}/classes/history").json() == []
    )
