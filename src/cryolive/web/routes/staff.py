"""The staff area: microscopes and their live visits, and failed processing."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from pydantic import AfterValidator

from cryolive.db.repo import alerts, browse, workers
from cryolive.db.repo import staff as staff_repo
from cryolive.web.broker import Broker
from cryolive.web.deps import AppSettings, DbSession, StaffUser, staff_user
from cryolive.web.models import (
    CollectionFailures,
    CollectionThroughput,
    Failure,
    MicroscopeRate,
    MicroscopeVisit,
    Queues,
    Throughput,
    WorkerHealth,
)
from cryolive.web.pages import UserPage
from cryolive.web.routes.queues import queue_table

router = APIRouter()
Limit = Annotated[int, Query(ge=1, le=1000)]
Hours = Annotated[int, Query(ge=1, le=744, description="Hours back from ``until``.")]
EARLIEST, LATEST = dt.datetime(1970, 1, 2), dt.datetime(9000, 1, 1)


def _in_range(until: dt.datetime | None) -> dt.datetime | None:
    """``until`` as naive UTC, between 1970 and 9000 (the window before it must fit the
    calendar); else a ValueError, which FastAPI answers with 422."""
    if until is None:
        return None
    if not EARLIEST <= until.replace(tzinfo=None) <= LATEST:
        raise ValueError(f"must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return until.astimezone(dt.UTC).replace(tzinfo=None) if until.tzinfo else until


Until = Annotated[
    dt.datetime | None,
    AfterValidator(_in_range),
    Query(description="End of the window (UTC), 1970 to 9000; default: now."),
]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _until(until: dt.datetime | None) -> dt.datetime:
    return _now() if until is None else until


def _throughput(
    db: DbSession, settings: AppSettings, until: dt.datetime | None, hours: int
) -> Throughput:
    rows = staff_repo.throughput(
        db, until=_until(until), hours=hours, beamlines=settings.web.staff_beamlines
    )
    return Throughput(
        hours=hours, collections=[CollectionThroughput.model_validate(r) for r in rows]
    )


@router.get("/staff", response_class=HTMLResponse, include_in_schema=False)
def staff_page(
    page: UserPage,
    db: DbSession,
    settings: AppSettings,
    broker: Broker,
    limit: Limit = 100,
    hours: Hours = 24,
    until: Until = None,
) -> HTMLResponse:
    staff_user(page.user)
    beamlines = settings.web.staff_beamlines
    queues = queue_table(broker, newest=5)
    now = _now()
    return page.render(
        "staff.html",
        microscopes=browse.microscopes(
            db, now=now, consuming=_consuming(queues), beamlines=beamlines
        ),
        rates={
            r.microscope: r for r in staff_repo.microscope_rates(db, now=now, beamlines=beamlines)
        },
        workers=workers.worker_health(db, now=now),
        failures=browse.failures(db, limit=limit, beamlines=beamlines),
        queues=queues,
        collection_failures=staff_repo.recent_failures(db, beamlines=beamlines),
        throughput=_throughput(db, settings, until, hours).model_dump(mode="json"),
        alerts=alerts.recent_alerts(db, limit=50),
    )


def _consuming(queues: Queues) -> bool | None:
    """Whether every queue of the pipeline has a consumer; None when the broker is unknown."""
    if queues.broker is None or queues.message or not queues.queues:
        return None
    return all(q.consumers > 0 for q in queues.queues)


@router.get("/api/staff/microscopes", tags=["staff"])
def microscopes_api(
    user: StaffUser, db: DbSession, broker: Broker, settings: AppSettings
) -> dict[str, list[MicroscopeVisit]]:
    """Each microscope's visits, newest first, each with its state (live only while movies
    come and every queue has a consumer) and the time of its newest movie (the microscopes:
    setting ``web.staff_beamlines``, default ISPyB's EM names m01-m99, e01-e99)."""
    consuming, now = _consuming(queue_table(broker, newest=1)), _now()
    found = browse.microscopes(
        db, now=now, consuming=consuming, beamlines=settings.web.staff_beamlines
    )
    return {
        name: [
            MicroscopeVisit.model_validate(
                asdict(v.visit)
                | {"live": v.state == "live", "state": v.state, "status": v.visit.state_at(now)}
            )
            for v in rows
        ]
        for name, rows in found.items()
    }


@router.get("/api/staff/rates", tags=["staff"])
def rates_api(user: StaffUser, db: DbSession, settings: AppSettings) -> list[MicroscopeRate]:
    """Per microscope: movies recorded in the last 15 minutes (and as movies per hour), and
    the time of its newest movie."""
    found = staff_repo.microscope_rates(db, now=_now(), beamlines=settings.web.staff_beamlines)
    return [MicroscopeRate.model_validate(r) for r in found]


@router.get("/api/staff/workers", tags=["staff"])
def workers_api(user: StaffUser, db: DbSession) -> list[WorkerHealth]:
    """Worker health from their heartbeats: per service and host, the newest process, its last
    heartbeat, whether it is alive (a beat in the last 90 s), messages handled and restarts
    (earlier processes in the last 24 h)."""
    return [WorkerHealth.model_validate(w) for w in workers.worker_health(db, now=_now())]


@router.get("/api/staff/failures", tags=["staff"])
def failures_api(
    user: StaffUser, db: DbSession, settings: AppSettings, limit: Limit = 100
) -> list[Failure]:
    """The latest failed programs (status 0) of the microscopes' visits, with their messages."""
    found = browse.failures(db, limit=limit, beamlines=settings.web.staff_beamlines)
    return [Failure.model_validate(asdict(job) | {"visit": visit}) for visit, job in found]


@router.get("/api/staff/collection-failures", tags=["staff"])
def collection_failures_api(
    user: StaffUser,
    db: DbSession,
    settings: AppSettings,
    collections: Annotated[int, Query(ge=1, le=500)] = 20,
    per_collection: Annotated[int, Query(ge=1, le=100)] = 5,
) -> list[CollectionFailures]:
    """The data collections with recorded failures (ERROR messages of their programs: a
    step that failed on a movie, or a failed run), latest first, with the newest messages."""
    rows = staff_repo.recent_failures(
        db,
        collections=collections,
        per_collection=per_collection,
        beamlines=settings.web.staff_beamlines,
    )
    return [CollectionFailures.model_validate(r) for r in rows]


@router.get("/api/staff/throughput", tags=["staff"])
def throughput_api(
    user: StaffUser, db: DbSession, settings: AppSettings, hours: Hours = 24, until: Until = None
) -> Throughput:
    """Motion-corrected movies per hour (by the movies' time stamps) in the ``hours`` before
    ``until``, per data collection with its visit and microscope."""
    return _throughput(db, settings, until, hours)
