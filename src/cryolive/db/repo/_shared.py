"""Rows another ISPyB client wrote first (Murfey, cryoem-services, SynchWeb), found by their
natural keys so that cryolive reuses them instead of writing a second row.

A data collection is its visit and raw folder (``imageDirectory`` with or without the trailing
``/``), and among several there, the one whose optics agree; its group is that data
collection's group; a movie is its data collection and full path; a processing job is its data
collection, its recipe and its parameters (every ProcessingJobParameter the same, no more, no
fewer), its AutoProcProgram the job's program, a job parameter its job and name. Paths are
compared exactly (MariaDB's default collations would match ``Raw`` with ``raw``). A row that one
of cryolive's own keys already claims is never taken for another key.

Two writers racing (another client and cryolive, each registering the same data collection or
movie at one instant): the published schema has no unique key to stop the second insert, so
before looking for another client's row cryolive takes a locking read of its parent row (the
visit for a data collection and its group, the data collection for a movie), as other clients
should. A writer that holds the parent with new rows not yet committed makes cryolive wait, and
cryolive then reads them (``READ COMMITTED``) instead of inserting its own. SQLite has one
writer at a time and nothing to lock.

An adopted row keeps the columns another client keys it on (``keep``); cryolive fills in the
values it has and leaves the rest as the other client wrote them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from ispyb.sqlalchemy import (
    AutoProcProgram,
    BLSession,
    DataCollection,
    Movie,
    ProcessingJob,
    ProcessingJobParameter,
)
from sqlalchemy.orm import Session

from cryolive.db.models import WorkKey

KeyParts = tuple[Any, ...]
Rows = Sequence[tuple[KeyParts, Mapping[str, Any]]]
Finder = Callable[[Session, Rows], dict[KeyParts, int]]
_CHUNK = 500
# Optics that tell apart two data collections recorded into one folder.
OPTICS = ("voltage", "pixelSizeOnImage", "magnification", "nominalMagnification", "binning")


@dataclass(frozen=True)
class Adopt:
    """How :func:`cryolive.db.repo._keys.upsert_many` finds rows other clients wrote."""

    find: Finder
    keep: frozenset[str] = field(default_factory=frozenset)

    def values_for_adopted(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """What cryolive writes into a row it adopts: its known values, key columns kept."""
        return {k: v for k, v in values.items() if v is not None and k not in self.keep}


def _folder_variants(directory: str) -> list[str]:
    bare = directory.rstrip("/")
    return [bare, bare + "/"]


def _claimed(session: Session, *, table_name: str, ids: Sequence[int]) -> set[int]:
    """Those of ``ids`` that a natural key of cryolive's already points at."""
    if not ids:
        return set()
    return {
        int(r)
        for r in session.scalars(
            sa.select(WorkKey.row_id).where(
                WorkKey.table_name == table_name, WorkKey.row_id.in_(list(ids))
            )
        )
    }


def lock_parent(session: Session, column: Any, value: Any) -> None:
    """A locking read of the parent row whose ``column`` is ``value`` (``SELECT … FOR UPDATE``;
    nothing on SQLite), held until the transaction ends."""
    session.execute(sa.select(column).where(column == value).with_for_update())


def _optics_agree(row: Mapping[Any, Any], values: Mapping[str, Any]) -> bool:
    for name in OPTICS:
        ours, theirs = values.get(name), row.get(name)
        if ours is None or theirs is None:
            continue
        if not math.isclose(float(ours), float(theirs), rel_tol=1e-3):
            return False
    return True


def _folder_collection(
    session: Session, *, session_id: int, directory: str, values: Mapping[str, Any]
) -> tuple[int, int] | None:
    """(data collection id, group id) of an unclaimed data collection of the visit's folder."""
    dc = DataCollection
    rows = (
        session.execute(
            sa.select(
                dc.dataCollectionId,
                dc.dataCollectionGroupId,
                dc.imageDirectory,
                *(getattr(dc, name) for name in OPTICS),
            )
            .where(
                session_id == dc.SESSIONID,
                dc.imageDirectory.in_(_folder_variants(directory)),
            )
            .order_by(dc.dataCollectionId)
        )
        .mappings()
        .all()
    )
    wanted = directory.rstrip("/")
    rows = [r for r in rows if str(r["imageDirectory"]).rstrip("/") == wanted]
    claimed = _claimed(
        session, table_name="DataCollection", ids=[int(r["dataCollectionId"]) for r in rows]
    )
    for row in rows:
        if int(row["dataCollectionId"]) not in claimed and _optics_agree(row, values):
            return int(row["dataCollectionId"]), int(row["dataCollectionGroupId"])
    return None


def data_collections() -> Adopt:
    """Adopt a data collection of the same visit and folder (and optics)."""

    def find(session: Session, rows: Rows) -> dict[KeyParts, int]:
        found = {}
        for key, values in rows:
            lock_parent(session, BLSession.sessionId, int(values["SESSIONID"]))
            hit = _folder_collection(
                session,
                session_id=int(values["SESSIONID"]),
                directory=str(values["imageDirectory"]),
                values=values,
            )
            if hit is not None:
                found[key] = hit[0]
        return found

    return Adopt(find, frozenset({"SESSIONID", "imageDirectory", "dataCollectionGroupId"}))


