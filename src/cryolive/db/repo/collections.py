"""Data collections and their processing jobs, as Diamond's tools register them.

One DataCollectionGroup per raw folder of a visit (``raw``, ``raw2`` …: one grid), keyed on the
visit and the folder. Inside it, one DataCollection per optics setting the folder's movies were
recorded with: the first keyed on the visit and the folder alone (as before optics were told
apart, so existing databases keep their rows), each further one on the folder and its optics
(``DataCollectionSpec.optics_key``). One ProcessingJob (with ProcessingJobParameter rows) and one
AutoProcProgram per recipe run, keyed on the data collection and the run's request key. An
AutoProcProgram's processingStatus is NULL while it runs, 1 on success, 0 on failure.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from ispyb.sqlalchemy import (
    AutoProcProgram,
    AutoProcProgramAttachment,
    AutoProcProgramMessage,
    DataCollection,
    DataCollectionGroup,
    ProcessingJob,
    ProcessingJobParameter,
)
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from cryolive.db.repo import _shared as shared
from cryolive.db.repo._keys import insert_row, lookup, table_of, upsert, upsert_many

SINGLE_PARTICLE = 37  # ISPyB ExperimentType
SEVERITIES = ("ERROR", "WARNING", "INFO")


class DataCollectionSpec(BaseModel):
    """What a data collection is: its folder and the optics it was recorded with."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    session_id: int
    image_directory: str = Field(max_length=255, description="The raw folder; ends with '/'")
    file_template: str = Field(default="", max_length=255)
    image_suffix: str = Field(default="", max_length=24)
    experiment_type_id: int = SINGLE_PARTICLE
    voltage_kv: float | None = None
    pixel_size_a: float | None = None
    magnification: int | None = None
    nominal_magnification: int | None = None
    exposure_time_s: float | None = None
    total_exposed_dose_e_per_a2: float | None = None
    image_size_x: int | None = None
    image_size_y: int | None = None
    binning: int | None = None
    nominal_defocus_a: float | None = None
    c2_aperture_um: float | None = None
    slit_gap_ev: float | None = None
    phase_plate: bool | None = None
    number_of_images: int | None = None
    start_time: dt.datetime | None = None
    optics_key: str = Field(
        default="",
        max_length=200,
        description="Empty for a folder's first data collection; else names the optics setting "
        "that makes a further data collection of the same folder (same DataCollectionGroup)",
    )
    comments: str | None = Field(
        default=None, max_length=1024, description="Written only when given (not cleared)"
    )

    @property
    def directory(self) -> str:
        return (
            self.image_directory
            if self.image_directory.endswith("/")
            else self.image_directory + "/"
        )


def register_data_collection(session: Session, *, spec: DataCollectionSpec) -> tuple[int, int]:
    """The (DataCollectionGroup, DataCollection) ids of a raw folder and optics setting,
    created on first call; every optics setting of one folder shares the folder's group."""
    key: tuple[object, ...] = (spec.session_id, spec.directory)
    group_id = upsert(
        session,
        table=table_of(DataCollectionGroup),
        key=key,
        values={
            "sessionId": spec.session_id,
            "experimentTypeId": spec.experiment_type_id,
            "experimentType": "EM",
            "startTime": spec.start_time,
        },
        adopt=shared.data_collection_groups(
            directory=spec.directory, optics={"voltage": spec.voltage_kv}
        ),
    )
    if spec.optics_key:
        key = (*key, "optics", spec.optics_key)
    comments = {} if spec.comments is None else {"comments": spec.comments}
    collection_id = upsert(
        session,
        table=table_of(DataCollection),
        key=key,
        values=comments
        | {
            "dataCollectionGroupId": group_id,
            "SESSIONID": spec.session_id,
            "imageDirectory": spec.directory,
            "fileTemplate": spec.file_template or None,
            "imageSuffix": spec.image_suffix or None,
            "voltage": spec.voltage_kv,
            "pixelSizeOnImage": spec.pixel_size_a,
            "magnification": spec.magnification,
            "nominalMagnification": spec.nominal_magnification,
            "exposureTime": spec.exposure_time_s,
            "totalExposedDose": spec.total_exposed_dose_e_per_a2,
            "imageSizeX": spec.image_size_x,
            "imageSizeY": spec.image_size_y,
            "binning": spec.binning,
            "nominalDefocus": spec.nominal_defocus_a,
            "c2aperture": spec.c2_aperture_um,
            "slitGapHorizontal": spec.slit_gap_ev,
            "phasePlate": None if spec.phase_plate is None else str(int(spec.phase_plate)),
            "numberOfImages": spec.number_of_images,
            "startTime": spec.start_time,
        },
        adopt=shared.data_collections(),  # a row another client wrote for this folder
    )
    return group_id, collection_id


