"""Parse a SerialEM ``.mdoc`` (``Frames/<movie>.tif.mdoc``) into AcquisitionMetadata.

An mdoc is text: ``Key = value`` lines. Global ones come first (``PixelSpacing``, ``Voltage``,
``ImageFile``, ``ImageSize`` …), with title lines ``[T = …]`` among them (SerialEM writes one or
more: the program, the date, the tilt axis). Sections follow, each opened by ``[ZValue = 0]``
(a single image), ``[FrameSet = 0]`` (a frame-series movie) or another ``[Name = n]``. The first
section describes the movie; its values win over the global ones of the same key.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path

from cryolive.io._errors import MetadataReadError, check_file, one_line
from cryolive.io._metadata import AcquisitionMetadata

__all__ = ["parse_mdoc_text", "read_mdoc"]

MAX_MDOC_BYTES = 16 * 2**20  # a frame mdoc is ~1 kB; a long tilt series' a few hundred
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_DATE = re.compile(r"(\d{1,2})-([A-Za-z]{3})-(\d{2}|\d{4})\s+(\d{1,2}):(\d{2}):(\d{2})")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def read_mdoc(path: Path | str) -> AcquisitionMetadata:
    """Read a SerialEM ``.mdoc``.

    Returns
    -------
    AcquisitionMetadata
        ``PixelSpacing`` (Å; with ``Binning = 0.5`` the super-resolution pixel), ``Voltage``
        (kV), ``ExposureTime`` (s), ``NumSubFrames`` (else the frames of
        ``FrameDosesAndNumber``), ``ExposureDose`` (e/Å²; when 0 — dose not calibrated — the sum
        of ``FrameDosesAndNumber``), ``TargetDefocus`` (else ``Defocus``; µm, negative
        underfocus, stored as Å positive underfocus), ``Magnification``, ``Binning``,
        ``StagePosition``/``StageZ`` (µm), ``TiltAngle`` (deg), ``DateTime`` (local time, naive),
        ``DoseRate``, ``FilterSlitAndLoss``, ``ImageSize``, ``UncroppedSize``, ``ImageShift``.

    Raises
    ------
    MetadataReadError
        Missing, empty, unreadable, not text, or a required key (PixelSpacing, Voltage,
        ExposureTime) missing, or any key read not of its type.
    """
    path = Path(path)
    check_file(path, MetadataReadError)
    if path.stat().st_size > MAX_MDOC_BYTES:
        raise MetadataReadError(path, f"larger than {MAX_MDOC_BYTES} bytes: not an mdoc")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # SerialEM on Windows may write a title or note in the ANSI code page; binary is refused
        # below by its control characters
        text = data.decode("latin-1")
    if _CONTROL.search(text):
        raise MetadataReadError(path, "not a text mdoc (binary or undecodable bytes)")
    return parse_mdoc_text(text, path=path)


def _sections(text: str, path: Path) -> dict[str, str]:
    """The global values overlaid with the first section's."""
    header: dict[str, str] = {}
    section: dict[str, str] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("["):
            name, equals, _ = line[1:].partition("=")
            if not line.endswith("]") or not equals or not name.strip():
                raise MetadataReadError(path, f"line {number} is not a '[Name = value]' section")
            if name.strip() == "T":
                continue  # a title line, wherever it stands
            if section is not None:
                break  # the first section is the movie; the others are not read
            section = {}
            continue
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            raise MetadataReadError(path, f"line {number} is not 'Key = value'")
        (header if section is None else section).setdefault(key.strip(), value.strip())
    return {**header, **(section or {})}


