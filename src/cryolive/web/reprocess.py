"""What a user may ask when they reprocess a data collection, checked before it is recorded.

The web writes only the request: a ProcessingJob (with these parameters as
ProcessingJobParameter rows) and its AutoProcProgram, not started (status NULL, no start time).
The pipeline picks the request up, runs it, and records its start and end on the program.

The form's names (``gain_reference``, ``box_size_px``, ``number_of_classes``) are names of the
run parameters' one table (:data:`cryolive.params.FLAT`); each value is checked against its
run parameter here, so a value the pipeline would refuse is answered 422, not recorded.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.orm import Session

from cryolive.db import ledger
from cryolive.db.repo import browse, collections
from cryolive.errors import BadInputError
from cryolive.params import decode_stored, encode_overrides, from_stored

RECIPE = "spa-preprocess"


class TooMany(Exception):
    """A request over one of the abuse limits (answered with 429)."""


@dataclass(frozen=True)
class Limits:
    open_per_collection: int
    per_user_hour: int


class ReprocessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    pixel_size_a: float = Field(gt=0, le=20, description="Pixel size of the movies, Å.")
    dose_per_frame_e_per_a2: float = Field(gt=0, le=20, description="Dose per frame, e⁻/Å².")
    gain_reference: str = Field(
        default="",
        max_length=255,
        description="Gain file: an absolute path inside the visit's raw or processed folders.",
    )
    eer_grouping: int | None = Field(default=None, ge=1, le=1000, description="EER frames/group.")
    particle_diameter_min_a: float = Field(gt=0, le=5000, description="Smallest particle, Å.")
    particle_diameter_max_a: float = Field(gt=0, le=5000, description="Largest particle, Å.")
    box_size_px: int | None = Field(default=None, ge=16, le=2048, description="Extraction box.")
    number_of_classes: int | None = Field(
        default=None, ge=1, le=500, description="2D classes (default: as the collection's run)."
    )
    request_key: str = Field(
        default_factory=lambda: uuid.uuid4().hex,
        pattern=r"^[A-Za-z0-9_-]{8,64}$",
        description="Makes a repeated submission (double click, retry) one request.",
    )

    @field_validator("gain_reference")
    @classmethod
    def _absolute_without_dotdot(cls, value: str) -> str:
        if value and (not value.startswith("/") or ".." in PurePosixPath(value).parts):
            raise ValueError("must be an absolute path without '..'")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> ReprocessRequest:
        if self.particle_diameter_min_a > self.particle_diameter_max_a:
            raise ValueError("particle_diameter_min_a must not exceed particle_diameter_max_a")
        if self.box_size_px is not None and self.box_size_px % 2:
            raise ValueError("box_size_px must be even")
        self.stored()  # each value fits its run parameter (a BadInputError is a ValueError)
        return self

    def stored(self) -> dict[str, str]:
        """The run parameters asked for, as ProcessingJobParameter rows (written names, JSON)."""
        values: dict[str, Any] = self.model_dump(exclude={"request_key"}, exclude_none=True)
        return encode_overrides({k: v for k, v in values.items() if v != ""})

    def parameters(self, *, requested_by: str) -> dict[str, str]:
        return self.stored() | {"requested_by": requested_by}


def record(
    session: Session,
    *,
    data_collection_id: int,
    request: ReprocessRequest,
    login: str,
    limits: Limits | None = None,
) -> int:
    """Record the request; returns its AutoProcProgram id (the same for a repeated request).

    Raises
    ------
    TooMany
        When a new request would exceed ``limits``: the data collection's requested or running
        requests, or the person's requests in the last hour. A repeated request is not new.
    """
    key = f"web-{request.request_key}"
    if limits is not None:  # two requests at one instant must not both take the last place
        collections.lock_data_collection(session, data_collection_id=data_collection_id)
    if limits is not None and not browse.request_exists(
        session, data_collection_id=data_collection_id, recipe=RECIPE, request_key=key
    ):
        _check(session, data_collection_id=data_collection_id, login=login, limits=limits)
    _, program_id = collections.register_processing_job(
        session,
        data_collection_id=data_collection_id,
        recipe=RECIPE,
        request_key=key,
        parameters=request.parameters(requested_by=login),
        display_name=f"Reprocess by {login}",
        automatic=False,
    )
    return program_id


def _check(session: Session, *, data_collection_id: int, login: str, limits: Limits) -> None:
    if browse.open_requests(session, data_collection_id=data_collection_id) >= (
        limits.open_per_collection
    ):
        raise TooMany(
            f"Too many reprocess requests: data collection {data_collection_id} already has "
            f"{limits.open_per_collection} requested or running. Stop one, or wait for one "
            "to finish."
        )
    if browse.requests_by(session, login=login, within=dt.timedelta(hours=1)) >= (
        limits.per_user_hour
    ):
        raise TooMany(
            f"Too many reprocess requests: at most {limits.per_user_hour} per person in an "
            "hour. Try again later."
        )


def stop(session: Session, *, auto_proc_program_id: int, login: str, when: dt.datetime) -> None:
    """End a run as failed, "stopped by <login>", and close its open work as cancelled, so the
    reconciler re-sends none of it and workers drop what is still queued."""
    now = when.replace(tzinfo=dt.UTC).timestamp()  # ``when`` is naive UTC, as ISPyB stores it
    ledger.cancel_program(session, program_id=auto_proc_program_id, now=now)
    collections.finish_program(
        session,
        auto_proc_program_id=auto_proc_program_id,
        success=False,
        message=f"stopped by {login}",
        when=when,
    )


def form_defaults(jobs: list[browse.JobRow], *, pixel_size_a: float | None) -> dict[str, Any]:
    """The reprocess form's starting values: the newest run of the collection with recorded
    parameters (its typed :class:`~cryolive.params.RunParameters`), the automatic run first;
    the collection's pixel size where no run says. A run whose rows do not read is skipped."""
    ordered = sorted(jobs, key=lambda j: (not j.automatic, -j.auto_proc_program_id))
    for job in ordered:
        if not job.parameters:
            continue
        try:
            run = from_stored(job.parameters)
        except BadInputError:
            continue
        return {
            "pixel_size_a": run.acquisition.pixel_size_a or pixel_size_a,
            "dose_per_frame_e_per_a2": run.acquisition.dose_per_frame_e_per_a2,
            "gain_reference": run.motion.gain_path,
            "eer_grouping": run.motion.eer_grouping,
            "particle_diameter_min_a": run.picking.diameter_min_a,
            "particle_diameter_max_a": run.picking.diameter_max_a,
            "box_size_px": run.extract.box_px,
            "number_of_classes": run.class2d.classes,
            "from_program": job.auto_proc_program_id,
        }
    return {"pixel_size_a": pixel_size_a}


# What a person's request asked for, in the words of the form, for its row in the job list.
_ASKED = (
    ("pixel_size_a", "pixel {} Å"),
    ("dose_per_frame_e_per_a2", "dose {} e⁻/Å²/frame"),
    ("particle_diameter_min_a", "particles {} Å"),
    ("particle_diameter_max_a", "to {} Å"),
    ("box_px", "box {} px"),
    ("class2d_classes", "{} classes"),
    ("eer_grouping", "EER grouping {}"),
    ("gain_path", "gain {}"),
)


def asked_for(parameters: dict[str, str]) -> str:
    """A user's request's parameters as one line ("pixel 1.1 Å · dose 1.2 e⁻/Å²/frame · …")."""
    words = []
    for key, text in _ASKED:
        if key in parameters:
            value = decode_stored(parameters[key])
            if value is not None:
                words.append(text.format(value))
    return " · ".join(words)
