"""Write a processing run's results as RELION 3.1 STAR files, so users carry on in RELION.

Into the run's RELION project (``<visit>/processed/<raw>/``): ``MotionCorr/jobNNN/
corrected_micrographs.star`` and ``CtfFind/jobNNN/micrographs_ctf.star``, each with an optics
table and one row per micrograph, paths relative to the project as RELION expects. Only
accepted exposures are written (curation: :mod:`cryolive.db.repo.curation`, judged on this
run's results).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
import starfile
from ispyb.sqlalchemy import CTF, AutoProcProgram, DataCollection, MotionCorrection, Movie
from sqlalchemy.orm import Session

from cryolive.config import CurationThresholds
from cryolive.db.repo import curation
from cryolive.db.repo.collections import job_parameters
from cryolive.io.layout import job_dir
from cryolive.params import from_stored


@dataclass(frozen=True)
class Exported:
    motion_star: Path
    ctf_star: Path
    micrographs: int
    rejected: int = 0


def _relative(path: str, project: Path) -> str:
    try:
        return str(Path(path).relative_to(project))
    except ValueError:
        return path


def export_run(
    session: Session, *, program_id: int, curation_defaults: CurationThresholds | None = None
) -> Exported:
    """Write the STAR files of run ``program_id`` (an AutoProcProgram) into its project,
    leaving out the movies curation rejects (``curation_defaults``: the facility's
    thresholds, for a collection without its own)."""
    program = session.get(AutoProcProgram, program_id)
    if program is None:
        raise LookupError(f"program_id: no AutoProcProgram {program_id}")
    stored = job_parameters(session, processing_job_id=program.processingJobId)
    run = from_stored(stored)  # the run's Cs and amplitude contrast (a request: what it asked)
    if "project_dir" in stored:
        project = Path(stored["project_dir"])
    else:  # a requested run: the project of its data collection's raw folder
        dc = session.scalar(
            sa.select(DataCollection)
            .join(Movie, Movie.dataCollectionId == DataCollection.dataCollectionId)
            .join(MotionCorrection, MotionCorrection.movieId == Movie.movieId)
            .where(MotionCorrection.autoProcProgramId == program_id)
            .limit(1)
        )
        if dc is None or not dc.imageDirectory:
            raise LookupError(f"program_id: run {program_id} has no results to export")
        raw = Path(dc.imageDirectory)
        project = raw.parent / "processed" / raw.name
    rows = session.execute(
        sa.select(MotionCorrection, CTF, DataCollection)
        .join(Movie, Movie.movieId == MotionCorrection.movieId)
        .join(DataCollection, DataCollection.dataCollectionId == Movie.dataCollectionId)
        .outerjoin(
            CTF,
            (CTF.motionCorrectionId == MotionCorrection.motionCorrectionId)
            & (CTF.autoProcProgramId == program_id),
        )
        .where(MotionCorrection.autoProcProgramId == program_id)
        .order_by(Movie.movieId)
    ).all()
    if not rows:
        raise LookupError(f"program_id: run {program_id} has no motion-corrected micrographs")
    dc = rows[0][2]
    rejected = curation.evaluate(
        session,
        data_collection_id=dc.dataCollectionId,
        defaults=curation_defaults or CurationThresholds(),
        motion=program_id,
    ).rejected_ids()
    everything = len(rows)
    rows = [row for row in rows if row[0].movieId not in rejected]
    pixel = float(dc.pixelSizeOnImage or 1.0)
    optics = pd.DataFrame(
        {
            "rlnOpticsGroupName": ["opticsGroup1"],
            "rlnOpticsGroup": [1],
            "rlnMicrographOriginalPixelSize": [pixel],
            "rlnVoltage": [float(dc.voltage or 300.0)],
            "rlnSphericalAberration": [run.ctf.cs_mm],
            "rlnAmplitudeContrast": [run.ctf.amplitude_contrast],
            "rlnMicrographPixelSize": [pixel],
        }
    )
    motion = pd.DataFrame(
        {
            "rlnMicrographName": [_relative(mc.micrographFullPath, project) for mc, _, _ in rows],
            "rlnMicrographMetadata": [
                _relative(mc.driftPlotFullPath or "", project) for mc, _, _ in rows
            ],
            "rlnAccumMotionTotal": [float(mc.totalMotion or 0.0) for mc, _, _ in rows],
            "rlnOpticsGroup": [1] * len(rows),
        }
    )
    fitted = [(mc, ctf) for mc, ctf, _ in rows if ctf is not None]
    ctfs = pd.DataFrame(
        {
            "rlnMicrographName": [_relative(mc.micrographFullPath, project) for mc, _ in fitted],
            "rlnOpticsGroup": [1] * len(fitted),
            "rlnDefocusU": [ctf.estimatedDefocus + ctf.astigmatism / 2 for _, ctf in fitted],
            "rlnDefocusV": [ctf.estimatedDefocus - ctf.astigmatism / 2 for _, ctf in fitted],
            "rlnCtfAstigmatism": [ctf.astigmatism for _, ctf in fitted],
            "rlnDefocusAngle": [ctf.astigmatismAngle for _, ctf in fitted],
            "rlnCtfFigureOfMerit": [ctf.ccValue for _, ctf in fitted],
            "rlnCtfMaxResolution": [ctf.estimatedResolution for _, ctf in fitted],
        }
    )
    motion_star = job_dir(project, "MotionCorr", program_id) / "corrected_micrographs.star"
    ctf_star = job_dir(project, "CtfFind", program_id) / "micrographs_ctf.star"
    for path, table in ((motion_star, motion), (ctf_star, ctfs)):
        path.parent.mkdir(parents=True, exist_ok=True)
        starfile.write({"optics": optics, "micrographs": table}, path, overwrite=True)
    return Exported(motion_star, ctf_star, len(rows), everything - len(rows))
