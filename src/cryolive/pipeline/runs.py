"""Processing runs: a ProcessingJob + AutoProcProgram on a data collection, and the dispatch of
its recipe for movies, with the database remembering each movie's work first.

Used by the watcher (the automatic run of each raw folder) and by reprocessing requests (a new
run with the user's parameters over movies already registered). A run's parameters are a
:class:`cryolive.params.RunParameters`, recorded as ProcessingJobParameter rows (every field,
so that the run is rebuilt exactly) and carried to the services as its sections.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from ispyb.sqlalchemy import Movie
from sqlalchemy.orm import Session, sessionmaker

from cryolive.db import ledger
from cryolive.db.repo.collections import (
    ended_programs,
    job_parameters,
    register_processing_job,
    start_program,
)
from cryolive.db.repo.pause import hold_if_paused
from cryolive.io.layout import movie_stem
from cryolive.messaging.dispatch import envelope_for
from cryolive.messaging.envelope import Envelope
from cryolive.messaging.recipe import Recipe
from cryolive.messaging.transport import Transport
from cryolive.params import RunParameters, build_parameters, from_stored

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    """One processing run of a recipe on a data collection."""

    data_collection_id: int
    processing_job_id: int
    program_id: int
    raw_dir: Path
    project_dir: Path
    parameters: RunParameters


def open_run(
    session: Session,
    *,
    data_collection_id: int,
    recipe: Recipe,
    request_key: str,
    raw_dir: Path,
    project_dir: Path,
    parameters: RunParameters,
    automatic: bool,
    display_name: str = "",
    reopen: bool = False,
) -> Run:
    """Register (once) the run's job and program, and mark the program running.

    A run is its data collection, recipe, request key and parameters: opened again with the
    same parameters it is the same run (its rows reused, also rows another ISPyB client or an
    earlier run under another key wrote for the same recipe and parameters); with other
    parameters it is a new one. ``reopen``: the run registered under ``request_key``, whatever
    its parameters (a restart that has not yet read them; :func:`load_run` reads them back).
    """
    job_id, program_id = register_processing_job(
        session,
        data_collection_id=data_collection_id,
        recipe=recipe.name,
        request_key=request_key,
        parameters={
            **parameters.stored(),
            "raw_dir": str(raw_dir),
            "project_dir": str(project_dir),
        },
        display_name=display_name,
        automatic=automatic,
        by_parameters=not reopen,
    )
    start_program(session, auto_proc_program_id=program_id, when=dt.datetime.now(dt.UTC))
    return Run(data_collection_id, job_id, program_id, raw_dir, project_dir, parameters)


def load_run(session: Session, *, processing_job_id: int, program_id: int, dc_id: int) -> Run:
    """A run as registered, its parameters read back from ProcessingJobParameter.

    Raises
    ------
    BadInputError
        When a stored parameter is unknown or does not fit (a corrupt or hand-edited row).
    """
    stored = job_parameters(session, processing_job_id=processing_job_id)
    raw_dir, project = Path(stored.pop("raw_dir")), Path(stored.pop("project_dir"))
    return Run(dc_id, processing_job_id, program_id, raw_dir, project, from_stored(stored))


def start_values(run: Run, movie: Path, own: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The recipe's start values for one movie of a run: the run's parameter sections
    (``{"motion": {...}, "ctf": {...}, ...}``), with ``own``, the movie's own values (its dose,
    pixel size … from its metadata, flat names) over the run's, and which movie of which run
    it is."""
    parameters = (
        run.parameters if not own else build_parameters(base=run.parameters, collection=own)
    )
    return {
        **parameters.values(),
        "movie_path": str(movie),
        "data_collection_id": run.data_collection_id,
        "program_id": run.program_id,
        "project_dir": str(run.project_dir),
        "movie_stem": movie_stem(run.raw_dir, movie),
    }


