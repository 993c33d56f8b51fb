"""What the writer service does with a batch of result records.

Records are written parents first; then the work of every movie whose last stage has landed is
closed in the ledger (a movie is done when motion correction failed, or when CTF and ice each
have a result or a recorded failure).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from ispyb.sqlalchemy import AutoProcProgramMessage, ParticlePicker, RelativeIceThickness
from sqlalchemy.orm import Session

from cryolive.db import ledger
from cryolive.db.repo import collections
from cryolive.db.repo._keys import KeyParts, lookup, table_of, upsert_many
from cryolive.db.repo.classes import picker_of, write_classification
from cryolive.db.repo.recon3d import write_class3d, write_refinement
from cryolive.db.repo.results import motion_correction_ids, write_result_sets
from cryolive.errors import printable
from cryolive.records import (
    AnyRecord,
    Class3DRecord,
    ClassificationRecord,
    CtfRecord,
    FailureRecord,
    IceThicknessRecord,
    MotionCorrectionRecord,
    MovieRecord,
    MovieRef,
    ParticlePickerRecord,
    RefinementRecord,
)

# Records of a whole run's particles, not of one movie: no movie's work waits on them.
_RUN_RECORDS = (ClassificationRecord, Class3DRecord, RefinementRecord)

MESSAGE = table_of(AutoProcProgramMessage)
# A movie's work is done when each branch of the recipe has ended: ice thickness (a result or
# its failure), and CTF → picking (particles picked, or a failure of either stage).


def write_failures(session: Session, *, records: Sequence[FailureRecord]) -> list[int]:
    rows = []
    for r in records:
        path = r.movie.movie_full_path
        name = path.rsplit("/", 1)[-1]
        rows.append(
            (
                (*r.key, r.stage),
                {
                    "autoProcProgramId": r.auto_proc_program_id,
                    "severity": "ERROR",
                    "message": printable(f"{r.stage}: {name}: {r.reason}", limit=200),
                    "description": printable(f"{path}: {r.message.removeprefix(path + ': ')}"),
                },
            )
        )
    return upsert_many(session, table=MESSAGE, rows=rows)


def _failed_stages(
    session: Session, *, movies: Sequence[tuple[MovieRef, int]], stage: str
) -> set[tuple[MovieRef, int]]:
    keys: dict[KeyParts, tuple[MovieRef, int]] = {
        (*ref.key, program, stage): (ref, program) for ref, program in movies
    }
    found = lookup(session, table=MESSAGE, keys=list(keys))
    return {keys[key] for key in found}


def _has_child(session: Session, model: type, mc_id: int, program: int) -> bool:
    return (
        session.execute(
            sa.select(sa.literal(1)).where(
                model.motionCorrectionId == mc_id,  # type: ignore[attr-defined]
                model.autoProcProgramId == program,  # type: ignore[attr-defined]
            )
        ).first()
        is not None
    )


def finished_movies(session: Session, *, movies: Sequence[tuple[MovieRef, int]]) -> list[str]:
    """Work keys of the movies (with their program) whose processing has ended."""
    movies = list(dict.fromkeys(movies))
    done = _failed_stages(session, movies=movies, stage="register")
    done |= _failed_stages(session, movies=movies, stage="motioncorr")
    failed = {
        stage: _failed_stages(session, movies=movies, stage=stage)
        for stage in ("ctf", "ice", "pick")
    }
    for ref, program in movies:
        if (ref, program) in done:
            continue
        key = (*ref.key, program)
        try:
            mc_id = motion_correction_ids(session, keys=[key])[key]
        except LookupError:
            continue
        ice_ended = (ref, program) in failed["ice"] or _has_child(
            session, RelativeIceThickness, mc_id, program
        )
        picking_ended = (
            (ref, program) in failed["ctf"]
            or (ref, program) in failed["pick"]
            or _has_picks(session, mc_id, program)
        )
        if ice_ended and picking_ended:
            done.add((ref, program))
    return [ledger.work_key(program, ref.movie_full_path) for ref, program in done]


def _has_picks(session: Session, mc_id: int, program: int) -> bool:
    found = session.execute(
        sa.select(sa.literal(1)).where(
            ParticlePicker.firstMotionCorrectionId == mc_id, ParticlePicker.programId == program
        )
    ).first()
    return found is not None


def _program(record: AnyRecord) -> int | None:
    return None if isinstance(record, MovieRecord) else record.auto_proc_program_id


def write_records(session: Session, *, records: Sequence[AnyRecord], now: float) -> None:
    """Write a batch of any records and close the work that is finished.

    Results of a run that has ended (a user stopped it) are not written, and their work is
    closed. A requested run whose last movie is done is marked finished.
    """
    programs = {p for p in map(_program, records) if p is not None}
    ended = collections.ended_programs(session, program_ids=sorted(programs))
    late = [r for r in records if _program(r) in ended and not isinstance(r, _RUN_RECORDS)]
    records = [r for r in records if _program(r) not in ended]
    ledger.complete(
        session,
        keys=[ledger.work_key(p, r.movie.movie_full_path) for r in late if (p := _program(r))],
        now=now,
    )

    def of(kind: type) -> list:  # type: ignore[type-arg]
        return [r for r in records if isinstance(r, kind)]

    write_result_sets(
        session,
        movies=of(MovieRecord),
        motion_corrections=of(MotionCorrectionRecord),
        ctfs=of(CtfRecord),
        ice=of(IceThicknessRecord),
        picks=of(ParticlePickerRecord),
    )
    failures: list[FailureRecord] = of(FailureRecord)
    write_failures(session, records=failures)
    for c in of(ClassificationRecord):
        write_classification(
            session,
            program_id=c.auto_proc_program_id,
            particle_picker_id=picker_of(
                session,
                data_collection_id=c.movie.data_collection_id,
                movie_full_path=c.movie.movie_full_path,
                program_id=c.auto_proc_program_id,
            ),
            batch_number=c.batch_number,
            particles_in_batch=c.particles_in_batch,
            classes_in_batch=c.classes_in_batch,
            binned_pixel_size_a=c.binned_pixel_size_a,
            classes=c.classes,
            started_at=c.started_at,
            duration_s=c.duration_s,
        )
    for r3 in [*of(Class3DRecord), *of(RefinementRecord)]:
        picker = picker_of(
            session,
            data_collection_id=r3.movie.data_collection_id,
            movie_full_path=r3.movie.movie_full_path,
            program_id=r3.auto_proc_program_id,
        )
        if isinstance(r3, Class3DRecord):
            write_class3d(session, record=r3, particle_picker_id=picker)
        else:
            write_refinement(session, record=r3, particle_picker_id=picker)
    last = [
        (r.movie, r.auto_proc_program_id)
        for r in records
        if isinstance(r, (IceThicknessRecord, ParticlePickerRecord, FailureRecord))
    ]
    finished = finished_movies(session, movies=last)
    failed = {ledger.work_key(r.auto_proc_program_id, r.movie.movie_full_path) for r in failures}
    ledger.complete(session, keys=[k for k in finished if k in failed], now=now, outcome="failed")
    ledger.complete(session, keys=finished, now=now)
    for program in collections.requested_programs(session, program_ids=sorted(programs - ended)):
        _finish_if_done(session, program=program, now=now)


def _finish_if_done(session: Session, *, program: int, now: float) -> None:
    """End a requested run whose last movie is done: failed when every movie failed."""
    counts = ledger.outcomes(session, program_id=program)
    if counts.get("open", 0):
        return
    total, failed = sum(counts.values()), counts.get("failed", 0)
    if failed and failed == total:
        success, message = False, f"all {total} movies failed"
    elif failed:
        success, message = True, f"all movies processed, {failed} of {total} failed"
    else:
        success, message = True, "all movies processed"
    collections.finish_program(
        session,
        auto_proc_program_id=program,
        success=success,
        message=message,
        when=dt.datetime.fromtimestamp(now, dt.UTC),
    )
