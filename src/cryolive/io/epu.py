"""Parse the ``.xml`` EPU writes beside each movie into :class:`AcquisitionMetadata`.

The file is a serialised ``MicroscopeImage`` (XML namespaces of the .NET data-contract
serializer). Elements are found by local name, so namespace prefixes do not matter. SI units
in the file (metres, volts, electrons per m², radians) are converted to cryolive's units.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from cryolive.io._errors import MetadataReadError, one_line
from cryolive.io._metadata import AcquisitionMetadata
from cryolive.io._xml import child as _find
from cryolive.io._xml import parse_xml, when
from cryolive.io._xml import text as _text

__all__ = ["AcquisitionMetadata", "read_epu_xml"]


def _key_values(node: ET.Element | None) -> dict[str, ET.Element]:
    """The ``KeyValueOfstringanyType`` pairs under ``node``: key -> Value element."""
    out: dict[str, ET.Element] = {}
    if node is None:
        return out
    for pair in node:
        key = _find(pair, "Key")
        value = _find(pair, "Value")
        if key is not None and key.text and value is not None:
            out[key.text.strip()] = value
    return out


MAX_XML_BYTES = 4 * 2**20  # EPU's own are a few kB


def read_epu_xml(path: Path | str) -> AcquisitionMetadata:
    """Read the metadata of one EPU acquisition (``FoilHole_*_Data_*.xml``).

    Parameters
    ----------
    path
        The ``.xml`` beside the movie.

    Returns
    -------
    AcquisitionMetadata
        Pixel size (Å), voltage (kV), exposure (s), fractions, dose (e/Å²), dose rate and
        dose on camera, nominal defocus (Å, positive underfocus), magnification, binning and
        super-resolution factor, readout area (px), stage (µm, deg), energy filter slit (in or
        out, eV), C2 and objective apertures (µm), image and beam shift, electron counting,
        detector, EPU version, and the acquisition time with the zone EPU wrote (UTC).
        Which element gives which field: ``docs/acquisition-metadata.md``.

    Raises
    ------
    MetadataReadError
        Missing, empty, unreadable, not XML (e.g. cut short while being written), a DTD, a
        required field (pixel size, voltage, exposure time) absent, or any field read not of
        its type (the message names the field).
    """
    path = Path(path)
    return _parse(path, parse_xml(path, root_name="MicroscopeImage", max_bytes=MAX_XML_BYTES))


def _number(path: Path, node: ET.Element | None, what: str, *, required: bool) -> float | None:
    if node is None or node.text is None or not node.text.strip():
        if required:
            raise MetadataReadError(path, f"required field {what} is missing")
        return None
    try:
        value = float(node.text)
    except ValueError as exc:
        raise MetadataReadError(path, f"field {what} is not a number") from exc
    if not math.isfinite(value):
        raise MetadataReadError(path, f"field {what} is not finite")
    return value


def _flag(path: Path, node: ET.Element | None, what: str) -> bool | None:
    """An ``xs:boolean`` (``true``/``false``/``1``/``0``); None when absent or nil."""
    text = "" if node is None or node.text is None else node.text.strip().lower()
    if not text:
        return None
    if text not in ("true", "false", "1", "0"):
        raise MetadataReadError(path, f"field {what} is not true or false")
    return text in ("true", "1")


def _aperture_um(path: Path, node: ET.Element | None, what: str) -> float | None:
    """EPU names an aperture by its size in µm (``50``), or ``None`` when none is in."""
    name = _text(node)
    if name is None or name.lower() in ("none", "open", "retracted"):
        return None
    try:
        size = float(name.removesuffix("um").removesuffix("µm").strip())
    except ValueError:
        return None  # a named (not sized) aperture: nothing to record as a size
    if not math.isfinite(size) or size <= 0:
        raise MetadataReadError(path, f"field {what} is not a positive size")
    return size


def _parse(path: Path, root: ET.Element) -> AcquisitionMetadata:
    custom = _key_values(_find(root, "CustomData"))
    scope = _find(root, "microscopeData")
    if scope is None:
        raise MetadataReadError(path, "required element microscopeData is missing")
    camera = _find(scope, "acquisition", "camera")
    camera_input = _key_values(_find(scope, "acquisition", "camera", "CameraSpecificInput"))
    optics = _find(scope, "optics")
    stage = _find(scope, "stage", "Position")

    def num(node: ET.Element | None, what: str, required: bool = False) -> float | None:
        return _number(path, node, what, required=required)

    def under(node: ET.Element | None, *names: str) -> ET.Element | None:
        return None if node is None else _find(node, *names)

    def whole(node: ET.Element | None, what: str) -> int | None:
        value = num(node, what)
        if value is not None and not value.is_integer():
            raise MetadataReadError(path, f"field {what} is not a whole number")
        return None if value is None else int(value)

    pixel_m = num(_find(root, "SpatialScale", "pixelSize", "x", "numericValue"), "pixelSize", True)
    voltage_v = num(_find(scope, "gun", "AccelerationVoltage"), "AccelerationVoltage", True)
    exposure_s = num(under(camera, "ExposureTime"), "ExposureTime", True)
    assert pixel_m is not None and voltage_v is not None and exposure_s is not None
    dose = num(custom.get("Dose"), "Dose")
    defocus_m = num(custom.get("AppliedDefocus"), "AppliedDefocus")
    fractions = under(camera_input.get("FractionationSettings"), "NumberOffractions")
    n_fractions = whole(fractions, "NumberOffractions")
    slit_in = _flag(path, under(optics, "EnergyFilter", "EnergySelectionSlitInserted"), "slit")
    slit_width = under(optics, "EnergyFilter", "EnergySelectionSlitWidth")
    slit = num(slit_width, "EnergySelectionSlitWidth")
    area = under(camera, "ReadoutArea")

    def stage_um(name: str) -> float | None:
        value = num(under(stage, name), f"stage Position/{name}")
        return None if value is None else value * 1e6

    alpha_rad = num(under(stage, "A"), "stage Position/A")
    counting = _flag(path, camera_input.get("ElectronCountingEnabled"), "ElectronCountingEnabled")
    software = " ".join(
        t
        for t in (
            _text(_find(scope, "core", "ApplicationSoftware")),
            _text(_find(scope, "core", "ApplicationSoftwareVersion")),
        )
        if t
    )
    dose_rate = num(custom.get("DoseRate"), "DoseRate")
    dose_on_camera = num(custom.get("DoseOnCamera"), "DoseOnCamera")
    try:
        return AcquisitionMetadata(
            source="epu",
            pixel_size_a=pixel_m * 1e10,
            voltage_kv=voltage_v / 1000.0,
            exposure_time_s=exposure_s,
            n_fractions=n_fractions,
            dose_e_per_a2=None if dose is None else dose * 1e-20,
            nominal_defocus_a=None if defocus_m is None else -defocus_m * 1e10,
            nominal_magnification=whole(
                under(optics, "TemMagnification", "NominalMagnification"), "NominalMagnification"
            ),
            binning=whole(under(camera, "Binning", "x"), "Binning/x") or 1,
            readout_width_px=whole(under(area, "width"), "ReadoutArea/width"),
            readout_height_px=whole(under(area, "height"), "ReadoutArea/height"),
            readout_offset_x_px=whole(under(area, "x"), "ReadoutArea/x"),
            readout_offset_y_px=whole(under(area, "y"), "ReadoutArea/y"),
            super_resolution_factor=whole(
                camera_input.get("SuperResolutionFactor"), "SuperResolutionFactor"
            )
            or 1,
            stage_x_um=stage_um("X"),
            stage_y_um=stage_um("Y"),
            stage_z_um=stage_um("Z"),
            stage_alpha_deg=None if alpha_rad is None else math.degrees(alpha_rad),
            energy_filter_slit_ev=slit if slit_in else None,
            energy_filter_slit_inserted=slit_in,
            phase_plate_used=bool(_flag(path, custom.get("PhasePlateUsed"), "PhasePlateUsed")),
            detector_name=_text(custom.get("DetectorCommercialName")),
            acquired_at=when(
                path, _find(scope, "acquisition", "acquisitionDateTime"), "acquisitionDateTime"
            ),
            c2_aperture_um=_aperture_um(path, custom.get("Aperture[C2].Name"), "Aperture[C2]"),
            objective_aperture_um=_aperture_um(
                path, custom.get("Aperture[OBJ].Name"), "Aperture[OBJ]"
            ),
            image_shift_x=num(under(optics, "ImageShift", "_x"), "ImageShift/_x"),
            image_shift_y=num(under(optics, "ImageShift", "_y"), "ImageShift/_y"),
            beam_shift_x=num(under(optics, "BeamShift", "_x"), "BeamShift/_x"),
            beam_shift_y=num(under(optics, "BeamShift", "_y"), "BeamShift/_y"),
            electron_counting=counting,
            software_version=software or None,
            dose_rate_e_per_px_s=dose_rate,
            dose_on_camera_e_per_px=dose_on_camera,
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise MetadataReadError(path, f"implausible value: {one_line(exc)}") from exc
