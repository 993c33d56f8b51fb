"""The acquisition metadata of one movie, as parsed from EPU ``.xml``, SerialEM ``.mdoc`` or the
FEI extended header of an MRC movie."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class AcquisitionMetadata(BaseModel):
    """What the acquisition software recorded about one movie. Units are in the names.

    ``nominal_defocus_a`` follows cryolive's convention: positive is underfocus (EPU and
    SerialEM write underfocus as a negative number; the parsers change the sign).

    ``pixel_size_a`` is the pixel of the movie as written, binning included.
    ``super_resolution_factor`` is the camera's sub-pixel sampling (2 on a K3 or K2 in
    super-resolution mode) and ``binning`` is applied on top of it, so the physical pixel is
    ``pixel_size_a * super_resolution_factor / binning``. SerialEM's ``Binning = 0.5`` is a
    super-resolution movie: factor 2, binning 1, and ``pixel_size_a`` the super-resolution pixel.

    ``acquired_at`` carries its time zone where the source records one (EPU's XML writes an
    offset, the FEI2 header a UTC instant); SerialEM writes the microscope PC's local time
    without a zone, and that datetime stays naive rather than be given a guessed zone.

    Every field after ``acquired_at`` was added later and is optional, so older callers and
    stored metadata keep working.
    """

    model_config = ConfigDict(frozen=True)

    source: str = Field(description="'epu', 'serialem' or 'fei-mrc'")
    pixel_size_a: float = Field(gt=0)
    voltage_kv: float = Field(gt=0)
    exposure_time_s: float = Field(ge=0)
    n_fractions: int | None = Field(default=None, ge=1)
    dose_e_per_a2: float | None = Field(default=None, ge=0)
    nominal_defocus_a: float | None = None
    nominal_magnification: int | None = None
    binning: int = Field(default=1, ge=1)
    readout_width_px: int | None = None
    readout_height_px: int | None = None
    super_resolution_factor: int = Field(default=1, ge=1)
    stage_x_um: float | None = None
    stage_y_um: float | None = None
    stage_z_um: float | None = None
    stage_alpha_deg: float | None = None
    energy_filter_slit_ev: float | None = Field(
        default=None, description="slit width in effect (eV); None when no slit is inserted"
    )
    phase_plate_used: bool = False
    detector_name: str | None = None
    acquired_at: datetime | None = None
    # -- added for real acquisitions (#16); all optional --
    energy_filter_slit_inserted: bool | None = Field(
        default=None, description="whether the energy-selecting slit was in; None: not recorded"
    )
    c2_aperture_um: float | None = Field(default=None, gt=0, description="C2 aperture size (µm)")
    objective_aperture_um: float | None = Field(default=None, gt=0)
    dose_rate_e_per_px_s: float | None = Field(
        default=None,
        ge=0,
        description="dose rate the software measured, electrons per unbinned camera pixel per s",
    )
    dose_on_camera_e_per_px: float | None = Field(
        default=None, ge=0, description="electrons per movie pixel over the whole exposure"
    )
    frame_dose_e_per_a2: float | None = Field(
        default=None, ge=0, description="dose per fraction (e/Å²) where the software states it"
    )
    uncropped_width_px: int | None = Field(default=None, ge=1)
    uncropped_height_px: int | None = Field(default=None, ge=1)
    readout_offset_x_px: int | None = None
    readout_offset_y_px: int | None = None
    image_shift_x: float | None = Field(default=None, description="in the software's own units")
    image_shift_y: float | None = None
    beam_shift_x: float | None = Field(default=None, description="in the software's own units")
    beam_shift_y: float | None = None
    electron_counting: bool | None = None
    software_version: str | None = None