def expect_movies(
    session: Session,
    *,
    run: Run,
    recipe: Recipe,
    movies: Sequence[Path],
    own: Mapping[Path, Mapping[str, Any]] | None = None,
) -> list[tuple[str, bytes]]:
    """Record the work of ``movies`` in the ledger; return (queue, message) of the new work.
    ``own``: per movie, its own values over the run's (see :func:`start_values`).

    Call inside the transaction that registers the movies, and publish what it returns only
    after the commit: a crash in between leaves the work to the reconciler, never lost. The
    work of a paused collection is held (:mod:`cryolive.db.repo.pause`) and not returned.
    """
    items = []
    for movie in movies:
        values = start_values(run, movie, (own or {}).get(movie))
        for step_id in recipe.start:
            envelope = envelope_for(recipe, step_id, values)
            key = ledger.work_key(run.program_id, str(movie))
            items.append((key, recipe.steps[step_id].queue, envelope.to_bytes()))
    new = set(ledger.expect(session, items=items, now=time.time()))
    fresh = [item for item in items if item[0] in new]
    # a paused collection's work is recorded but held, to be published when it resumes
    out = hold_if_paused(session, data_collection_id=run.data_collection_id, items=fresh)
    return [(queue, body) for _, queue, body in out]


def publish(transport: Transport, messages: Sequence[tuple[str, bytes]]) -> None:
    for queue, body in messages:
        transport.publish(queue, body)


def registered_movies(session: Session, *, data_collection_id: int) -> list[Path]:
    rows = session.scalars(
        sa.select(Movie.movieFullPath)
        .where(Movie.dataCollectionId == data_collection_id)
        .order_by(Movie.movieId)
    )
    return [Path(p) for p in rows]


def movies_own_values(
    session: Session, *, data_collection_id: int, given: Collection[str] = ()
) -> dict[Path, dict[str, Any]]:
    """Each registered movie's own values from its Movie row (its dose and frames, as the
    watcher read them from its metadata), for a run over movies already registered; values
    the user ``given`` (flat names) win. EER movies keep the run's: their dose per fraction
    follows from the run's grouping."""
    rows = session.execute(
        sa.select(Movie.movieFullPath, Movie.fluence, Movie.numberOfFrames).where(
            Movie.dataCollectionId == data_collection_id
        )
    )
    own: dict[Path, dict[str, Any]] = {}
    for path, fluence, frames in rows:
        if path.lower().endswith(".eer") or not fluence or not frames:
            continue
        values = {
            "total_dose_e_per_a2": float(fluence),
            "dose_per_frame_e_per_a2": float(fluence) / int(frames),
            "frames": int(frames),
        }
        own[Path(path)] = {k: v for k, v in values.items() if k not in given}
    return own


def reprocess(
    sessions: sessionmaker[Session],
    transport: Transport,
    *,
    recipe: Recipe,
    data_collection_id: int,
    request_key: str,
    raw_dir: Path,
    project_dir: Path,
    parameters: RunParameters,
    display_name: str,
) -> Run:
    """A new run with ``parameters`` over every movie the collection has registered."""
    with sessions.begin() as session:
        run = open_run(
            session,
            data_collection_id=data_collection_id,
            recipe=recipe,
            request_key=request_key,
            raw_dir=raw_dir,
            project_dir=project_dir,
            parameters=parameters,
            automatic=False,
            display_name=display_name,
        )
        movies = registered_movies(session, data_collection_id=data_collection_id)
        own = movies_own_values(session, data_collection_id=data_collection_id)
        messages = expect_movies(session, run=run, recipe=recipe, movies=movies, own=own)
    publish(transport, messages)
    return run


class StoppedRuns:
    """Whether a message belongs to a run that has ended (a user stopped it): workers drop
    such messages before handling them (``Worker(cancelled=...)``).

    An ended run never runs again, so ended runs are remembered; a running one is asked
    about again after ``recheck_s`` seconds.
    """

    def __init__(self, sessions: sessionmaker[Session], *, recheck_s: float = 2.0) -> None:
        self._sessions = sessions
        self._recheck_s = recheck_s
        self._ended: set[int] = set()
        self._running: dict[int, float] = {}

    def __call__(self, envelope: Envelope) -> bool:
        program = envelope.parameters.get("program_id")
        if not isinstance(program, int):
            return False
        if program in self._ended:
            return True
        now = time.monotonic()
        if now - self._running.get(program, -1e9) < self._recheck_s:
            return False
        try:
            with self._sessions() as session:
                ended = ended_programs(session, program_ids=[program])
        except Exception:
            # The database is down: handle the message; the writer drops late results of a
            # stopped run anyway.
            log.warning("cannot tell whether run %s was stopped", program, exc_info=True)
            return False
        if program in ended:
            self._ended.add(program)
            return True
        self._running[program] = now
        return False
