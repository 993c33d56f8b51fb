"""The acquisition metadata of one movie, as parsed from EPU ``.xml`` or SerialEM ``.mdoc``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class AcquisitionMetadata(BaseModel):
    """What the acquisition software recorded about one movie. Units are in the names.

    ``nominal_defocus_a`` follows cryolive's convention: positive is underfocus (EPU and
    SerialEM write underfocus as a negative number; the parsers change the sign).
    """

    model_config = ConfigDict(frozen=True)

    source: str = Field(description="'epu' or 'serialem'")
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
    super_resolution_factor: int = 1
    stage_x_um: float | None = None
    stage_y_um: float | None = None
    stage_z_um: float | None = None
    stage_alpha_deg: float | None = None
    energy_filter_slit_ev: float | None = None
    phase_plate_used: bool = False
    detector_name: str | None = None
    acquired_at: datetime | None = None