def folder_collections(
    session: Session, *, session_id: int, image_directory: str
) -> list[tuple[int, int, float | None, float | None, str | None]]:
    """The data collections of one raw folder, oldest first: (id, group id, pixel size Å,
    voltage kV, comments) each."""
    directory = image_directory if image_directory.endswith("/") else image_directory + "/"
    rows = session.execute(
        sa.select(
            DataCollection.dataCollectionId,
            DataCollection.dataCollectionGroupId,
            DataCollection.pixelSizeOnImage,
            DataCollection.voltage,
            DataCollection.comments,
        )
        .filter_by(SESSIONID=session_id, imageDirectory=directory)
        .order_by(DataCollection.dataCollectionId)
    )
    return [
        (int(i), int(g), None if p is None else float(p), None if v is None else float(v), c)
        for i, g, p, v, c in rows
    ]


def lock_data_collection(session: Session, *, data_collection_id: int) -> None:
    """Hold the data collection's row until the transaction ends (``SELECT … FOR UPDATE`` on
    MariaDB; SQLite, one writer at a time, has nothing to lock), so that checks made under it
    (a limit on its requests) and the write that follows are one step for concurrent callers."""
    session.execute(
        sa.select(DataCollection.dataCollectionId)
        .where(DataCollection.dataCollectionId == data_collection_id)
        .with_for_update()
    )


def register_processing_job(
    session: Session,
    *,
    data_collection_id: int,
    recipe: str,
    request_key: str,
    parameters: Mapping[str, Any],
    display_name: str = "",
    automatic: bool = True,
    programs: str = "cryolive",
    by_parameters: bool = False,
) -> tuple[int, int]:
    """The (ProcessingJob, AutoProcProgram) ids of one recipe run, created on first call.

    With ``by_parameters`` a job is also its parameters: a request key registered with other
    parameters gets a new job (the key's parameters' fingerprint added to it), never rewrites
    the earlier run's; and a job of the same data collection, recipe and parameters that
    another client wrote (or an earlier run under another key) is reused, with its program.
    """
    stored = shared.stored_parameters(parameters)
    key: tuple[Any, ...] = (data_collection_id, recipe, request_key)
    adopt_job = None
    if by_parameters:
        key = _key_for(session, key, stored)
        adopt_job = shared.processing_jobs(stored)
    job_id = upsert(
        session,
        table=table_of(ProcessingJob),
        key=key,
        values={
            "dataCollectionId": data_collection_id,
            "recipe": recipe[:50],
            "displayName": (display_name or recipe)[:80],
            "automatic": int(automatic),
        },
        adopt=adopt_job,
    )
    upsert_many(
        session,
        table=table_of(ProcessingJobParameter),
        rows=[
            (
                (*key, name),
                {"processingJobId": job_id, "parameterKey": name, "parameterValue": value},
            )
            for name, value in sorted(stored.items())
        ],
        adopt=shared.JOB_PARAMETERS if by_parameters else None,
    )
    program_id = upsert(
        session,
        table=table_of(AutoProcProgram),
        key=key,
        values={"processingJobId": job_id, "processingPrograms": programs[:255]},
        adopt=shared.PROGRAMS if by_parameters else None,
    )
    return job_id, program_id


