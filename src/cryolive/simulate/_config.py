"""Configuration of a simulated visit: detector, optics, specimen, motion, timing, faults."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MovieFormat = Literal["tiff", "mrc", "eer"]
BREAKING_FAULTS = (
    "truncated",
    "zero_byte",
    "corrupt_xml",
    "wrong_frame_count",
    "nan_pixels",
    "saturated_pixels",
    "unreadable",
)
FaultKind = Literal[
    "truncated",
    "zero_byte",
    "corrupt_xml",
    "wrong_frame_count",
    "nan_pixels",
    "saturated_pixels",
    "unreadable",
]


class Detector(BaseModel):
    """A camera: frame shape and what it writes."""

    model_config = ConfigDict(frozen=True)

    name: str
    commercial_name: str
    shape_px: tuple[int, int] = Field(description="(y, x) of a movie frame")
    pixel_size_a: float = Field(gt=0)
    default_format: MovieFormat
    gain_suffix: str = ".mrc"

    @property
    def is_falcon(self) -> bool:
        """Thermo Fisher's Falcon: EPU names its movies ``_Fractions`` (capital F) and writes
        the integrated image beside each."""
        return self.commercial_name.startswith("Falcon")


DETECTORS: dict[str, Detector] = {
    "tiny": Detector(
        name="tiny", commercial_name="Test camera", shape_px=(256, 256),
        pixel_size_a=1.0, default_format="tiff",
    ),
    "1k": Detector(
        name="1k", commercial_name="Test camera", shape_px=(1024, 1024),
        pixel_size_a=1.0, default_format="tiff",
    ),
    "k3": Detector(
        name="k3", commercial_name="BioQuantum K3", shape_px=(4092, 5760),
        pixel_size_a=0.83, default_format="tiff",
    ),
    "falcon4i": Detector(
        name="falcon4i", commercial_name="Falcon 4i", shape_px=(4096, 4096),
        pixel_size_a=0.73, default_format="eer", gain_suffix=".gain",
    ),
    "falcon-tiny": Detector(
        name="falcon-tiny", commercial_name="Falcon 4i", shape_px=(256, 256),
        pixel_size_a=1.0, default_format="mrc", gain_suffix=".gain",
    ),
}  # fmt: skip


class OpticsSetting(BaseModel):
    """A second optics setting used on some grid squares (fault ``optics_change``): what it
    changes from the visit's own. A new pixel size (magnification) is a new optics group:
    its movies belong in a data collection of their own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    defocus_range_a: tuple[float, float] = (24000.0, 30000.0)
    dose_e_per_a2: float = Field(default=60.0, gt=0)
    pixel_size_scale: float = Field(default=1.25, gt=0, description="times the visit's")
    magnification: int = Field(default=81_000, gt=0)


class SpecimenSpec(BaseModel):
    """One species: procedural (``seed``), a PDB/mmCIF ``model``, or an MRC ``map``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    seed: int | None = 1
    n_residues: int = Field(default=1500, ge=1)
    radius_a: float = Field(default=45.0, gt=3.8)
    model: Path | None = None
    map: Path | None = None
    abundance: float = Field(default=1.0, gt=0)


class MovieConfig(BaseModel):
    """The physics of every movie: optics, ice, particles, motion, dose, detector effects.

    The defaults are the ``realistic`` preset, as hard as real data (issue 23; sources in
    docs/simulate.md); ``MovieConfig.preset("easy", ...)`` is the simulator before it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_frames: int = Field(default=40, ge=1, description="fractions written (EER: groups)")
    dose_e_per_a2: float = Field(default=40.0, gt=0, description="total over the movie")
    exposure_time_s: float = Field(default=2.0, gt=0)
    voltage_kv: float = Field(default=300.0, gt=0)
    cs_mm: float = Field(default=2.7, ge=0)
    amplitude_contrast: float = Field(default=0.07, ge=0, lt=1)
    defocus_range_a: tuple[float, float] = (8000.0, 25000.0)
    astigmatism_max_a: float = Field(default=600.0, ge=0, description="|U - V| at most")
    phase_shift_deg: float | None = Field(default=None, description="phase plate; None = none")
    envelope_bfactor_a2: float = Field(default=60.0, ge=0)
    ice_thickness_range_a: tuple[float, float] = (250.0, 700.0)
    ice_gradient: float = Field(default=0.3, ge=0, lt=1, description="relative change across")
    inelastic_mean_free_path_a: float = Field(default=3500.0, gt=0)
    ice_phase_noise_rad: float = Field(default=0.15, ge=0, description="per Å² pixel at 300 Å")
    ice_texture: float = Field(
        default=0.03,
        ge=0,
        lt=0.5,
        description="relative sd of a low-frequency (~200 Å) texture of the ice's transmission",
    )
    particle_density: float = Field(default=0.25, ge=0, le=0.6, description="area fraction")
    particle_contrast: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="the protein's phase left against the ice it displaces (1: in vacuum)",
    )
    preferred_view_kappa: float = Field(default=0.0, ge=0)
    drift_total_px: float = Field(default=4.0, ge=0, description="mean whole-frame path")
    drift_settle_frames: float | None = Field(
        default=3.0, gt=0, description="time constant of the initial settle; None: n_frames / 4"
    )
    drift_creep_fraction: float = Field(
        default=0.35, ge=0, le=1, description="share of the path that is slow linear creep"
    )
    drift_jitter_px: float = Field(default=0.05, ge=0, description="random-walk step per frame")
    local_motion_px: float = Field(default=0.4, ge=0, description="peak local deviation")
    radiation_damage: bool = True
    noiseless: bool = Field(default=False, description="float32 expected counts, no Poisson")
    hot_pixel_fraction: float = Field(default=2e-5, ge=0, lt=0.01)
    dead_pixel_fraction: float = Field(default=2e-5, ge=0, lt=0.01)
    gain_spread: float = Field(default=0.05, ge=0, lt=0.5, description="std of pixel gain")
    eer_frames_per_fraction: int = Field(default=20, ge=1)

    @classmethod
    def preset(cls, name: str, **overrides: object) -> MovieConfig:
        """A named preset (``MOVIE_PRESETS``) with ``overrides`` on top.

        ``realistic`` is the default (as hard as real data); ``easy`` is the simulator before
        issue 23 (particles at their full phase in vacuum, a slow drift with no creep, no ice
        texture), for tests that need *some* particles rather than a fair measure.
        """
        if name not in MOVIE_PRESETS:
            raise ValueError(f"preset: unknown {name!r}; known: {sorted(MOVIE_PRESETS)}")
        return cls.model_validate({**MOVIE_PRESETS[name], **overrides})

    @model_validator(mode="after")
    def _ranges(self) -> MovieConfig:
        lo, hi = self.defocus_range_a
        if not 0 < lo <= hi:
            raise ValueError(f"defocus_range_a: need 0 < low <= high, got {self.defocus_range_a}")
        lo, hi = self.ice_thickness_range_a
        if not 0 < lo <= hi:
            raise ValueError(f"ice_thickness_range_a: need 0 < low <= high, got {(lo, hi)}")
        return self


