"""Parse a SerialEM frame ``.mdoc`` (``Frames/<movie>.tif.mdoc``) into AcquisitionMetadata.

An mdoc is text: ``Key = value`` lines, global ones first, then sections opened by
``[ZValue = 0]`` (or ``[FrameSet = 0]``). The first section describes the movie.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cryolive.io._errors import MetadataReadError, check_file, one_line
from cryolive.io._metadata import AcquisitionMetadata

__all__ = ["parse_mdoc_text", "read_mdoc"]


def read_mdoc(path: Path | str) -> AcquisitionMetadata:
    """Read a SerialEM ``.mdoc``.

    Returns
    -------
    AcquisitionMetadata
        ``PixelSpacing`` (Å), ``Voltage`` (kV), ``ExposureTime`` (s), ``NumSubFrames``,
        ``ExposureDose`` (e/Å²), ``TargetDefocus`` (µm, negative underfocus, stored as Å
        positive underfocus), ``Magnification``, ``Binning``, ``StagePosition`` (µm), ``DateTime``.

    Raises
    ------
    MetadataReadError
        Missing, empty, unreadable, not text, or a required key (PixelSpacing, Voltage,
        ExposureTime) missing or not a number.
    """
    path = Path(path)
    check_file(path, MetadataReadError)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataReadError(path, "not a text mdoc (undecodable bytes)") from exc
    return parse_mdoc_text(text, path=path)


def parse_mdoc_text(text: str, *, path: Path) -> AcquisitionMetadata:
    """Parse mdoc ``text``; ``path`` names it in errors."""
    values: dict[str, str] = {}
    sections = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("["):
            sections += 1
            if sections > 1:
                break
            continue
        if "=" not in line:
            raise MetadataReadError(path, f"line {number} is not 'Key = value'")
        key, _, value = line.partition("=")
        values.setdefault(key.strip(), value.strip())

    def num(key: str, required: bool = False) -> float | None:
        if key not in values:
            if required:
                raise MetadataReadError(path, f"required key {key} is missing")
            return None
        try:
            return float(values[key].split()[0])
        except (ValueError, IndexError) as exc:
            raise MetadataReadError(path, f"{key} is not a number") from exc

    pixel = num("PixelSpacing", True)
    voltage = num("Voltage", True)
    exposure = num("ExposureTime", True)
    assert pixel is not None and voltage is not None and exposure is not None
    stage = values.get("StagePosition", "").split()
    try:
        stage_x, stage_y = (float(stage[0]), float(stage[1])) if len(stage) >= 2 else (None, None)
    except ValueError as exc:
        raise MetadataReadError(path, "StagePosition is not two numbers") from exc
    defocus_um = num("TargetDefocus")
    when = values.get("DateTime")
    try:
        acquired = datetime.strptime(" ".join(when.split()), "%d-%b-%y %H:%M:%S") if when else None
    except ValueError as exc:
        raise MetadataReadError(path, "DateTime is not dd-Mon-yy HH:MM:SS") from exc
    n_frames = num("NumSubFrames")
    mag = num("Magnification")
    try:
        return AcquisitionMetadata(
            source="serialem",
            pixel_size_a=pixel,
            voltage_kv=voltage,
            exposure_time_s=exposure,
            n_fractions=None if n_frames is None else int(n_frames),
            dose_e_per_a2=num("ExposureDose"),
            nominal_defocus_a=None if defocus_um is None else -defocus_um * 1e4,
            nominal_magnification=None if mag is None else int(mag),
            binning=int(num("Binning") or 1),
            stage_x_um=stage_x,
            stage_y_um=stage_y,
            stage_z_um=num("StageZ"),
            stage_alpha_deg=num("TiltAngle"),
            detector_name=values.get("CameraName"),
            acquired_at=acquired,
        )
    except ValueError as exc:
        raise MetadataReadError(path, f"implausible value: {one_line(exc)}") from exc
