"""The ground-truth file of a simulated visit (JSON). Its schema is in docs/simulate.md."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

TRUTH_SCHEMA_VERSION = 2


class ParticleTruth(BaseModel):
    """One particle; position in frame-0 pixels (x right, y down, from the top-left pixel)."""

    x_px: float
    y_px: float
    rot_deg: float
    tilt_deg: float
    psi_deg: float
    species: str


class LocalMotionTruth(BaseModel):
    """Local motion on top of the whole-frame drift, sampled at tile centres per frame."""

    tile_px: int
    centres_x_px: list[float]
    centres_y_px: list[float]
    dx_px: list[list[list[float]]] = Field(description="[frame][tile row][tile column]")
    dy_px: list[list[list[float]]]


class IceTruth(BaseModel):
    mean_a: float
    min_a: float
    max_a: float
    map_8x8_a: list[list[float]] = Field(description="thickness at an 8 x 8 grid of centres")


class MovieTruth(BaseModel):
    """Everything planted in one movie."""

    movie: str = Field(description="path relative to the visit folder")
    metadata: str | None = Field(description="the .xml / .mdoc beside it")
    format: str
    shape_px: tuple[int, int, int] = Field(description="(frames, y, x) as written")
    pixel_size_a: float
    dose_e_per_a2: float
    dose_per_frame_e_per_px: float
    exposure_time_s: float
    eer_frames_per_fraction: int | None
    acquired_at: datetime
    voltage_kv: float
    cs_mm: float
    amplitude_contrast: float
    defocus_u_a: float = Field(description="positive is underfocus")
    defocus_v_a: float
    astigmatism_angle_deg: float = Field(description="of U from the x axis, counter-clockwise")
    phase_shift_deg: float
    envelope_bfactor_a2: float
    nominal_defocus_a: float
    drift_x_px: list[float] = Field(description="frame t relative to frame 0: content moved by")
    drift_y_px: list[float]
    local_motion: LocalMotionTruth | None
    ice_thickness: IceTruth
    particles: list[ParticleTruth]
    grid_square: int | None = Field(default=None, description="EPU's id: GridSquare_<id>")
    foil_hole: int | None = Field(default=None, description="EPU's id: FoilHole_<id>_Data_…")
    optics_setting: int = Field(default=0, description="0: the visit's; 1: alternate_optics")
    delivery: list[str] = Field(
        default_factory=list, description="late_metadata, stalled_writer: how it arrived"
    )


class GainTruth(BaseModel):
    path: str | None = Field(description="None when the gain reference is missing (a fault)")
    rotate_deg: int
    flip: str
    convention: str = "movie_gain = flip(rot90(stored, rotate_deg / 90)); corrected = frame * gain"


class FaultTruth(BaseModel):
    kind: str
    path: str
    detail: str


class NonMovieTruth(BaseModel):
    """A file that looks like a movie and must never be registered as one."""

    path: str = Field(description="relative to the visit folder")
    kind: str = Field(description="integrated_image or foreign_symlink")
    of_movie: str | None = Field(default=None, description="the movie it lies beside")


class GridSquareTruth(BaseModel):
    label: int
    optics_setting: int
    atlas_xy_px: tuple[float, float]
    stage_um: tuple[float, float, float]
    foil_holes: list[int]


class GridTruth(BaseModel):
    raw_folder: str
    gain: GainTruth
    movies: list[MovieTruth]
    atlas: str | None = Field(default=None, description="Atlas.dm, relative to the visit")
    grid_squares: list[GridSquareTruth] = Field(default_factory=list)
    non_movies: list[NonMovieTruth] = Field(default_factory=list)


class VisitTruth(BaseModel):
    schema_version: int = TRUTH_SCHEMA_VERSION
    visit: str
    detector: str
    layout: str
    config: dict[str, object]
    grids: list[GridTruth]
    faults: list[FaultTruth]

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=1))

    @classmethod
    def read(cls, path: Path | str) -> VisitTruth:
        return cls.model_validate_json(Path(path).read_text())