MOVIE_PRESETS: dict[str, dict[str, object]] = {
    "realistic": {},
    "easy": {
        "particle_contrast": 1.0,
        "ice_texture": 0.0,
        "drift_settle_frames": None,
        "drift_creep_fraction": 0.0,
    },
}


class FaultRates(BaseModel):
    """Probability of each fault per movie (``missing_gain``: per grid)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    truncated: float = Field(default=0.0, ge=0, le=1)
    zero_byte: float = Field(default=0.0, ge=0, le=1)
    corrupt_xml: float = Field(default=0.0, ge=0, le=1)
    wrong_frame_count: float = Field(default=0.0, ge=0, le=1)
    nan_pixels: float = Field(default=0.0, ge=0, le=1)
    saturated_pixels: float = Field(default=0.0, ge=0, le=1)
    unreadable: float = Field(default=0.0, ge=0, le=1)
    missing_gain: float = Field(default=0.0, ge=0, le=1)
    # How a file reaches the visit (independent of the faults above, which break a movie):
    late_metadata: float = Field(
        default=0.0, ge=0, le=1, description="the .xml written metadata_delay_s after the movie"
    )
    stalled_writer: float = Field(
        default=0.0, ge=0, le=1, description="half the movie written, the rest stall_s later"
    )
    integrated_image: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="EPU's integrated image (FoilHole_…_Data_….mrc) beside the movie; "
        "always written for a Falcon",
    )
    foreign_symlink: float = Field(
        default=0.0, ge=0, le=1, description="a link in Data/ to a movie outside the visit"
    )
    optics_change: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="per grid square after the first: collected with the alternate optics",
    )
    metadata_delay_s: float = Field(default=120.0, ge=0)
    stall_s: float = Field(default=30.0, ge=0)

    def per_movie(self) -> dict[str, float]:
        """The faults that break a movie (at most one per movie)."""
        return {k: getattr(self, k) for k in BREAKING_FAULTS}

    @model_validator(mode="after")
    def _total(self) -> FaultRates:
        if sum(self.per_movie().values()) > 1:
            raise ValueError("faults: per-movie rates must add up to at most 1")
        return self


class VisitConfig(BaseModel):
    """A whole simulated visit: ``n_grids`` raw folders of ``movies_per_grid`` movies."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    visit: str = "bi23047-5"
    n_grids: int = Field(default=1, ge=1, le=20)
    movies_per_grid: int = Field(default=10, ge=1)
    layout: Literal["epu", "serialem"] = "epu"
    detector: str = "tiny"
    format: MovieFormat | None = None
    shape_px: tuple[int, int] | None = Field(default=None, description="override the detector's")
    pixel_size_a: float | None = Field(default=None, gt=0)
    movie: MovieConfig = MovieConfig()
    specimens: tuple[SpecimenSpec, ...] = (SpecimenSpec(),)
    faults: FaultRates = FaultRates()
    rate_per_hour: float | None = Field(default=None, gt=0, description="None: as fast as possible")
    write_fraction: float = Field(
        default=0.5, gt=0, le=1, description="of the interval spent writing"
    )
    movies_per_foil_hole: int = Field(default=4, ge=1)
    foil_holes_per_square: int = Field(default=6, ge=1, le=300)
    alternate_optics: OpticsSetting = OpticsSetting()
    start_time: datetime = Field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    seed: int = 0

    @model_validator(mode="after")
    def _zoned_start(self) -> VisitConfig:
        # EPU writes every time with its zone; a naive start is taken as UTC
        if self.start_time.tzinfo is None:
            object.__setattr__(self, "start_time", self.start_time.replace(tzinfo=UTC))
        return self

    @model_validator(mode="after")
    def _known_detector(self) -> VisitConfig:
        if self.detector not in DETECTORS:
            raise ValueError(f"detector: unknown {self.detector!r}; known: {sorted(DETECTORS)}")
        if not self.specimens:
            raise ValueError("specimens: give at least one")
        return self

    @property
    def camera(self) -> Detector:
        return DETECTORS[self.detector]

    @property
    def movie_format(self) -> MovieFormat:
        return self.format or self.camera.default_format

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self.shape_px or self.camera.shape_px

    @property
    def pixel_size(self) -> float:
        return self.pixel_size_a or self.camera.pixel_size_a
