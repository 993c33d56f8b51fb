"""Parse the ``.xml`` EPU writes beside each movie into :class:`AcquisitionMetadata`.

The file is a serialised ``MicroscopeImage`` (XML namespaces of the .NET data-contract
serializer). Elements are found by local name, so namespace prefixes do not matter. SI units
in the file (metres, volts, electrons per m², radians) are converted to cryolive's units.
"""

from __future__ import annotations

import contextlib
import math
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
        Pixel size (Å), voltage (kV), exposure (s), fractions, dose (e/Å²), nominal defocus
        (Å, positive underfocus), magnification, binning, readout area (px), stage (µm, deg).

    Raises
    ------
    MetadataReadError
        Missing, empty, unreadable, not XML (e.g. cut short while being written), or a
        required field (pixel size, voltage, exposure time) is absent or not a number.
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


def _parse(path: Path, root: ET.Element) -> AcquisitionMetadata:
    custom = _key_values(_find(root, "CustomData"))
    scope = _find(root, "microscopeData")
    if scope is None:
        raise MetadataReadError(path, "required element microscopeData is missing")
    camera = _find(scope, "acquisition", "camera")
    camera_input = _key_values(_find(camera, "CameraSpecificInput") if camera else None)
    optics = _find(scope, "optics")
    stage = _find(scope, "stage", "Position")

    def num(node: ET.Element | None, what: str, required: bool = False) -> float | None:
        return _number(path, node, what, required=required)

    pixel_m = num(_find(root, "SpatialScale", "pixelSize", "x", "numericValue"), "pixelSize", True)
    voltage_v = num(_find(scope, "gun", "AccelerationVoltage"), "AccelerationVoltage", True)
    exposure_s = num(_find(camera, "ExposureTime") if camera else None, "ExposureTime", True)
    assert pixel_m is not None and voltage_v is not None and exposure_s is not None
    dose = num(custom.get("Dose"), "Dose")
    defocus_m = num(custom.get("AppliedDefocus"), "AppliedDefocus")
    fractions_node = camera_input.get("FractionationSettings")
    n_fractions = num(_find(fractions_node, "NumberOffractions") if fractions_node else None, "n")
    slit_in = _find(optics, "EnergyFilter", "EnergySelectionSlitInserted") if optics else None
    slit = _find(optics, "EnergyFilter", "EnergySelectionSlitWidth") if optics else None
    mag = _find(optics, "TemMagnification", "NominalMagnification") if optics else None
    area = _find(camera, "ReadoutArea") if camera else None
    binning = _find(camera, "Binning", "x") if camera else None
    when = _find(scope, "acquisition", "acquisitionDateTime")
    detector = custom.get("DetectorCommercialName")
    phase_plate = custom.get("PhasePlateUsed")

    def stage_um(name: str) -> float | None:
        value = num(_find(stage, name) if stage is not None else None, f"stage {name}")
        return None if value is None else value * 1e6

    alpha_rad = num(_find(stage, "A") if stage is not None else None, "stage A")
    superres = num(camera_input.get("SuperResolutionFactor"), "SuperResolutionFactor")
    try:
        when_text = (when.text or "").strip() if when is not None else ""
        acquired = datetime.fromisoformat(when_text) if when_text else None
    except ValueError as exc:
        raise MetadataReadError(path, "acquisitionDateTime is not a date") from exc
    try:
        return AcquisitionMetadata(
            source="epu",
            pixel_size_a=pixel_m * 1e10,
            voltage_kv=voltage_v / 1000.0,
            exposure_time_s=exposure_s,
            n_fractions=None if n_fractions is None else int(n_fractions),
            dose_e_per_a2=None if dose is None else dose * 1e-20,
            nominal_defocus_a=None if defocus_m is None else -defocus_m * 1e10,
            nominal_magnification=_int_or_none(num(mag, "NominalMagnification")),
            binning=int(num(binning, "Binning") or 1),
            readout_width_px=_int_or_none(num(_find(area, "width") if area else None, "width")),
            readout_height_px=_int_or_none(num(_find(area, "height") if area else None, "h")),
            super_resolution_factor=int(superres or 1),
            stage_x_um=stage_um("X"),
            stage_y_um=stage_um("Y"),
            stage_z_um=stage_um("Z"),
            stage_alpha_deg=None if alpha_rad is None else math.degrees(alpha_rad),
            energy_filter_slit_ev=(
                num(slit, "EnergySelectionSlitWidth")
                if slit_in is not None and (slit_in.text or "").strip() == "true"
                else None
            ),
            phase_plate_used=phase_plate is not None and (phase_plate.text or "").strip() == "true",
            detector_name=None if detector is None else (detector.text or "").strip() or None,
            acquired_at=acquired,
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise MetadataReadError(path, f"implausible value: {one_line(exc)}") from exc


def _int_or_none(value: float | None) -> int | None:
    return None if value is None else int(value)
