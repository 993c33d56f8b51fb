"""Typed results the pipeline records, and how each maps onto its ISPyB row: the message contract
between the services and the writer.

Services send these to the writer (no worker holds database rights at a facility); each names
its parents by natural key, never by database id, so a worker needs no database to build one.
Fields are snake_case with units; ``COLUMNS`` maps them to ISPyB's camelCase columns.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    TABLE: ClassVar[str]
    COLUMNS: ClassVar[dict[str, str]]

    def values(self) -> dict[str, Any]:
        """The row's ISPyB column values (parents' ids are added by the repository)."""
        return {column: getattr(self, field) for field, column in self.COLUMNS.items()}


class MovieRef(BaseModel):
    """A movie by natural key: its data collection and full path."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    data_collection_id: int
    movie_full_path: str = Field(max_length=255)

    @property
    def key(self) -> tuple[int, str]:
        return (self.data_collection_id, self.movie_full_path)


class MovieRecord(_Record):
    TABLE = "Movie"
    kind: Literal["movie"] = "movie"
    COLUMNS = {
        "movie_number": "movieNumber",
        "created": "createdTimeStamp",
        "position_x": "positionX",
        "position_y": "positionY",
        "nominal_defocus_a": "nominalDefocus",
        "angle_deg": "angle",
        "fluence_e_per_a2": "fluence",
        "number_of_frames": "numberOfFrames",
        "foil_hole_id": "foilHoleId",
    }
    movie: MovieRef
    movie_number: int | None = Field(default=None, ge=0)
    created: dt.datetime | None = None
    position_x: float | None = None
    position_y: float | None = None
    nominal_defocus_a: float | None = None
    angle_deg: float | None = None
    fluence_e_per_a2: float | None = Field(default=None, ge=0)
    number_of_frames: int | None = Field(default=None, ge=1)
    foil_hole_id: int | None = None

    @property
    def key(self) -> tuple[int, str]:
        return self.movie.key

    def values(self) -> dict[str, Any]:
        values = super().values()
        values |= {"dataCollectionId": self.movie.data_collection_id}
        values |= {"movieFullPath": self.movie.movie_full_path}
        if values["createdTimeStamp"] is None:
            del values["createdTimeStamp"]  # the database's default: now
        return values


class MotionCorrectionRecord(_Record):
    TABLE = "MotionCorrection"
    kind: Literal["motion_correction"] = "motion_correction"
    COLUMNS = {
        "auto_proc_program_id": "autoProcProgramId",
        "image_number": "imageNumber",
        "first_frame": "firstFrame",
        "last_frame": "lastFrame",
        "dose_per_frame_e_per_a2": "dosePerFrame",
        "dose_weight": "doseWeight",
        "total_motion_a": "totalMotion",
        "average_motion_per_frame_a": "averageMotionPerFrame",
        "drift_plot_full_path": "driftPlotFullPath",
        "micrograph_full_path": "micrographFullPath",
        "micrograph_snapshot_full_path": "micrographSnapshotFullPath",
        "fft_full_path": "fftFullPath",
        "fft_corrected_full_path": "fftCorrectedFullPath",
        "patches_used_x": "patchesUsedX",
        "patches_used_y": "patchesUsedY",
        "comments": "comments",
    }
    movie: MovieRef
    auto_proc_program_id: int
    image_number: int | None = Field(default=None, ge=0, le=65_535)  # smallint unsigned
    first_frame: int | None = None
    last_frame: int | None = None
    dose_per_frame_e_per_a2: float | None = None
    dose_weight: float | None = None
    total_motion_a: float | None = None
    average_motion_per_frame_a: float | None = None
    drift_plot_full_path: str | None = None
    micrograph_full_path: str | None = None
    micrograph_snapshot_full_path: str | None = None
    fft_full_path: str | None = None
    fft_corrected_full_path: str | None = None
    patches_used_x: int | None = None
    patches_used_y: int | None = None
    comments: str | None = None

    @property
    def key(self) -> tuple[int, str, int]:
        return (*self.movie.key, self.auto_proc_program_id)


class _OnMotionCorrection(_Record):
    """A result computed from one motion-corrected micrograph."""

    movie: MovieRef
    motion_correction_program_id: int
    auto_proc_program_id: int

    @property
    def motion_correction_key(self) -> tuple[int, str, int]:
        return (*self.movie.key, self.motion_correction_program_id)

    @property
    def key(self) -> tuple[int, str, int, int]:
        return (*self.motion_correction_key, self.auto_proc_program_id)