def _key_for(session: Session, key: tuple[Any, ...], stored: Mapping[str, str]) -> tuple[Any, ...]:
    """``key``, or when its job was registered with other parameters, the key of these."""
    known = lookup(session, table=table_of(ProcessingJob), keys=[key])
    if key not in known or shared.job_parameters_of(session, known[key]) == dict(stored):
        return key
    text = json.dumps(sorted(stored.items()), separators=(",", ":"))
    return (*key[:-1], f"{key[-1]}@{hashlib.sha256(text.encode()).hexdigest()[:16]}")


def job_parameters(session: Session, *, processing_job_id: int) -> dict[str, str]:
    rows = session.execute(
        sa.select(ProcessingJobParameter.parameterKey, ProcessingJobParameter.parameterValue).where(
            ProcessingJobParameter.processingJobId == processing_job_id
        )
    )
    return {str(k): str(v) for k, v in rows}


def start_program(session: Session, *, auto_proc_program_id: int, when: dt.datetime) -> None:
    """Mark a program running: status NULL, start time set (a restart clears the end)."""
    session.execute(
        sa.update(AutoProcProgram)
        .where(AutoProcProgram.autoProcProgramId == auto_proc_program_id)
        .values(
            processingStatus=None,
            processingStartTime=when,
            processingEndTime=None,
            processingMessage=None,
        )
    )


def finish_program(
    session: Session, *, auto_proc_program_id: int, success: bool, message: str, when: dt.datetime
) -> None:
    """Mark a program ended: status 1 on success, 0 on failure, with a message saying why."""
    session.execute(
        sa.update(AutoProcProgram)
        .where(AutoProcProgram.autoProcProgramId == auto_proc_program_id)
        .values(
            processingStatus=int(success), processingMessage=message[:255], processingEndTime=when
        )
    )


def add_program_message(
    session: Session,
    *,
    auto_proc_program_id: int,
    severity: str,
    message: str,
    description: str = "",
) -> int:
    if severity not in SEVERITIES:
        raise ValueError(f"severity: must be one of {SEVERITIES}, got {severity!r}")
    return insert_row(
        session,
        table=table_of(AutoProcProgramMessage),
        values={
            "autoProcProgramId": auto_proc_program_id,
            "severity": severity,
            "message": message[:200],
            "description": description or None,
        },
    )


def add_attachment(
    session: Session,
    *,
    auto_proc_program_id: int,
    file_type: str,
    file_path: str,
    file_name: str,
    importance_rank: int | None = None,
) -> int:
    """An AutoProcProgramAttachment, once per program and file (idempotent)."""
    return upsert(
        session,
        table=table_of(AutoProcProgramAttachment),
        key=(auto_proc_program_id, file_path, file_name),
        values={
            "autoProcProgramId": auto_proc_program_id,
            "fileType": file_type,
            "filePath": file_path,
            "fileName": file_name,
            "importanceRank": importance_rank,
        },
    )


def ended_programs(session: Session, *, program_ids: Sequence[int]) -> set[int]:
    """Those of ``program_ids`` that have ended (status set: finished, failed or stopped)."""
    if not program_ids:
        return set()
    rows = session.scalars(
        sa.select(AutoProcProgram.autoProcProgramId).where(
            AutoProcProgram.autoProcProgramId.in_(list(program_ids)),
            AutoProcProgram.processingStatus.is_not(None),
        )
    )
    return {int(r) for r in rows}


def requested_programs(session: Session, *, program_ids: Sequence[int]) -> set[int]:
    """Those of ``program_ids`` whose job a user requested (not automatic)."""
    if not program_ids:
        return set()
    rows = session.scalars(
        sa.select(AutoProcProgram.autoProcProgramId)
        .join(ProcessingJob, ProcessingJob.processingJobId == AutoProcProgram.processingJobId)
        .where(
            AutoProcProgram.autoProcProgramId.in_(list(program_ids)),
            ProcessingJob.automatic == 0,
        )
    )
    return {int(r) for r in rows}
