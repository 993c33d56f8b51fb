"""Metadata files in the layouts acquisition software writes: EPU (``.xml``) and SerialEM
(``.mdoc``). The element layout follows real EPU 3.9 files (``MicroscopeImage``, written by
the .NET data-contract serializer); the session, atlas and grid-square ``.dm`` files are in
``_epu_session``."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from cryolive.simulate._xml import (
    NS_ARRAYS,
    NS_COMMON,
    NS_DRAWING,
    NS_FEI_TYPES,
    NS_MEDIA,
    NS_SHARED,
    NS_XS,
    NS_XSI,
    dotnet_time,
    nil,
    sub,
    to_text,
)


@dataclass(frozen=True)
class ImageRecord:
    """What an EPU ``MicroscopeImage`` records; SI units as EPU writes them."""

    pixel_size_a: float
    voltage_kv: float
    exposure_time_s: float
    dose_e_per_a2: float
    nominal_defocus_a: float  # positive underfocus; written negative as EPU does
    magnification: int
    n_fractions: int
    shape_px: tuple[int, int]
    stage_um: tuple[float, float, float]
    acquired_at: datetime
    detector: str
    phase_plate: bool = False
    binning: int = 1
    super_resolution: int = 1
    c2_aperture_um: int = 50
    slit_width_ev: float | None = 20.0  # None: the energy filter slit is out
    image_shift: tuple[float, float] = (0.0, 0.0)
    fractionated: bool = True  # False for survey images (grid square, foil hole)


def _key_value(parent: ET.Element, key: str, kind: str, value: object) -> None:
    pair = sub(parent, "a:KeyValueOfstringanyType")
    sub(pair, "a:Key", key)
    sub(pair, "a:Value", value, i__type=f"b:{kind}", xmlns__b=NS_XS)


def _xy(parent: ET.Element, tag: str, x: float = 0.0, y: float = 0.0) -> None:
    node = sub(parent, tag, xmlns__a=NS_FEI_TYPES)
    sub(node, "a:_x", x)
    sub(node, "a:_y", y)


def _unit(parent: ET.Element) -> None:
    unit = sub(parent, "unit", xmlns__a=NS_COMMON)
    sub(unit, "a:_x003C_PrefixExponent_x003E_k__BackingField", 1)
    sub(unit, "a:_x003C_Symbol_x003E_k__BackingField", "m")


def _custom_data(root: ET.Element, r: ImageRecord) -> None:
    custom = sub(root, "CustomData", xmlns__a=NS_ARRAYS)
    dose_on_camera = r.dose_e_per_a2 * r.pixel_size_a**2
    _key_value(custom, "DoseOnCamera", "double", dose_on_camera)
    for name, value in (("C1", "2000"), ("C2", str(r.c2_aperture_um)), ("C3", "None")):
        _key_value(custom, f"Aperture[{name}].Name", "string", value)
    _key_value(custom, "Aperture[OBJ].Name", "string", "100")
    _key_value(custom, "Aperture[SA].Name", "string", "None")
    _key_value(custom, "StemMagnification", "boolean", False)
    _key_value(custom, "Detectors[EF-CCD].CommercialName", "string", r.detector)
    _key_value(custom, "Detectors[EF-CCD].ElectronCounted", "boolean", True)
    _key_value(custom, "DoseRate", "double", dose_on_camera / r.exposure_time_s)
    _key_value(custom, "IlluminationIntensity", "double", 0)
    _key_value(custom, "Dose", "double", r.dose_e_per_a2 * 1e20)
    _key_value(custom, "PhasePlateUsed", "boolean", r.phase_plate)
    _key_value(custom, "BinaryResult.Detector", "string", "EF-CCD")
    _key_value(custom, "DetectorCommercialName", "string", r.detector)
    _key_value(custom, "AppliedDefocus", "double", -r.nominal_defocus_a * 1e-10)


def _camera(acquisition: ET.Element, r: ImageRecord) -> None:
    camera = sub(acquisition, "camera")
    binning = sub(camera, "Binning", xmlns__a=NS_DRAWING)
    sub(binning, "a:x", r.binning)
    sub(binning, "a:y", r.binning)
    sub(camera, "CameraLocation", "EnergyFilter")
    given = sub(camera, "CameraSpecificInput", xmlns__a=NS_ARRAYS)
    _key_value(given, "AlignIntegratedImageEnabled", "boolean", False)
    _key_value(given, "SuperResolutionFactor", "long", r.super_resolution)
    if r.fractionated:
        pair = sub(given, "a:KeyValueOfstringanyType")
        sub(pair, "a:Key", "FractionationSettings")
        fractions = sub(
            pair,
            "a:Value",
            i__type="b:EquidistantFractionation",
            xmlns__b="http://schemas.datacontract.org/2004/07/Fei.Applications.Common.Omp.Interface",
        )
        sub(fractions, "b:NumberOffractions", r.n_fractions)
    _key_value(given, "ElectronCountingEnabled", "boolean", True)
    _key_value(given, "ApplyDefinedShutter", "boolean", True)
    _key_value(given, "FixedReadoutArea", "string", "Full")
    sub(camera, "DarkGainCorrection", "None")
    sub(camera, "ExposureTime", float(r.exposure_time_s))
    sub(camera, "FixedReadoutArea", "Full")
    sub(camera, "Inserted", True)
    sub(camera, "Name", "EF-CCD")
    sub(camera, "PreExposurePauseTime", 0)
    sub(camera, "PreExposureSupported", False)
    sub(camera, "PreExposureTime", 0)
    area = sub(camera, "ReadoutArea", xmlns__a=NS_DRAWING)
    ny, nx = r.shape_px
    for name, value in (("height", ny), ("width", nx), ("x", 0), ("y", 0)):
        sub(area, f"a:{name}", value)
    sub(camera, "Shutter", "PreSpecimen")


def _optics(scope: ET.Element, r: ImageRecord) -> None:
    optics = sub(scope, "optics")
    nil(optics, "Apertures")
    nil(optics, "BeamConvergence")
    sub(optics, "BeamDiameter", 8.3e-07)
    _xy(optics, "BeamShift")
    _xy(optics, "BeamTilt")
    sub(optics, "Cameralength", 0)
    sub(optics, "ColumnOperatingMode", "TEM")
    sub(optics, "ColumnOperatingTemSubMode", "BrightField")
    _xy(optics, "CondenserStigmator")
    sub(optics, "Defocus", -r.nominal_defocus_a * 1e-10)
    sub(optics, "EFTEMOn", True)
    energy_filter = sub(optics, "EnergyFilter")
    sub(energy_filter, "EnergySelectionSlitInserted", r.slit_width_ev is not None)
    sub(energy_filter, "EnergySelectionSlitWidth", r.slit_width_ev or 20)
    sub(optics, "Focus", 0)
    sub(optics, "IlluminationMode", "Parallel")
    _xy(optics, "ImageShift", *r.image_shift)
    sub(optics, "ObjectiveLensMode", "HM" if r.magnification >= 10_000 else "LM")
    sub(optics, "ProbeMode", "NanoProbe" if r.magnification >= 10_000 else "MicroProbe")
    sub(optics, "ProjectorMode", "Imaging")
    sub(optics, "SpotIndex", 5)
    magnification = sub(optics, "TemMagnification")
    sub(magnification, "NominalMagnification", r.magnification)
    sub(optics, "XLModeOn", False)


def epu_image_xml(record: ImageRecord) -> str:
    """The ``.xml`` EPU writes beside an image (grid square, foil hole or acquisition).

    SI units as EPU writes them: metres, volts, seconds, electrons per m²; the applied
    defocus negative for underfocus; the acquisition time with its zone.
    """
    r = record
    root = ET.Element("MicroscopeImage", {"xmlns": NS_SHARED, "xmlns:i": NS_XSI})
    sub(root, "name", "Empty")
    sub(root, "uniqueID", str(uuid.uuid5(uuid.NAMESPACE_URL, r.acquired_at.isoformat())))
    _custom_data(root, r)
    nil(root, "IntensityScale")
    transform = sub(root, "ReferenceTransformation")
    matrix = sub(transform, "matrix", xmlns__a=NS_MEDIA)
    scale = r.pixel_size_a * 1e-10 / max(r.binning, 1)
    for name, value in (("_m11", -scale), ("_m12", 0.0), ("_m21", 0.0), ("_m22", scale)):
        sub(matrix, f"a:{name}", value)
    for name in ("_offsetX", "_offsetY", "_padding"):
        sub(matrix, f"a:{name}", 0)
    sub(matrix, "a:_type", "TRANSFORM_IS_UNKNOWN")
    _unit(transform)
    spatial = sub(root, "SpatialScale")
    for part, value in (("offset", 0), ("pixelSize", r.pixel_size_a * 1e-10)):
        holder = sub(spatial, part)
        for axis in ("x", "y"):
            node = sub(holder, axis)
            sub(node, "numericValue", value)
            _unit(node)
    scope = sub(root, "microscopeData")
    acquisition = sub(scope, "acquisition")
    sub(acquisition, "acquisitionDateTime", dotnet_time(r.acquired_at))
    sub(acquisition, "analyticalDetectors")
    _camera(acquisition, r)
    core = sub(scope, "core")
    sub(core, "ApplicationSoftware", "EPU")
    sub(core, "ApplicationSoftwareVersion", "3.9.1.8206")
    sub(core, "Guid", str(uuid.uuid5(uuid.NAMESPACE_DNS, r.acquired_at.isoformat())))
    gun = sub(scope, "gun")
    sub(gun, "AccelerationVoltage", r.voltage_kv * 1000)
    sub(gun, "ExtractorVoltage", 4250)
    sub(gun, "Sourcetype", "FieldEmission")
    instrument = sub(scope, "instrument")
    sub(instrument, "InstrumentModel", "TITAN-SIMULATED")
    _optics(scope, r)
    stage = sub(scope, "stage")
    sub(stage, "Holder", "Unspecified")
    position = sub(stage, "Position")
    sub(position, "A", 0)
    sub(position, "B", 0)
    for name, value in zip("XYZ", r.stage_um, strict=True):
        sub(position, name, value * 1e-6)
    sub(stage, "SampleLoader", "None")
    return to_text(root, declaration=False)


def serialem_mdoc(record: ImageRecord, *, image_file: str) -> str:
    """A SerialEM frame ``.mdoc`` for one movie."""
    r = record
    when = r.acquired_at.strftime("%d-%b-%y  %H:%M:%S")
    return (
        f"PixelSpacing = {r.pixel_size_a:.4f}\nVoltage = {r.voltage_kv:g}\n"
        f"ImageFile = {image_file}\nImageSize = {r.shape_px[1]} {r.shape_px[0]}\nDataMode = 0\n\n"
        "[FrameSet = 0]\nTiltAngle = 0.0\n"
        f"StagePosition = {r.stage_um[0]:.3f} {r.stage_um[1]:.3f}\n"
        f"StageZ = {r.stage_um[2]:.3f}\nMagnification = {r.magnification}\nBinning = 1\n"
        f"ExposureDose = {r.dose_e_per_a2:.4f}\nExposureTime = {r.exposure_time_s:g}\n"
        f"TargetDefocus = {-r.nominal_defocus_a / 1e4:.3f}\nNumSubFrames = {r.n_fractions}\n"
        f"CameraName = {r.detector}\nDateTime = {when}\nSubFramePath = {image_file}\n"
    )