class CtfRecord(_OnMotionCorrection):
    """A CTF fit. Defocus in Å, positive is underfocus; angles in degrees."""

    TABLE = "CTF"
    kind: Literal["ctf"] = "ctf"
    COLUMNS = {
        "auto_proc_program_id": "autoProcProgramId",
        "box_size": "boxSizeX",
        "min_resolution_a": "minResolution",
        "max_resolution_a": "maxResolution",
        "min_defocus_a": "minDefocus",
        "max_defocus_a": "maxDefocus",
        "defocus_step_a": "defocusStepSize",
        "astigmatism_a": "astigmatism",
        "astigmatism_angle_deg": "astigmatismAngle",
        "estimated_resolution_a": "estimatedResolution",
        "estimated_defocus_a": "estimatedDefocus",
        "amplitude_contrast": "amplitudeContrast",
        "cc_value": "ccValue",
        "fft_theoretical_full_path": "fftTheoreticalFullPath",
        "ice_ring_density": "iceRingDensity",
        "comments": "comments",
    }
    box_size: int | None = None
    min_resolution_a: float | None = None
    max_resolution_a: float | None = None
    min_defocus_a: float | None = None
    max_defocus_a: float | None = None
    defocus_step_a: float | None = None
    astigmatism_a: float | None = None
    astigmatism_angle_deg: float | None = None
    estimated_resolution_a: float | None = None
    estimated_defocus_a: float | None = None
    amplitude_contrast: float | None = None
    cc_value: float | None = None
    fft_theoretical_full_path: str | None = None
    ice_ring_density: float | None = None
    comments: str | None = None

    def values(self) -> dict[str, Any]:
        return super().values() | {"boxSizeY": self.box_size}


class IceThicknessRecord(_OnMotionCorrection):
    """Relative ice thickness: the five-number summary over a micrograph."""

    TABLE = "RelativeIceThickness"
    kind: Literal["ice"] = "ice"
    COLUMNS = {
        "auto_proc_program_id": "autoProcProgramId",
        "minimum": "minimum",
        "q1": "q1",
        "median": "median",
        "q3": "q3",
        "maximum": "maximum",
    }
    minimum: float
    q1: float
    median: float
    q3: float
    maximum: float


class ParticlePickerRecord(_OnMotionCorrection):
    """Particles picked on one micrograph. ``particle_diameter_nm`` in nm, as ISPyB keeps it."""

    TABLE = "ParticlePicker"
    COLUMNS = {
        "auto_proc_program_id": "programId",
        "picking_template": "particlePickingTemplate",
        "particle_diameter_nm": "particleDiameter",
        "number_of_particles": "numberOfParticles",
        "summary_image_full_path": "summaryImageFullPath",
    }
    kind: Literal["picks"] = "picks"
    picking_template: str | None = Field(default=None, max_length=255)
    particle_diameter_nm: float | None = Field(default=None, gt=0)
    number_of_particles: int = Field(ge=0)
    summary_image_full_path: str | None = None


class FailureRecord(_Record):
    """A step that failed on one movie for a reason a person can act on (a truncated movie, a
    blank micrograph): recorded as an ERROR AutoProcProgramMessage of the step's program."""

    TABLE = "AutoProcProgramMessage"
    COLUMNS = {"auto_proc_program_id": "autoProcProgramId"}
    kind: Literal["failure"] = "failure"
    movie: MovieRef
    auto_proc_program_id: int
    stage: str = Field(max_length=40)
    reason: str = Field(max_length=60, description="A short machine-readable cause")
    message: str

    @property
    def key(self) -> tuple[int, str, int]:
        return (*self.movie.key, self.auto_proc_program_id)


