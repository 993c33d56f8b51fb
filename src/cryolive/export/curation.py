"""The accepted exposures of a data collection, as a RELION micrographs STAR and a plain list.

The STAR file (RELION 3.1: an ``optics`` and a ``micrographs`` table) has one row per accepted
movie with a motion-corrected micrograph (absolute paths), its total motion and, when every
row has a CTF fit, the fit (defocus U/V in Å, positive is underfocus, as RELION's
``micrographs_ctf.star``). The list has one accepted movie's full path per line, in acquisition
order, for any program that takes a list of exposures.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import starfile
from ispyb.sqlalchemy import AutoProcProgram, DataCollection
from sqlalchemy.orm import Session

from cryolive.db.repo.collections import job_parameters
from cryolive.db.repo.curation import Curation
from cryolive.params import RunParameters, from_stored


def _run(session: Session, program_id: int | None) -> RunParameters:
    program = None if program_id is None else session.get(AutoProcProgram, program_id)
    if program is None or program.processingJobId is None:
        return from_stored({})
    return from_stored(job_parameters(session, processing_job_id=program.processingJobId))


def write_accepted_star(
    session: Session, *, data_collection_id: int, curation: Curation, path: Path
) -> int:
    """Write the accepted micrographs as a RELION micrographs STAR file; returns the rows."""
    dc = session.get(DataCollection, data_collection_id)
    if dc is None:
        raise LookupError(f"data_collection_id: no data collection {data_collection_id}")
    m = curation.measures
    rows = [i for i, ok in enumerate(curation.accepted) if ok and m.micrograph_path[i] is not None]
    run = _run(session, m.motion_program)
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
    table: dict[str, list[object]] = {
        "rlnMicrographName": [m.micrograph_path[i] for i in rows],
        "rlnOpticsGroup": [1] * len(rows),
        "rlnAccumMotionTotal": [m.total_motion_a[i] or 0.0 for i in rows],
    }
    fitted = [i for i in rows if m.defocus_um[i] is not None and m.astigmatism_a[i] is not None]
    if rows and len(fitted) == len(rows):
        defocus = [float(m.defocus_um[i] or 0.0) * 1e4 for i in rows]
        astig = [float(m.astigmatism_a[i] or 0.0) for i in rows]
        table |= {
            "rlnDefocusU": [d + a / 2 for d, a in zip(defocus, astig, strict=True)],
            "rlnDefocusV": [d - a / 2 for d, a in zip(defocus, astig, strict=True)],
            "rlnCtfAstigmatism": list(astig),
            "rlnDefocusAngle": [m.astigmatism_angle_deg[i] or 0.0 for i in rows],
            "rlnCtfFigureOfMerit": [m.ctf_fom[i] or 0.0 for i in rows],
            "rlnCtfMaxResolution": [m.resolution_a[i] or 0.0 for i in rows],
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    starfile.write({"optics": optics, "micrographs": pd.DataFrame(table)}, path, overwrite=True)
    return len(rows)


def write_accepted_list(*, curation: Curation, path: Path) -> int:
    """Write the accepted movies' full paths, one per line; returns how many."""
    paths = [p for p, ok in zip(curation.measures.movie_path, curation.accepted, strict=True) if ok]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{p}\n" for p in paths))
    return len(paths)
