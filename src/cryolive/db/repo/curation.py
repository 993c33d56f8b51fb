"""Exposure curation: which movies of a data collection count, by thresholds on their recorded
results and by a user's manual accept or reject.

The thresholds (:class:`cryolive.config.CurationThresholds`) are a collection's own once a user
sets them (``cryolive_curation_thresholds``), else the facility's defaults. A movie is judged
on the results of one run (the one the collection's series shows, :func:`series.programs`, or
the run asked for): motion correction (total motion, and the early motion kept as JSON in
``MotionCorrection.comments``), CTF (defocus, astigmatism, fit resolution, figure of merit:
``ccValue``), relative ice thickness (median) and particles picked. A measure not yet recorded
rejects nothing. A manual decision overrides the thresholds.

Every reader (2D batches, exports, the web) judges the results as they are now with
:func:`evaluate`, so a threshold change re-selects without reprocessing; :func:`decide` also
stores each movie's decision (``cryolive_curation_decision``) for others to read in SQL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from ispyb.sqlalchemy import CTF, MotionCorrection, Movie, ParticlePicker, RelativeIceThickness
from sqlalchemy.orm import Session

from cryolive.config import CurationThresholds
from cryolive.db.models import CurationDecision, CurationThresholdsRow
from cryolive.db.repo.series import programs

__all__ = [
    "MEASURES",
    "REASONS",
    "Curation",
    "Measures",
    "decide",
    "evaluate",
    "judge",
    "measures",
    "set_manual",
    "set_thresholds",
    "thresholds",
]

Manual = Literal["accept", "reject"]

# Each measure's column in :class:`Measures` and its bounds in CurationThresholds (min, max).
MEASURES: dict[str, tuple[str, str | None, str | None]] = {
    "total_motion": ("total_motion_a", None, "total_motion_max_a"),
    "early_motion": ("early_motion_a", None, "early_motion_max_a"),
    "defocus": ("defocus_um", "defocus_min_um", "defocus_max_um"),
    "astigmatism": ("astigmatism_a", None, "astigmatism_max_a"),
    "ctf_resolution": ("resolution_a", None, "ctf_resolution_max_a"),
    "ctf_fom": ("ctf_fom", "ctf_fom_min", None),
    "ice": ("ice_median", "ice_min", "ice_max"),
    "particles": ("particles", "particles_min", "particles_max"),
}
REASONS = (*MEASURES, "manual")


@dataclass
class Measures:
    """A collection's movies and the measures curation judges, as columns (None: not yet
    recorded). Units: Å, except defocus in µm (positive is underfocus)."""

    movie_id: list[int] = field(default_factory=list)
    movie_number: list[int | None] = field(default_factory=list)
    movie_path: list[str] = field(default_factory=list)
    micrograph_path: list[str | None] = field(default_factory=list)
    total_motion_a: list[float | None] = field(default_factory=list)
    early_motion_a: list[float | None] = field(default_factory=list)
    defocus_um: list[float | None] = field(default_factory=list)
    astigmatism_a: list[float | None] = field(default_factory=list)
    astigmatism_angle_deg: list[float | None] = field(default_factory=list)
    resolution_a: list[float | None] = field(default_factory=list)
    ctf_fom: list[float | None] = field(default_factory=list)
    ice_median: list[float | None] = field(default_factory=list)
    particles: list[int | None] = field(default_factory=list)
    manual: list[Manual | None] = field(default_factory=list)
    motion_program: int | None = None  # the run judged (its motion-correction program)

    def columns(self) -> dict[str, list[Any]]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, list)}


@dataclass(frozen=True)
class Curation:
    """A collection's thresholds in force and its movies' decisions (in ``measures`` order)."""

    thresholds: CurationThresholds
    own: bool  # the collection's own thresholds (False: the facility's defaults)
    changed_by: str | None
    changed_at: dt.datetime | None
    measures: Measures
    accepted: list[bool]
    reasons: list[list[str]]

    def counts(self) -> dict[str, Any]:
        """Movies accepted and rejected, and how many fail each reason."""
        by_reason = Counter(r for rs in self.reasons for r in rs)
        return {
            "movies": len(self.accepted),
            "accepted": sum(self.accepted),
            "rejected": len(self.accepted) - sum(self.accepted),
            "by_reason": {r: by_reason.get(r, 0) for r in REASONS},
        }

    def rejected_ids(self) -> set[int]:
        return {m for m, ok in zip(self.measures.movie_id, self.accepted, strict=True) if not ok}

    def rejected_paths(self) -> set[str]:
        return {p for p, ok in zip(self.measures.movie_path, self.accepted, strict=True) if not ok}


def _early_motion(comments: str | None) -> float | None:
    if not comments or not comments.startswith("{"):
        return None
    try:
        value = json.loads(comments).get("early_motion_a")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def measures(
    session: Session,
    *,
    data_collection_id: int,
    motion: int | None = None,
    movie_paths: Sequence[str] | None = None,
) -> Measures:
    """The movies of a collection (acquisition order) with the results of one run
    (``motion``: its motion-correction program; default, the one the series shows); only
    those of ``movie_paths`` when given (a 2D batch's)."""
    progs = programs(session, data_collection_id=data_collection_id, motion=motion)
    out = Measures(motion_program=progs.motion)
    query = sa.select(Movie.movieId, Movie.movieNumber, Movie.movieFullPath).where(
        Movie.dataCollectionId == data_collection_id
    )
    if movie_paths is not None:
        query = query.where(Movie.movieFullPath.in_(list(movie_paths)))
    movies = session.execute(query.order_by(Movie.movieId)).all()
    some = movie_paths is not None
    query = sa.select(
        MotionCorrection.movieId,
        MotionCorrection.motionCorrectionId,
        MotionCorrection.totalMotion,
        MotionCorrection.comments,
        MotionCorrection.micrographFullPath,
    ).where(MotionCorrection.autoProcProgramId == (progs.motion or -1))
    if some:
        query = query.where(MotionCorrection.movieId.in_([m[0] for m in movies]))
    mcs = {row[0]: row[1:] for row in session.execute(query)}
    wanted = [row[0] for row in mcs.values()]

    def by_mc(key: Any, program: Any, chosen: int | None, *columns: Any) -> dict[Any, Any]:
        query = sa.select(key, *columns).where(program == (chosen or -1))
        if some:
            query = query.where(key.in_(wanted))
        return {row[0]: row[1:] for row in session.execute(query)}

    ctf = by_mc(
        CTF.motionCorrectionId,
        CTF.autoProcProgramId,
        progs.ctf,
        CTF.estimatedDefocus,
        CTF.astigmatism,
        CTF.astigmatismAngle,
        CTF.estimatedResolution,
        CTF.ccValue,
    )
    ice = by_mc(
        RelativeIceThickness.motionCorrectionId,
        RelativeIceThickness.autoProcProgramId,
        progs.ice,
        RelativeIceThickness.median,
    )
    picks = by_mc(
        ParticlePicker.firstMotionCorrectionId,
        ParticlePicker.programId,
        progs.picker,
        ParticlePicker.numberOfParticles,
    )
    manual: dict[int, Manual] = {
        int(movie): "reject" if value == "reject" else "accept"
        for movie, value in session.execute(
            sa.select(CurationDecision.movie_id, CurationDecision.manual).where(
                CurationDecision.data_collection_id == data_collection_id,
                CurationDecision.manual.is_not(None),
            )
        )
    }
    for movie_id, number, path in movies:
        mc_id, total, comments, micrograph = mcs.get(movie_id, (None, None, None, None))
        defocus, astig, angle, resolution, fom = ctf.get(mc_id, (None,) * 5)
        out.movie_id.append(int(movie_id))
        out.movie_number.append(None if number is None else int(number))
        out.movie_path.append(str(path))
        out.micrograph_path.append(micrograph)
        out.total_motion_a.append(_float(total))
        out.early_motion_a.append(_early_motion(comments))
        out.defocus_um.append(None if defocus is None else float(defocus) / 1e4)
        out.astigmatism_a.append(_float(astig))
        out.astigmatism_angle_deg.append(_float(angle))
        out.resolution_a.append(_float(resolution))
        out.ctf_fom.append(_float(fom))
        out.ice_median.append(_float(ice.get(mc_id, (None,))[0]))
        count = picks.get(mc_id, (None,))[0]
        out.particles.append(None if count is None else int(count))
        out.manual.append(manual.get(movie_id))
    return out


def judge(
    values: dict[str, float | int | None], manual: Manual | None, limits: CurationThresholds
) -> tuple[bool, list[str]]:
    """One movie: accepted, and the reasons it is not (the measures out of bounds, "manual").

    ``values``: the movie's measures by :data:`MEASURES` column name.
    """
    reasons = []
    for name, (column, low, high) in MEASURES.items():
        value = values.get(column)
        if value is None:
            continue
        lo = None if low is None else getattr(limits, low)
        hi = None if high is None else getattr(limits, high)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            reasons.append(name)
    if manual == "accept":
        return True, reasons
    if manual == "reject":
        return False, [*reasons, "manual"]
    return not reasons, reasons


def thresholds(
    session: Session, *, data_collection_id: int, defaults: CurationThresholds
) -> tuple[CurationThresholds, CurationThresholdsRow | None]:
    """The thresholds in force for a collection and its own row (None: the defaults)."""
    row = session.get(CurationThresholdsRow, data_collection_id)
    if row is None:
        return defaults, None
    return CurationThresholds.model_validate_json(row.thresholds), row


def evaluate(
    session: Session,
    *,
    data_collection_id: int,
    defaults: CurationThresholds,
    motion: int | None = None,
    movie_paths: Sequence[str] | None = None,
) -> Curation:
    """Judge every movie of a collection (or those of ``movie_paths``) on the results of run
    ``motion`` (default: the series') as recorded now (read only)."""
    limits, row = thresholds(session, data_collection_id=data_collection_id, defaults=defaults)
    found = measures(
        session, data_collection_id=data_collection_id, motion=motion, movie_paths=movie_paths
    )
    columns = [MEASURES[name][0] for name in MEASURES]
    values = [getattr(found, c) for c in columns]
    decisions = (
        [
            judge(dict(zip(columns, row_values, strict=True)), manual, limits)
            for row_values, manual in zip(zip(*values, strict=True), found.manual, strict=True)
        ]
        if found.movie_id
        else []
    )
    return Curation(
        thresholds=limits,
        own=row is not None,
        changed_by=None if row is None else row.changed_by,
        changed_at=None if row is None else row.changed_at,
        measures=found,
        accepted=[ok for ok, _ in decisions],
        reasons=[reasons for _, reasons in decisions],
    )


def decide(session: Session, *, data_collection_id: int, defaults: CurationThresholds) -> Curation:
    """Judge every movie and store each decision (manual overrides are kept)."""
    curation = evaluate(session, data_collection_id=data_collection_id, defaults=defaults)
    stored = {
        int(movie): (bool(accepted), reasons)
        for movie, accepted, reasons in session.execute(
            sa.select(
                CurationDecision.movie_id, CurationDecision.accepted, CurationDecision.reasons
            ).where(CurationDecision.data_collection_id == data_collection_id)
        )
    }
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    new, changed = [], []
    m = curation.measures
    for movie_id, ok, reasons in zip(m.movie_id, curation.accepted, curation.reasons, strict=True):
        row = {"movie_id": movie_id, "accepted": ok, "reasons": json.dumps(reasons)}
        before = stored.get(movie_id)
        if before is None:
            new.append(row | {"data_collection_id": data_collection_id, "decided_at": now})
        elif before != (ok, row["reasons"]):
            changed.append(row | {"decided_at": now})
    # bulk statements (executemany): on 20,000 movies a row at a time through the ORM took 5 s
    if new:
        session.execute(sa.insert(CurationDecision), new)
    if changed:
        session.execute(sa.update(CurationDecision), changed)
    return curation


def set_thresholds(
    session: Session,
    *,
    data_collection_id: int,
    limits: CurationThresholds,
    changed_by: str | None,
    defaults: CurationThresholds,
) -> Curation:
    """Make ``limits`` the collection's thresholds and re-decide its movies."""
    row = session.get(CurationThresholdsRow, data_collection_id)
    if row is None:
        row = CurationThresholdsRow(data_collection_id=data_collection_id)
        session.add(row)
    row.thresholds = limits.model_dump_json()
    row.changed_by = changed_by
    row.changed_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    session.flush()
    return decide(session, data_collection_id=data_collection_id, defaults=defaults)


def set_manual(
    session: Session,
    *,
    movie_id: int,
    manual: Manual | None,
    by: str | None,
    defaults: CurationThresholds,
) -> Curation:
    """Accept or reject one movie by hand (None: the thresholds decide again).

    Raises
    ------
    LookupError
        No such movie.
    """
    dc = session.scalar(sa.select(Movie.dataCollectionId).where(Movie.movieId == movie_id))
    if dc is None:
        raise LookupError(f"movie_id: no movie {movie_id}")
    row = session.get(CurationDecision, movie_id)
    if row is None:
        row = CurationDecision(
            movie_id=movie_id, data_collection_id=int(dc), accepted=True, reasons="[]"
        )
        session.add(row)
    row.manual = manual
    row.manual_by = by
    session.flush()
    return decide(session, data_collection_id=int(dc), defaults=defaults)
