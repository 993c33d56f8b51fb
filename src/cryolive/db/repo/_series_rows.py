"""The per-collection series summary (``cryolive_series_row``): kept by the writer, read for
charts.

Keeping it: after the writer upserts movies or results it calls :func:`refresh` with the ids it
touched, in the same transaction; the database copies the rows' chart values from the ISPyB
tables into the summary (``INSERT … SELECT`` with an upsert on the summary's key), so a re-run,
a redelivered message or a late metadata update rewrites the same row, never adds one.

Reading it: :func:`read` gives a collection's movies and one motion-correction program's rows.
On MariaDB a row of 50,000 read through pymysql costs far more than the database's own work
(the driver decodes each field in Python), so the rows are packed by the server, a block of
movies per row (``GROUP_CONCAT``), and split here by ``str.split``; SQLite's driver is C, so
its rows are read as they are. Whether the summary agrees with ISPyB (rows another ISPyB client
wrote, a database not yet backfilled) is the caller's check (:func:`counts`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from ispyb.sqlalchemy import CTF, MotionCorrection, Movie, ParticlePicker, RelativeIceThickness
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from cryolive.db.models import SeriesRow
from cryolive.db.repo._keys import table_of
from cryolive.db.repo._sql import EpochSeconds, raw_rows

ROWS = table_of(SeriesRow)
MOVIE_ROWS = 0  # motion_program_id of the rows that hold the movie itself
_CHUNK = 500
_KEY = ("data_collection_id", "motion_program_id", "movie_id")
_RECORD = "\x1e"  # the record separator: in no path
_BLOCK = 512  # movie ids per packed row: ~100 bytes each, far below group_concat_max_len


def _upsert_of(dialect: str, select: sa.Select[Any], columns: Sequence[str]) -> sa.Executable:
    """``INSERT INTO cryolive_series_row (columns) select``, updating rows already there."""
    values = [c for c in columns if c not in _KEY]
    if dialect == "mysql":
        insert_mysql = mysql.insert(ROWS).from_select(columns, select)
        return insert_mysql.on_duplicate_key_update({c: insert_mysql.inserted[c] for c in values})
    if dialect == "sqlite":
        insert_sqlite = sqlite.insert(ROWS).from_select(columns, select)
        return insert_sqlite.on_conflict_do_update(
            index_elements=list(_KEY), set_={c: insert_sqlite.excluded[c] for c in values}
        )
    raise NotImplementedError(f"series summary: no upsert for {dialect}")  # pragma: no cover


@functools.cache
def _refresh_statements(dialect: str) -> tuple[sa.Executable, sa.Executable]:
    """The writer's two upserts, of movies and of motion corrections by id (``:ids``), built
    once: building and compiling them each time cost more than running them."""
    ids: Any = sa.bindparam("ids", expanding=True)
    return (
        _upsert_of(dialect, movie_select().where(Movie.movieId.in_(ids)), MOVIE_COLUMNS),
        _upsert_of(
            dialect,
            result_select().where(MotionCorrection.motionCorrectionId.in_(ids)),
            RESULT_COLUMNS,
        ),
    )


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def movie_select() -> sa.Select[Any]:
    """The movie rows of the summary, from Movie (add a ``where``)."""
    return sa.select(
        Movie.dataCollectionId,
        sa.literal(MOVIE_ROWS),
        Movie.movieId,
        Movie.movieNumber,
        EpochSeconds(Movie.createdTimeStamp),
        Movie.movieFullPath,
    ).where(Movie.dataCollectionId.is_not(None))


MOVIE_COLUMNS = (*_KEY, "movie_number", "created_s", "path")


def result_select() -> sa.Select[Any]:
    """The result rows of the summary: a motion correction and what was computed from it (add
    a ``where``). A motion correction with fits of several CTF (ice, picking) programs gives
    several rows and the summary keeps one; the reader's counts then disagree with ISPyB's
    and it reads ISPyB instead."""
    return (
        sa.select(
            Movie.dataCollectionId,
            MotionCorrection.autoProcProgramId,
            MotionCorrection.movieId,
            MotionCorrection.motionCorrectionId,
            MotionCorrection.totalMotion,
            CTF.autoProcProgramId,
            CTF.estimatedDefocus,
            CTF.astigmatism,
            CTF.estimatedResolution,
            RelativeIceThickness.autoProcProgramId,
            RelativeIceThickness.median,
            ParticlePicker.programId,
            ParticlePicker.numberOfParticles,
        )
        .select_from(MotionCorrection)
        .join(Movie, Movie.movieId == MotionCorrection.movieId)
        .outerjoin(CTF, CTF.motionCorrectionId == MotionCorrection.motionCorrectionId)
        .outerjoin(
            RelativeIceThickness,
            RelativeIceThickness.motionCorrectionId == MotionCorrection.motionCorrectionId,
        )
        .outerjoin(
            ParticlePicker,
            ParticlePicker.firstMotionCorrectionId == MotionCorrection.motionCorrectionId,
        )
        .where(
            Movie.dataCollectionId.is_not(None),
            MotionCorrection.autoProcProgramId.is_not(None),
            MotionCorrection.movieId.is_not(None),
        )
    )


RESULT_COLUMNS = (
    *_KEY,
    "motion_correction_id",
    "total_motion",
    "ctf_program_id",
    "defocus",
    "astigmatism",
    "resolution",
    "ice_program_id",
    "ice_median",
    "picker_program_id",
    "particles",
)


def refresh(
    session: Session,
    *,
    movie_ids: Iterable[int] = (),
    motion_correction_ids: Iterable[int] = (),
) -> None:
    """Copy into the summary the movies ``movie_ids`` and the motion corrections
    ``motion_correction_ids`` with their results, as ISPyB holds them now. Never commits."""
    movies, motion = _refresh_statements(session.get_bind().dialect.name)
    for chunk in _chunks(movie_ids):
        session.execute(movies, {"ids": chunk})
    for chunk in _chunks(motion_correction_ids):
        session.execute(motion, {"ids": chunk})


_COPIED = {  # the ISPyB columns the summary's statements read
    "Movie": ("movieId", "dataCollectionId", "movieNumber", "createdTimeStamp", "movieFullPath"),
    "MotionCorrection": ("motionCorrectionId", "movieId", "autoProcProgramId", "totalMotion"),
    "CTF": (
        "motionCorrectionId", "autoProcProgramId", "estimatedDefocus", "astigmatism",
        "estimatedResolution",
    ),
    "RelativeIceThickness": ("motionCorrectionId", "autoProcProgramId", "median"),
    "ParticlePicker": ("firstMotionCorrectionId", "programId", "numberOfParticles"),
}  # fmt: skip


def backfill(connection: sa.Connection) -> None:
    """Fill the summary from every movie and motion correction in ISPyB (the migration).

    Nothing is copied where an ISPyB table lacks a column the summary copies (a facility's own
    table): the series then reads ISPyB's tables, as its counts will differ."""
    inspector = sa.inspect(connection)
    present = set(inspector.get_table_names())
    for table, needed in _COPIED.items():
        if table not in present:
            return
        if not set(needed) <= {c["name"] for c in inspector.get_columns(table)}:
            return
    dialect = connection.dialect.name
    connection.execute(_upsert_of(dialect, movie_select(), MOVIE_COLUMNS))
    connection.execute(_upsert_of(dialect, result_select(), RESULT_COLUMNS))


