"""Parse the ``.xml`` EPU writes beside each movie into :class:`AcquisitionMetadata`.

The file is a serialised ``MicroscopeImage`` (XML namespaces of the .NET data-contract
serializer). Elements are found by local name, so namespace prefixes do not matter. SI units
in the file (metres, volts, electrons per m², radians) are converted to cryolive's units.
"""

from __future__ import annotations

import contextlib
import math
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from xml.parsers import expat

from cryolive.io._errors import MetadataReadError, check_file, one_line
from cryolive.io._metadata import AcquisitionMetadata

__all__ = ["AcquisitionMetadata", "read_epu_xml"]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(root: ET.Element, *names: str) -> ET.Element | None:
    """First descendant reached through direct children with these local names."""
    node: ET.Element | None = root
    for name in names:
        if node is None:
            return None
        node = next((c for c in node if _local(c.tag) == name), None)
    return node


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


def _refuse_declarations(path: Path, data: bytes) -> None:
    """Refuse a document with a DTD before anything is expanded: EPU writes none, and entity
    declarations are how XML bombs (billion laughs, quadratic blow-up) and external entities
    (reading local files) work. expat reports the DOCTYPE before it reads any entity."""

    def refuse(*_: object) -> None:
        raise MetadataReadError(path, "holds a DTD or entity declarations; EPU writes none")

    scanner = expat.ParserCreate()
    scanner.StartDoctypeDeclHandler = refuse
    scanner.EntityDeclHandler = refuse
    with contextlib.suppress(expat.ExpatError):  # not well-formed: the real parse says so
        scanner.Parse(data, True)


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
    check_file(path, MetadataReadError)
    if path.stat().st_size > MAX_XML_BYTES:
        raise MetadataReadError(path, f"larger than {MAX_XML_BYTES} bytes: not EPU metadata")
    data = path.read_bytes()
    _refuse_declarations(path, data)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise MetadataReadError(path, f"not well-formed XML ({exc}); cut short?") from exc
    if _local(root.tag) != "MicroscopeImage":
        raise MetadataReadError(path, "the root element is not MicroscopeImage")
    return _parse(path, root)


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


def _text(node: ET.Element | None) -> str | None:
    text = "" if node is None or node.text is None else node.text.strip()
    return text or None


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


def _when(path: Path, node: ET.Element | None) -> datetime | None:
    """``acquisitionDateTime``: ISO 8601 with the offset EPU writes (``+00:00``: EPU 3.x writes
    UTC). .NET writes seven fractional digits; Python keeps six. A value without an offset
    stays naive: its zone is not known."""
    text = _text(node)
    if text is None:
        return None
    fraction = re.fullmatch(r"(.*T[0-9:]+\.)(\d+)(.*)", text)
    if fraction is not None:  # at most 6 fractional digits, whatever the Python version
        text = fraction[1] + fraction[2][:6].ljust(6, "0") + fraction[3]
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise MetadataReadError(path, "field acquisitionDateTime is not a date") from exc


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
            acquired_at=_when(path, _find(scope, "acquisition", "acquisitionDateTime")),
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