def data_collection_groups(*, directory: str, optics: Mapping[str, Any]) -> Adopt:
    """Adopt the group of a data collection of the same visit and ``directory``."""

    def find(session: Session, rows: Rows) -> dict[KeyParts, int]:
        found = {}
        for key, values in rows:
            lock_parent(session, BLSession.sessionId, int(values["sessionId"]))
            hit = _folder_collection(
                session, session_id=int(values["sessionId"]), directory=directory, values=optics
            )
            if hit is not None:
                found[key] = hit[1]
        return found

    return Adopt(find, frozenset({"sessionId", "experimentTypeId", "experimentType"}))


def _find_movies(session: Session, rows: Rows) -> dict[KeyParts, int]:
    by_collection: dict[int, dict[str, KeyParts]] = {}
    for key, values in rows:
        by_collection.setdefault(int(values["dataCollectionId"]), {})[
            str(values["movieFullPath"])
        ] = key
    found: dict[KeyParts, int] = {}
    for collection_id in sorted(by_collection):  # one order: no deadlock between two of ours
        lock_parent(session, DataCollection.dataCollectionId, collection_id)
    for collection_id, keys in by_collection.items():
        paths = sorted(keys)
        for start in range(0, len(paths), _CHUNK):
            hits = session.execute(
                sa.select(Movie.movieId, Movie.movieFullPath)
                .where(
                    Movie.dataCollectionId == collection_id,
                    Movie.movieFullPath.in_(paths[start : start + _CHUNK]),
                )
                .order_by(Movie.movieId)
            )
            for movie_id, path in hits:
                if str(path) in keys:  # exact: the collation may ignore case
                    found.setdefault(keys[str(path)], int(movie_id))
    return found


MOVIES = Adopt(_find_movies, frozenset({"dataCollectionId", "movieFullPath"}))


def stored_parameters(parameters: Mapping[str, Any]) -> dict[str, str]:
    """Parameters as ProcessingJobParameter rows hold them (name, value, truncated alike)."""
    return {str(k)[:80]: str(v)[:1024] for k, v in parameters.items()}


def processing_jobs(parameters: Mapping[str, Any]) -> Adopt:
    """Adopt an unclaimed processing job of the same data collection and recipe whose
    parameters are exactly ``parameters`` (the oldest, when several are)."""
    wanted = stored_parameters(parameters)

    def find(session: Session, rows: Rows) -> dict[KeyParts, int]:
        found = {}
        for key, values in rows:
            candidates = [
                int(r)
                for r in session.scalars(
                    sa.select(ProcessingJob.processingJobId)
                    .where(
                        ProcessingJob.dataCollectionId == values["dataCollectionId"],
                        ProcessingJob.recipe == values["recipe"],
                    )
                    .order_by(ProcessingJob.processingJobId)
                )
            ]
            claimed = _claimed(session, table_name="ProcessingJob", ids=candidates)
            for job_id in candidates:
                if job_id not in claimed and job_parameters_of(session, job_id) == wanted:
                    found[key] = job_id
                    break
        return found

    return Adopt(find, frozenset({"dataCollectionId", "recipe", "displayName", "automatic"}))


def job_parameters_of(session: Session, job_id: int) -> dict[str, str]:
    """A processing job's parameters, as stored."""
    rows = session.execute(
        sa.select(ProcessingJobParameter.parameterKey, ProcessingJobParameter.parameterValue).where(
            ProcessingJobParameter.processingJobId == job_id
        )
    )
    return {str(k): str(v) for k, v in rows}


def _find_job_parameters(session: Session, rows: Rows) -> dict[KeyParts, int]:
    found: dict[KeyParts, int] = {}
    for key, values in rows:
        hits = session.execute(
            sa.select(
                ProcessingJobParameter.processingJobParameterId,
                ProcessingJobParameter.parameterKey,
            )
            .where(
                ProcessingJobParameter.processingJobId == values["processingJobId"],
                ProcessingJobParameter.parameterKey == values["parameterKey"],
            )
            .order_by(ProcessingJobParameter.processingJobParameterId)
        )
        for row_id, name in hits:
            if name == values["parameterKey"]:  # exact: the collation may ignore case
                found[key] = int(row_id)
                break
    return found


JOB_PARAMETERS = Adopt(_find_job_parameters, frozenset({"processingJobId", "parameterKey"}))


def _find_programs(session: Session, rows: Rows) -> dict[KeyParts, int]:
    found: dict[KeyParts, int] = {}
    for key, values in rows:
        ids = [
            int(r)
            for r in session.scalars(
                sa.select(AutoProcProgram.autoProcProgramId)
                .where(AutoProcProgram.processingJobId == values["processingJobId"])
                .order_by(AutoProcProgram.autoProcProgramId)
            )
        ]
        claimed = _claimed(session, table_name="AutoProcProgram", ids=ids)
        free = [i for i in ids if i not in claimed]
        if free:
            found[key] = free[0]
    return found


PROGRAMS = Adopt(_find_programs, frozenset({"processingJobId", "processingPrograms"}))
