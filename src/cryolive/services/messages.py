"""What the pipeline's services receive and send on. Units are in the names."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cryolive.records import AnyRecord


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MovieStep(_Message):
    """The part of every per-movie message that says which movie of which run it is."""

    movie_path: str = Field(description="Full path of the movie file")
    data_collection_id: int
    program_id: int = Field(description="AutoProcProgram of the processing run")
    project_dir: str = Field(description="RELION project folder of the raw folder")
    movie_stem: str = Field(description="Output name stem, relative to the raw folder")


class MotionCorrMessage(MovieStep):
    pixel_size_a: float = Field(gt=0)
    dose_per_frame_e_per_a2: float = Field(gt=0)
    voltage_kv: float = Field(default=300.0, gt=0)
    frames: int | None = Field(default=None, ge=1, description="Frames the metadata promises")
    gain_path: str | None = None
    patches_x: int = Field(default=5, ge=1)
    patches_y: int = Field(default=5, ge=1)
    bfactor_a2: float = Field(default=500.0, ge=0)
    eer_grouping: int | None = Field(default=None, ge=1)


class MotionCorrOutput(_Message):
    """Sent on to CTF and ice estimation."""

    micrograph_path: str = Field(description="Dose-weighted sum (MRC)")
    plain_sum_path: str = Field(description="Sum without dose weighting, in counts (MRC)")
    micrograph_pixel_size_a: float
    total_dose_e_per_a2: float


class CtfMessage(MovieStep):
    micrograph_path: str
    micrograph_pixel_size_a: float = Field(gt=0)
    voltage_kv: float = Field(default=300.0, gt=0)
    cs_mm: float = Field(default=2.7, ge=0)
    amplitude_contrast: float = Field(default=0.07, ge=0, lt=1)
    box_px: int = Field(default=512, ge=64)
    min_resolution_a: float = Field(default=30.0, gt=0)
    max_resolution_a: float = Field(default=5.0, gt=0)
    min_defocus_a: float = Field(default=3000.0, gt=0)
    max_defocus_a: float = Field(default=50000.0, gt=0)
    fit_phase_shift: bool = False


class CtfOutput(_Message):
    """Sent on to picking: the micrograph's CTF (Å, degrees; positive defocus is underfocus)."""

    defocus_u_a: float
    defocus_v_a: float
    astigmatism_angle_deg: float


class PickMessage(MovieStep):
    micrograph_path: str
    micrograph_pixel_size_a: float = Field(gt=0)
    particle_diameter_min_a: float = Field(gt=0)
    particle_diameter_max_a: float = Field(gt=0)
    pick_threshold: float = Field(default=5.0, gt=0, description="Background sd (LoG)")
    picker: Literal["log", "topaz"] = Field(
        default="log", description="LoG, or Topaz's pretrained resnet16 (optional extra)"
    )
    box_px: int | None = Field(default=None, ge=16, description="Default: 1.5 x diameter")
    defocus_u_a: float
    defocus_v_a: float
    astigmatism_angle_deg: float
    voltage_kv: float = Field(default=300.0, gt=0)
    cs_mm: float = Field(default=2.7, ge=0)
    amplitude_contrast: float = Field(default=0.07, ge=0, lt=1)


class PickOutput(_Message):
    """Sent on to 2D classification: the micrograph's extracted particles."""

    particles_star: str = Field(description="RELION 3.1 particles.star of the micrograph")
    particles: int = Field(ge=0)
    mask_diameter_a: float = Field(gt=0, description="The largest diameter + 10%")


class Class2DMessage(MovieStep):
    """One micrograph's particles for the streaming 2D classification of its run."""

    particles_star: str
    particles: int = Field(ge=0)
    mask_diameter_a: float = Field(gt=0, description="Circular mask: the largest diameter + 10%")
    n_classes: int = Field(default=50, ge=1, description="Classes of a full batch")
    batch_size: int = Field(default=50_000, ge=10, description="Particles per batch")
    min_particles: int = Field(default=1_000, ge=2, description="Before the first classification")
    particles_per_class: int = Field(
        default=100, ge=2, description="Fewer particles than this per class use fewer classes"
    )
    growth: float = Field(
        default=1.5, gt=1.0, description="A batch is classified again when it grows by this factor"
    )
    iterations: int = Field(default=20, ge=2)


class IceMessage(MovieStep):
    plain_sum_path: str
    micrograph_pixel_size_a: float = Field(gt=0)
    total_dose_e_per_a2: float = Field(gt=0)


class WriteResults(_Message):
    """Results for the writer: typed records that name their parents by natural key."""

    records: list[AnyRecord] = Field(min_length=1)
