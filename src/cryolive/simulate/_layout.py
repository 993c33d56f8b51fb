"""Metadata files in the layouts acquisition software writes: EPU (``.xml``, ``.dm``) and
SerialEM (``.mdoc``). Only the structure and the fields a watcher reads are reproduced."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape

_NS = 'xmlns="http://schemas.datacontract.org/2004/07/Fei.SharedObjects" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"'
_ARR = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
_XS = "http://www.w3.org/2001/XMLSchema"
_UNIT = (
    '<unit xmlns:a="http://schemas.datacontract.org/2004/07/Fei.Common.Types">'
    "<a:_x003C_PrefixExponent_x003E_k__BackingField>1</a:_x003C_PrefixExponent_x003E_k__BackingField>"
    "<a:_x003C_Symbol_x003E_k__BackingField>m</a:_x003C_Symbol_x003E_k__BackingField></unit>"
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


def _kv(key: str, kind: str, value: str) -> str:
    return (
        f"<a:KeyValueOfstringanyType><a:Key>{escape(key)}</a:Key>"
        f'<a:Value i:type="b:{kind}" xmlns:b="{_XS}">{escape(value)}</a:Value>'
        "</a:KeyValueOfstringanyType>"
    )


def epu_image_xml(record: ImageRecord) -> str:
    """The ``.xml`` EPU writes beside an image (grid square, foil hole or movie)."""
    r = record
    ny, nx = r.shape_px
    dose_si = r.dose_e_per_a2 * 1e20
    custom = "".join(
        [
            _kv("DoseOnCamera", "double", repr(r.dose_e_per_a2 * r.pixel_size_a**2)),
            _kv("Detectors[EF-CCD].CommercialName", "string", r.detector),
            _kv("Detectors[EF-CCD].ElectronCounted", "boolean", "true"),
            _kv(
                "DoseRate", "double", repr(r.dose_e_per_a2 * r.pixel_size_a**2 / r.exposure_time_s)
            ),
            _kv("Dose", "double", repr(dose_si)),
            _kv("PhasePlateUsed", "boolean", str(r.phase_plate).lower()),
            _kv("DetectorCommercialName", "string", r.detector),
            _kv("AppliedDefocus", "double", repr(-r.nominal_defocus_a * 1e-10)),
        ]
    )
    camera_input = "".join(
        [
            _kv("SuperResolutionFactor", "long", "1"),
            "<a:KeyValueOfstringanyType><a:Key>FractionationSettings</a:Key>"
            '<a:Value i:type="b:EquidistantFractionation" '
            'xmlns:b="http://schemas.datacontract.org/2004/07/Fei.Applications.Common.Omp.Interface">'
            f"<b:NumberOffractions>{r.n_fractions}</b:NumberOffractions></a:Value></a:KeyValueOfstringanyType>",
            _kv("ElectronCountingEnabled", "boolean", "true"),
        ]
    )
    pixel_m = repr(r.pixel_size_a * 1e-10)
    x, y, z = (v * 1e-6 for v in r.stage_um)
    return f"""<MicroscopeImage {_NS}>
  <name>Empty</name>
  <uniqueID>{uuid.uuid5(uuid.NAMESPACE_URL, r.acquired_at.isoformat())}</uniqueID>
  <CustomData xmlns:a="{_ARR}">{custom}</CustomData>
  <SpatialScale>
    <pixelSize>
      <x><numericValue>{pixel_m}</numericValue>{_UNIT}</x>
      <y><numericValue>{pixel_m}</numericValue>{_UNIT}</y>
    </pixelSize>
  </SpatialScale>
  <microscopeData>
    <acquisition>
      <acquisitionDateTime>{r.acquired_at.isoformat()}</acquisitionDateTime>
      <camera>
        <Binning xmlns:a="http://schemas.datacontract.org/2004/07/System.Drawing"><a:x>1</a:x><a:y>1</a:y></Binning>
        <CameraSpecificInput xmlns:a="{_ARR}">{camera_input}</CameraSpecificInput>
        <ExposureTime>{r.exposure_time_s!r}</ExposureTime>
        <Name>EF-CCD</Name>
        <ReadoutArea xmlns:a="http://schemas.datacontract.org/2004/07/System.Drawing"><a:height>{ny}</a:height><a:width>{nx}</a:width><a:x>0</a:x><a:y>0</a:y></ReadoutArea>
      </camera>
    </acquisition>
    <core><ApplicationSoftware>EPU</ApplicationSoftware><ApplicationSoftwareVersion>3.9.1.8206</ApplicationSoftwareVersion></core>
    <gun><AccelerationVoltage>{r.voltage_kv * 1000:.0f}</AccelerationVoltage></gun>
    <optics>
      <EnergyFilter><EnergySelectionSlitInserted>true</EnergySelectionSlitInserted><EnergySelectionSlitWidth>20</EnergySelectionSlitWidth></EnergyFilter>
      <TemMagnification><NominalMagnification>{r.magnification}</NominalMagnification></TemMagnification>
    </optics>
    <stage><Position><A>0</A><B>0</B><X>{x!r}</X><Y>{y!r}</Y><Z>{z!r}</Z></Position></stage>
  </microscopeData>
</MicroscopeImage>
"""


def epu_session_dm(
    *, name: str, started: datetime, grid_squares: list[int], output_format: str
) -> str:
    """A minimal ``EpuSession.dm``: session name, start, output format, grid squares."""
    squares = "".join(
        f"<b:KeyValuePairOfintSerializedReferenceOfGridSquareXml><b:key>{g}</b:key>"
        f"<b:value><c:FileName>Metadata\\GridSquare_{g}.dm</c:FileName></b:value>"
        "</b:KeyValuePairOfintSerializedReferenceOfGridSquareXml>"
        for g in grid_squares
    )
    return f"""<?xml version="1.0"?>
<EpuSessionXml xmlns="http://schemas.datacontract.org/2004/07/Applications.Epu.Persistence" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <DoseFractionsOutputFormat>{escape(output_format)}</DoseFractionsOutputFormat>
  <Name>{escape(name)}</Name>
  <Samples><_items><SampleXml>
    <GridSquares xmlns:b="{_ARR}" xmlns:c="http://schemas.datacontract.org/2004/07/Applications.Epu.Persistence">{squares}</GridSquares>
  </SampleXml></_items></Samples>
  <StartDateTime>{started.isoformat()}</StartDateTime>
</EpuSessionXml>
"""


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