def counts(
    session: Session, *, data_collection_id: int, motion: int | None, programs: Sequence[int | None]
) -> tuple[int, int, int, int, int]:
    """The summary's movies of a collection, and its rows of motion program ``motion`` (whose
    CTF, ice and picking ``programs`` are those given): five counts, to compare with ISPyB's."""
    ctf, ice, picker = (-1 if p is None else p for p in programs)

    def has(column: Any, program: int) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((column == program, 1), else_=0)), 0)

    found = {
        int(row[0]): row[1:]
        for row in session.execute(
            sa.select(
                ROWS.c.motion_program_id,
                sa.func.count(),
                has(ROWS.c.ctf_program_id, ctf),
                has(ROWS.c.ice_program_id, ice),
                has(ROWS.c.picker_program_id, picker),
            )
            .where(
                ROWS.c.data_collection_id == data_collection_id,
                ROWS.c.motion_program_id.in_([MOVIE_ROWS, -1 if motion is None else motion]),
            )
            .group_by(ROWS.c.motion_program_id)
        )
    }
    movies = found.get(MOVIE_ROWS, (0,))[0]
    rows = found.get(-1 if motion is None else motion, (0, 0, 0, 0))
    return (int(movies), int(rows[0]), int(rows[1]), int(rows[2]), int(rows[3]))


@dataclass(frozen=True)
class Read:
    """A collection's summary as arrays, in movie order (NaN: no value).

    ``movies``: (n, 3) float64, columns movie id, movie number, acquisition time (epoch s);
    ``names``: the n movies' file names (without folder); ``results``: (k, 11) float64, the
    motion program's rows, columns :data:`READ_COLUMNS` (ids are exact in float64)."""

    movies: np.ndarray
    names: list[str | None]
    results: np.ndarray