def parse_mdoc_text(text: str, *, path: Path) -> AcquisitionMetadata:
    """Parse mdoc ``text``; ``path`` names it in errors."""
    values = _sections(text, path)

    def numbers(key: str, count: int | None = None) -> list[float] | None:
        """The numbers of ``key`` (``count`` of them when given); None when absent."""
        if key not in values or not values[key]:
            return None
        try:
            found = [float(v) for v in values[key].split()]
        except ValueError as exc:
            raise MetadataReadError(path, f"{key} is not a number") from exc
        if not all(math.isfinite(v) for v in found):
            raise MetadataReadError(path, f"{key} is not finite")
        if count is not None and len(found) != count:
            raise MetadataReadError(path, f"{key} is not {count} numbers")
        return found

    def num(key: str, required: bool = False) -> float | None:
        found = numbers(key)
        if found is None:
            if required:
                raise MetadataReadError(path, f"required key {key} is missing")
            return None
        return found[0]

    def pair(key: str) -> tuple[float | None, float | None]:
        found = numbers(key, 2)
        return (None, None) if found is None else (found[0], found[1])

    def whole(key: str) -> int | None:
        value = num(key)
        if value is not None and not value.is_integer():
            raise MetadataReadError(path, f"{key} is not a whole number")
        return None if value is None else int(value)

    pixel = num("PixelSpacing", True)
    voltage = num("Voltage", True)
    exposure = num("ExposureTime", True)
    assert pixel is not None and voltage is not None and exposure is not None
    binning, superres = _binning(path, num("Binning"))
    stage = pair("StagePosition")
    defocus_um = num("TargetDefocus")
    if defocus_um is None:
        defocus_um = num("Defocus")
    frame_doses = _frame_doses(path, numbers("FrameDosesAndNumber"))
    dose = num("ExposureDose")
    if not dose and frame_doses is not None:  # 0: SerialEM's dose is not calibrated
        dose = frame_doses[0]
    elif dose == 0:
        dose = None
    n_frames = whole("NumSubFrames") or (None if frame_doses is None else frame_doses[1])
    slit = numbers("FilterSlitAndLoss")
    size = numbers("ImageSize", 2)
    uncropped = numbers("UncroppedSize", 2)
    shift = pair("ImageShift")
    try:
        return AcquisitionMetadata(
            source="serialem",
            pixel_size_a=pixel,
            voltage_kv=voltage,
            exposure_time_s=exposure,
            n_fractions=n_frames,
            dose_e_per_a2=dose,
            frame_dose_e_per_a2=None if frame_doses is None else frame_doses[2],
            dose_rate_e_per_px_s=num("DoseRate"),
            nominal_defocus_a=None if defocus_um is None else -defocus_um * 1e4,
            nominal_magnification=whole("Magnification"),
            binning=binning,
            super_resolution_factor=superres,
            readout_width_px=None if size is None else int(size[0]),
            readout_height_px=None if size is None else int(size[1]),
            # the size before cropping; SerialEM may write it signed, the magnitude is the size
            uncropped_width_px=None if uncropped is None else abs(int(uncropped[0])),
            uncropped_height_px=None if uncropped is None else abs(int(uncropped[1])),
            stage_x_um=stage[0],
            stage_y_um=stage[1],
            stage_z_um=num("StageZ"),
            stage_alpha_deg=num("TiltAngle"),
            energy_filter_slit_ev=slit[0] if slit and slit[0] > 0 else None,
            energy_filter_slit_inserted=None if not slit else slit[0] > 0,
            image_shift_x=shift[0],
            image_shift_y=shift[1],
            detector_name=values.get("CameraName") or None,
            acquired_at=_when(path, values.get("DateTime")),
        )
    except ValueError as exc:
        raise MetadataReadError(path, f"implausible value: {one_line(exc)}") from exc


def _binning(path: Path, value: float | None) -> tuple[int, int]:
    """(binning, super_resolution_factor) from SerialEM's ``Binning``: 0.5 is a K2/K3
    super-resolution movie, 1, 2 … ordinary binning."""
    if value is None:
        return 1, 1
    if value <= 0:
        raise MetadataReadError(path, f"Binning is {value:g}, not positive")
    if value < 1:
        factor = 1 / value
        if abs(factor - round(factor)) > 1e-6:
            raise MetadataReadError(path, f"Binning {value:g} is not 1/n (super-resolution)")
        return 1, round(factor)
    if not value.is_integer():
        raise MetadataReadError(path, f"Binning {value:g} is not a whole number")
    return int(value), 1


def _frame_doses(path: Path, found: list[float] | None) -> tuple[float, int, float | None] | None:
    """``FrameDosesAndNumber = d1 n1 d2 n2 …`` (e/Å² per frame, number of frames): total dose,
    frames, and the dose per frame when it is the same for all."""
    if found is None:
        return None
    if len(found) % 2 or any(n < 0 or not n.is_integer() for n in found[1::2]) or min(found) < 0:
        raise MetadataReadError(path, "FrameDosesAndNumber is not pairs of dose and frame count")
    pairs = list(zip(found[0::2], found[1::2], strict=True))
    total = sum(d * n for d, n in pairs)
    frames = int(sum(n for _, n in pairs))
    same = {d for d, n in pairs if n}
    return total, frames, (same.pop() if len(same) == 1 else None)


def _when(path: Path, text: str | None) -> datetime | None:
    """``DateTime = 06-Dec-26  19:38:01`` (two- or four-digit year; English month names,
    whatever the locale). SerialEM writes the PC's local time without a zone: naive."""
    if not text:
        return None
    match = _DATE.fullmatch(" ".join(text.split()))
    month = _MONTHS.get(match[2].lower()) if match else None
    if match is None or month is None:
        raise MetadataReadError(path, "DateTime is not dd-Mon-yy HH:MM:SS")
    year = int(match[3])
    if len(match[3]) == 2:
        year += 2000 if year < 70 else 1900
    try:
        return datetime(year, month, int(match[1]), int(match[4]), int(match[5]), int(match[6]))
    except ValueError as exc:
        raise MetadataReadError(path, "DateTime is not a valid date") from exc