class ClassValues(BaseModel):
    """One 2D class of a batch classification."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    class_number: int = Field(ge=1)
    image_full_path: str = Field(max_length=255, description="PNG of the class average")
    particles: int = Field(ge=0)
    distribution: float = Field(ge=0, le=1, description="Fraction of the batch's particles")
    resolution_a: float | None = Field(default=None, gt=0)
    selected: bool = False


class ClassificationRecord(BaseModel):
    """One 2D classification of a particle batch: a ParticleClassificationGroup and a
    ParticleClassification per class. Its parent is the ParticlePicker row of the latest
    micrograph in the batch (``movie``, picked by ``auto_proc_program_id``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["classes"] = "classes"
    movie: MovieRef
    auto_proc_program_id: int
    batch_number: int = Field(ge=1)
    particles_in_batch: int = Field(ge=0)
    classes_in_batch: int = Field(ge=1)
    binned_pixel_size_a: float = Field(gt=0)
    classes: list[ClassValues] = Field(min_length=1)
    started_at: dt.datetime | None = Field(
        default=None, description="When the classification started (naive UTC)."
    )
    duration_s: float | None = Field(default=None, ge=0, description="How long it ran.")


class InitialModelValues(BaseModel):
    """The initial model a 3D classification started from (a CryoemInitialModel row)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    particles: int = Field(ge=0)
    resolution_a: float | None = Field(default=None, gt=0)


class Class3DValues(BaseModel):
    """One 3D class (a ParticleClassification row of a "3D" group). Accuracies as RELION's
    rlnAccuracyRotations (degrees) and rlnAccuracyTranslationsAngst (Å); completeness 0-1;
    angular efficiency 0-1 (1 - 2 sd / mean of the particles per view direction)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    class_number: int = Field(ge=1)
    map_full_path: str = Field(max_length=255, description="MRC map of the class")
    particles: int = Field(ge=0)
    distribution: float = Field(ge=0, le=1)
    resolution_a: float | None = Field(default=None, gt=0)
    completeness: float | None = Field(default=None, ge=0, le=1)
    rotation_accuracy_deg: float | None = Field(default=None, ge=0)
    translation_accuracy_a: float | None = Field(default=None, ge=0)
    angular_efficiency: float | None = Field(default=None, ge=0, le=1)
    selected: bool = False


class Class3DRecord(BaseModel):
    """One live 3D run (initial model + 3D classification of the selected 2D particles): a
    "3D" ParticleClassificationGroup (``batch_number`` is the run's number), its classes, and
    the CryoemInitialModel linked to each class. Its parent is the ParticlePicker row of the
    latest micrograph whose particles it holds (``movie``, picked by ``auto_proc_program_id``),
    as for 2D."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["classes3d"] = "classes3d"
    movie: MovieRef
    auto_proc_program_id: int
    run_number: int = Field(ge=1)
    particles: int = Field(ge=0)
    symmetry: str = Field(max_length=20)
    binned_pixel_size_a: float = Field(gt=0)
    initial_model: InitialModelValues
    classes: list[Class3DValues] = Field(min_length=1)


class BFactorPoint(BaseModel):
    """One point of the Rosenthal-Henderson plot: a refinement of ``particles`` particles."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    particles: int = Field(ge=1)
    resolution_a: float = Field(gt=0)


class RefinementRecord(BaseModel):
    """A refinement of the best 3D class and its postprocessing, recorded as Diamond does: a
    "3D" ParticleClassificationGroup with one class (the sharpened map, its resolution from
    the masked gold-standard FSC at 0.143, ``selected``), and BFactorFit rows (the
    resolutions of the refinements so far against their particle counts). The B-factor fit of
    ln N against 1/d² goes on the class (``bFactorFitLinear`` = B/2)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["refinement"] = "refinement"
    movie: MovieRef
    auto_proc_program_id: int
    run_number: int = Field(ge=1, description="The 3D run whose best class was refined")
    class_number: int = Field(ge=1, description="That class")
    particles: int = Field(ge=1)
    symmetry: str = Field(max_length=20)
    pixel_size_a: float = Field(gt=0)
    map_full_path: str = Field(max_length=255, description="The postprocessed map (MRC)")
    resolution_a: float = Field(gt=0)
    completeness: float | None = Field(default=None, ge=0, le=1)
    rotation_accuracy_deg: float | None = Field(default=None, ge=0)
    translation_accuracy_a: float | None = Field(default=None, ge=0)
    angular_efficiency: float | None = Field(default=None, ge=0, le=1)
    bfactor_points: list[BFactorPoint] = Field(min_length=1)


AnyRecord = Annotated[
    MovieRecord
    | MotionCorrectionRecord
    | CtfRecord
    | IceThicknessRecord
    | ParticlePickerRecord
    | FailureRecord
    | ClassificationRecord
    | Class3DRecord
    | RefinementRecord,
    Field(discriminator="kind"),
]