READ_COLUMNS = ("movie_id", *RESULT_COLUMNS[3:])


def _numbers(blobs: list[str], rows: int, width: int) -> np.ndarray:
    """Comma-separated numbers (``nan``: NULL) to a (rows, width) float64 array, parsed in C."""
    text = ",".join(b for b in blobs if b)
    values = np.fromstring(text, sep=",") if text else np.zeros(0)
    if values.size != rows * width:
        raise Unpackable(f"{values.size} numbers for {rows} rows of {width}")
    return values.reshape(rows, width)


def _packed(
    session: Session, columns: Sequence[Any], where: Any, names: Any = None
) -> tuple[np.ndarray, list[str | None]]:
    """The numbers ``columns`` of the rows ``where`` in movie order, packed by the server in
    blocks of :data:`_BLOCK` movie ids (``nan`` for NULL) and parsed here by numpy, and the
    text ``names`` of the same rows (None: no text column)."""
    block = ROWS.c.movie_id.op("DIV")(_BLOCK)
    packed = [_GroupConcat(*(sa.func.coalesce(c, "nan") for c in columns), separator=",")]
    if names is not None:
        packed.append(_GroupConcat(sa.func.coalesce(names, ""), separator=_RECORD))
    query = sa.select(sa.func.count(), *packed).where(where).group_by(block).order_by(block)
    found = session.execute(query).all()
    rows = sum(int(r[0]) for r in found)
    numbers = _numbers([r[1] for r in found], rows, len(columns))
    text: list[str | None] = []
    if names is not None:
        text = [v or None for v in _RECORD.join(r[2] for r in found if r[0]).split(_RECORD)]
        if len(text) != rows:
            raise Unpackable(f"{len(text)} names for {rows} rows")
    return numbers, text


class Unpackable(RuntimeError):
    """A packed block that does not split back into its rows (a separator inside a path, or
    ``group_concat_max_len`` reached): the rows are read one by one instead."""


class _GroupConcat(FunctionElement[str]):
    """``GROUP_CONCAT(CONCAT_WS(separator, a, b, …) ORDER BY movie_id SEPARATOR separator)``
    (MariaDB): the rows' values, in movie order, as one string."""

    type = sa.String()
    inherit_cache = True

    def __init__(self, *clauses: Any, separator: str) -> None:
        self.separator = separator
        super().__init__(*clauses)


@compiles(_GroupConcat)
def _group_concat_mysql(element: _GroupConcat, compiler: Any, **kw: Any) -> str:
    fields = ", ".join(compiler.process(c, **kw) for c in element.clauses)
    sep = element.separator
    return f"GROUP_CONCAT(CONCAT_WS('{sep}', {fields}) ORDER BY movie_id SEPARATOR '{sep}')"


def read(
    session: Session, *, data_collection_id: int, motion: int | None, packed: bool | None = None
) -> Read:
    """A collection's movies and motion program ``motion``'s rows (:class:`Read`).
    ``packed``: whether the server packs the rows (MariaDB only); None: packed on MariaDB, and
    read again row by row when a block does not unpack (True: raise :class:`Unpackable`)."""
    movies_where = sa.and_(
        ROWS.c.data_collection_id == data_collection_id,
        ROWS.c.motion_program_id == MOVIE_ROWS,
    )
    results_where = sa.and_(
        ROWS.c.data_collection_id == data_collection_id,
        ROWS.c.motion_program_id == (-1 if motion is None else motion),
    )
    movie_columns = [ROWS.c.movie_id, ROWS.c.movie_number, ROWS.c.created_s]
    result_columns = [ROWS.c[name] for name in READ_COLUMNS]
    strict = packed is True
    if packed is None:
        packed = session.get_bind().dialect.name == "mysql"
    if packed:
        try:
            name = sa.func.substring_index(ROWS.c.path, "/", -1)
            movies, names = _packed(session, movie_columns, movies_where, names=name)
            results, _ = _packed(session, result_columns, results_where)
            return Read(movies, names, results)
        except Unpackable:
            if strict:
                raise
    rows = raw_rows(
        session,
        sa.select(*movie_columns, ROWS.c.path).where(movies_where).order_by(ROWS.c.movie_id),
    )
    found = raw_rows(
        session, sa.select(*result_columns).where(results_where).order_by(ROWS.c.movie_id)
    )
    return Read(
        movies=np.array([r[:3] for r in rows], dtype=np.float64).reshape(-1, 3),
        names=[None if r[3] is None else str(r[3]).rsplit("/", 1)[-1] for r in rows],
        results=np.array(found, dtype=np.float64).reshape(-1, len(READ_COLUMNS)),
    )
