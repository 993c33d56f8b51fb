"""A data collection: its summary, per-movie series, and live updates as results land."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from cryolive.db.repo import browse, classes, pause, series
from cryolive.web import reprocess
from cryolive.web.auth import SessionCookies, WebSession
from cryolive.web.deps import (
    LIVE_READERS,
    MAX_ID,
    AppSettings,
    CurrentUser,
    DbId,
    DbSession,
    MaybeSession,
    User,
    require_visit,
)
from cryolive.web.models import DataCollectionDetail, LiveUpdate, Series
from cryolive.web.pages import UserPage
from cryolive.web.series_cache import SeriesCache

router = APIRouter()


class EventStream(StreamingResponse):
    """Server-sent events (named so the OpenAPI description gives their media type)."""

    media_type = "text/event-stream"


# One event of the stream (OpenAPI 3.2's ``itemSchema``): ``data`` is a LiveUpdate as JSON.
UPDATE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"const": "update"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/LiveUpdate"},
        },
    },
}


def visible_collection(db: Session, user: User, data_collection_id: int) -> browse.CollectionRow:
    """The collection, if it exists (404) and the user may see its visit (403)."""
    found = browse.collection(db, data_collection_id=data_collection_id)
    if found is None:
        raise HTTPException(404, f"No data collection {data_collection_id}.")
    require_visit(db, user, found.session_id)
    return found


def _encode(data: Any) -> bytes:
    """JSON without FastAPI's per-value encoder: the series of 50,000 movies stays fast
    (``default=float``: a DECIMAL a facility's schema may hold encodes as a number)."""
    return json.dumps(data, separators=(",", ":"), default=float).encode()


@router.get(
    "/collections/{data_collection_id}", response_class=HTMLResponse, include_in_schema=False
)
def collection_page(data_collection_id: DbId, page: UserPage, db: DbSession) -> HTMLResponse:
    found = visible_collection(db, page.user, data_collection_id)
    jobs = browse.jobs_of(db, data_collection_id=data_collection_id)
    return page.render(
        "collection.html",
        collection=found,
        summary=series.summary(db, data_collection_id=data_collection_id),
        jobs=jobs,
        form=reprocess.form_defaults(jobs, pixel_size_a=found.pixel_size_a),
        history=browse.classification_history(db, data_collection_id=data_collection_id),
        asked_for=reprocess.asked_for,
        batches=classes.gallery(db, data_collection_id=data_collection_id),
        request_key=uuid.uuid4().hex,
        paused=pause.paused(db, data_collection_id=data_collection_id),
        held=pause.held_count(db, data_collection_id=data_collection_id),
    )


@router.get("/api/collections/{data_collection_id}", tags=["collections"])
def collection_api(
    data_collection_id: DbId, user: CurrentUser, db: DbSession
) -> DataCollectionDetail:
    """A data collection: its folder, optics, and summary numbers of its results."""
    found = visible_collection(db, user, data_collection_id)
    summary = series.summary(db, data_collection_id=data_collection_id)
    return DataCollectionDetail.model_validate(asdict(found) | {"summary": summary})


MAX_POINTS = 100_000  # a thinned series: more would not be thinning


@router.get(
    "/api/collections/{data_collection_id}/series",
    tags=["collections"],
    response_model=Series,  # documents the shape; the cached bytes are sent as they are
)
def series_api(
    data_collection_id: DbId,
    request: Request,
    user: CurrentUser,
    db: DbSession,
    after_movie_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    motion_program: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    from_movie_id: Annotated[
        int | None, Query(alias="from", ge=0, le=MAX_ID, description="First movie id shown.")
    ] = None,
    to_movie_id: Annotated[
        int | None, Query(alias="to", ge=0, le=MAX_ID, description="Last movie id shown.")
    ] = None,
    points: Annotated[
        int | None,
        Query(
            ge=2,
            le=MAX_POINTS,
            description="Thin the series to about this many movies, keeping each bucket's "
            "extremes (a chart's view); without it, every movie.",
        ),
    ] = None,
) -> Response:
    """Per-movie results as columns (movie_id, total_motion_a, defocus_a, resolution_a, …),
    in acquisition order; only movies after ``after_movie_id`` when given, only movies
    ``from``…``to`` (ids, both included; exact values: a chart's zoom) when given. The whole
    series (thinned or not) is served from a per-process cache while no new movie or result
    has landed."""
    visible_collection(db, user, data_collection_id)
    if from_movie_id is not None and to_movie_id is not None and to_movie_id < from_movie_id:
        raise HTTPException(422, "to: must not be before from.")
    after = max(after_movie_id, from_movie_id - 1) if from_movie_id else after_movie_id
    cache: SeriesCache = request.app.state.series_cache
    key, version = (data_collection_id, motion_program, points), None
    if after == 0 and to_movie_id is None:  # the whole series: shared by every viewer
        version = series.version(db, data_collection_id=data_collection_id, motion=motion_program)
        body = cache.get(key, version)
        if body is not None:
            return Response(body, media_type="application/json")
    columns = series.series(
        db,
        data_collection_id=data_collection_id,
        after_movie_id=after,
        until_movie_id=to_movie_id,
        motion=motion_program,
    )
    if points is not None:
        columns = series.thinned(columns, points=points)
    body = _encode(columns)
    if version is not None:
        cache.put(key, version, body)
    return Response(body, media_type="application/json")


def _snapshot(
    factory: sessionmaker[Session], data_collection_id: int, login: WebSession | None = None
) -> dict[str, Any] | None:
    """The live state; None once ``login`` (the stream's session) has been ended."""
    with factory() as db:
        if login is not None and not SessionCookies.is_live(db, login):
            return None
        jobs = browse.jobs_of(db, data_collection_id=data_collection_id)
        batches = classes.gallery(db, data_collection_id=data_collection_id)
        return {
            "summary": series.summary(db, data_collection_id=data_collection_id),
            "jobs": jsonable_encoder([asdict(j) for j in jobs]),
            "classes": jsonable_encoder([asdict(b) for b in batches]),
        }


@router.get(
    "/api/collections/{data_collection_id}/events",
    tags=["collections"],
    response_class=EventStream,
    response_model=LiveUpdate,  # lists the model; the stream itself is described below
    responses={200: {"content": {"text/event-stream": {"itemSchema": UPDATE_EVENT}}}},
)
def events_api(
    data_collection_id: DbId,
    request: Request,
    user: CurrentUser,
    login: MaybeSession,
    db: DbSession,
    settings: AppSettings,
    limit: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="Stop after this many updates.")
    ] = None,
) -> StreamingResponse:
    """Server-sent events: an ``update`` (summary, jobs and the 2D class gallery's batches, as
    ``/classes`` gives them) whenever one of them changes; the stream ends when the session
    does (logout, password change, staff revocation)."""
    visible_collection(db, user, data_collection_id)
    factory: sessionmaker[Session] = request.app.state.reader
    interval = settings.web.live_interval_s

    async def stream() -> AsyncIterator[str]:
        last: dict[str, Any] | None = None
        sent = 0
        state_limiter = request.app.state
        if not hasattr(state_limiter, "live_readers"):
            state_limiter.live_readers = anyio.CapacityLimiter(LIVE_READERS)
        while limit is None or sent < limit:
            state = await anyio.to_thread.run_sync(
                _snapshot, factory, data_collection_id, login, limiter=state_limiter.live_readers
            )
            if state is None:  # logged out (or the session was ended) while watching
                return
            if state != last:
                last, sent = state, sent + 1
                yield f"event: update\ndata: {json.dumps(state)}\n\n"
            else:
                yield ": still here\n\n"
            if (limit is not None and sent >= limit) or await request.is_disconnected():
                return
            await asyncio.sleep(interval)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
