"""Every field read from EPU 3.9's own acquisition XML, with the value read off the file by eye.

The files are ``../shared/data/epu-example`` (a real K3 session). Each expected value below
cites the XML element it comes from, so a reader that drops or mis-scales a field fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cryolive.io import MetadataReadError
from cryolive.io.epu import read_epu_xml

from .test_metadata import EXAMPLE, REAL_MOVIE_XML

SECOND_XML = EXAMPLE / "Data" / "FoilHole_9015883_Data_9017354_6_20250108_154918.xml"
HOLE_XML = EXAMPLE / "FoilHoles" / "FoilHole_9015889_20250108_154715.xml"
SQUARE_XML = EXAMPLE / "GridSquare_20250108_151151.xml"


@pytest.fixture
def example(need_service: Callable[[str, str], None]) -> Path:
    if not REAL_MOVIE_XML.is_file():
        need_service("shared EPU reference data", f"not at {REAL_MOVIE_XML}")
    return REAL_MOVIE_XML


def test_every_field_of_a_real_k3_acquisition(example: Path) -> None:
    meta = read_epu_xml(example)
    assert meta.source == "epu"
    # SpatialScale/pixelSize/x/numericValue = 1.0558814239614023E-10 (m)
    assert meta.pixel_size_a == pytest.approx(1.0558814239614023)
    # microscopeData/gun/AccelerationVoltage = 300000 (V)
    assert meta.voltage_kv == 300.0
    # microscopeData/acquisition/camera/ExposureTime = 0.89 (s)
    assert meta.exposure_time_s == pytest.approx(0.89)
    # CameraSpecificInput FractionationSettings/NumberOffractions = 50
    assert meta.n_fractions == 50
    # CustomData Dose = 1.4410836806690226E+21 (e/m²) -> 14.41 e/Å²
    assert meta.dose_e_per_a2 == pytest.approx(14.410836806690226)
    # CustomData DoseRate = 1.11751258756987 (e per unbinned camera pixel per s)
    assert meta.dose_rate_e_per_px_s == pytest.approx(1.11751258756987)
    # CustomData DoseOnCamera = 16.066434172649398 (e per movie pixel = Dose * pixel²)
    assert meta.dose_on_camera_e_per_px == pytest.approx(16.066434172649398)
    assert meta.dose_on_camera_e_per_px == pytest.approx(
        meta.dose_e_per_a2 * meta.pixel_size_a**2, rel=1e-9
    )
    # CustomData AppliedDefocus = -2.7E-06 (m, negative underfocus) -> +27000 Å
    assert meta.nominal_defocus_a == pytest.approx(27000.0)
    # optics/TemMagnification/NominalMagnification = 165000
    assert meta.nominal_magnification == 165000
    # camera/Binning/a:x = 2; CameraSpecificInput SuperResolutionFactor = 2
    assert (meta.binning, meta.super_resolution_factor) == (2, 2)
    # camera/ReadoutArea: a:width 2880, a:height 2046, a:x 0, a:y 0
    assert (meta.readout_width_px, meta.readout_height_px) == (2880, 2046)
    assert (meta.readout_offset_x_px, meta.readout_offset_y_px) == (0, 0)
    # stage/Position X = -9.7152028000000058E-05, Y = -0.00015272184799999987,
    # Z = 8.5710844035200026E-05 (m); A = -0.00043148193122001131 (rad)
    assert meta.stage_x_um == pytest.approx(-97.152028)
    assert meta.stage_y_um == pytest.approx(-152.721848)
    assert meta.stage_z_um == pytest.approx(85.710844035)
    assert meta.stage_alpha_deg == pytest.approx(-0.0247220936, abs=1e-9)
    # optics/EnergyFilter: EnergySelectionSlitInserted true, EnergySelectionSlitWidth 20 (eV)
    assert meta.energy_filter_slit_inserted is True
    assert meta.energy_filter_slit_ev == 20.0
    # CustomData Aperture[C2].Name = 50, Aperture[OBJ].Name = 100 (µm)
    assert meta.c2_aperture_um == 50.0
    assert meta.objective_aperture_um == 100.0
    # CustomData PhasePlateUsed = false; DetectorCommercialName = BioQuantum K3
    assert meta.phase_plate_used is False
    assert meta.detector_name == "BioQuantum K3"
    # CameraSpecificInput ElectronCountingEnabled = true
    assert meta.electron_counting is True
    # optics/ImageShift a:_x 0, a:_y 0; optics/BeamShift a:_x 0.0608…, a:_y -0.1542…
    assert (meta.image_shift_x, meta.image_shift_y) == (0.0, 0.0)
    assert meta.beam_shift_x == pytest.approx(0.060867246240377426)
    assert meta.beam_shift_y == pytest.approx(-0.15422800183296204)
    # core/ApplicationSoftware EPU, ApplicationSoftwareVersion 3.9.1.8206
    assert meta.software_version == "EPU 3.9.1.8206"
    # acquisition/acquisitionDateTime = 2025-01-08T15:49:18.1158288+00:00: EPU writes UTC with
    # its offset; the zone is kept (seven .NET digits cut to Python's six)
    assert meta.acquired_at == datetime(2025, 1, 8, 15, 49, 18, 115828, tzinfo=UTC)
    assert meta.acquired_at is not None and meta.acquired_at.utcoffset() == timedelta(0)
    # nothing in an EPU XML says the uncropped size or the dose per fraction
    assert meta.uncropped_width_px is None and meta.frame_dose_e_per_a2 is None


def test_the_second_acquisition_differs_where_its_file_does(example: Path) -> None:
    first, second = read_epu_xml(example), read_epu_xml(SECOND_XML)
    # Dose = 1.4557753315079335E+21; DoseRate = 1.12890547541178; acquired 15:49:21.1049704
    assert second.dose_e_per_a2 == pytest.approx(14.557753315079335)
    assert second.dose_rate_e_per_px_s == pytest.approx(1.12890547541178)
    assert second.acquired_at == datetime(2025, 1, 8, 15, 49, 21, 104970, tzinfo=UTC)
    # stage/Position/X = -9.7153001300000062E-05 m
    assert second.stage_x_um == pytest.approx(-97.1530013)
    assert first.beam_shift_x != second.beam_shift_x


def test_foil_hole_and_grid_square_images(example: Path) -> None:
    hole = read_epu_xml(HOLE_XML)
    # EnergySelectionSlitInserted false: no slit in effect, and the reader says so
    assert hole.energy_filter_slit_inserted is False and hole.energy_filter_slit_ev is None
    # no FractionationSettings in a search image; SuperResolutionFactor absent -> 1
    assert hole.n_fractions is None and hole.super_resolution_factor == 1
    # DoseRate 57.4322726930573 = Dose (0.8576 e/Å²) * the unbinned pixel (16.359/2 Å)² / 1 s
    assert hole.dose_rate_e_per_px_s == pytest.approx(57.4322726930573)
    assert hole.dose_rate_e_per_px_s == pytest.approx(
        hole.dose_e_per_a2 * (hole.pixel_size_a / hole.binning) ** 2, rel=2e-3
    )
    square = read_epu_xml(SQUARE_XML)
    # Aperture[OBJ].Name = None at the atlas magnification: no objective aperture
    assert square.objective_aperture_um is None and square.c2_aperture_um == 50.0
    assert square.nominal_magnification == 470


def _variant(example: Path, tmp_path: Path, old: str, new: str) -> Path:
    text = example.read_text(encoding="utf-8")
    assert old in text, old
    out = tmp_path / "variant.xml"
    out.write_text(text.replace(old, new, 1), encoding="utf-8")
    return out


def test_the_zone_written_is_the_zone_kept(example: Path, tmp_path: Path) -> None:
    stamp = "2025-01-08T15:49:18.1158288+00:00"
    local = read_epu_xml(_variant(example, tmp_path, stamp, "2025-01-08T16:49:18.5+01:00"))
    assert local.acquired_at is not None
    assert local.acquired_at.utcoffset() == timedelta(hours=1)
    assert local.acquired_at == datetime(2025, 1, 8, 15, 49, 18, 500000, tzinfo=UTC)
    zulu = read_epu_xml(_variant(example, tmp_path, stamp, "2025-01-08T15:49:18Z"))
    assert zulu.acquired_at == datetime(2025, 1, 8, 15, 49, 18, tzinfo=UTC)
    naive = read_epu_xml(_variant(example, tmp_path, stamp, "2025-01-08T15:49:18.25"))
    assert naive.acquired_at == datetime(2025, 1, 8, 15, 49, 18, 250000)
    assert naive.acquired_at is not None and naive.acquired_at.tzinfo is None


def test_slit_out_and_no_c2_aperture(example: Path, tmp_path: Path) -> None:
    path = _variant(
        example,
        tmp_path,
        "<EnergySelectionSlitInserted>true<",
        "<EnergySelectionSlitInserted>false<",
    )
    meta = read_epu_xml(path)
    assert meta.energy_filter_slit_inserted is False and meta.energy_filter_slit_ev is None
    c2 = 'XMLSchema">50</a:Value>'
    meta = read_epu_xml(_variant(example, tmp_path, c2, 'XMLSchema">None</a:Value>'))
    assert meta.c2_aperture_um is None


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("<a:x>2</a:x>", "<a:x>two</a:x>", "Binning/x is not a number"),
        ("<a:x>2</a:x>", "<a:x>1.5</a:x>", "Binning/x is not a whole number"),
        ("<a:width>2880<", "<a:width>wide<", "ReadoutArea/width is not a number"),
        ("<b:NumberOffractions>50<", "<b:NumberOffractions>5e0x<", "NumberOffractions"),
        ("<EnergySelectionSlitInserted>true<", "<EnergySelectionSlitInserted>yes<", "slit"),
        ("<EnergySelectionSlitWidth>20<", "<EnergySelectionSlitWidth>NaN<", "not finite"),
        ("+00:00</acquisitionDateTime>", "+25:00</acquisitionDateTime>", "acquisitionDateTime"),
        (">1.11751258756987<", ">-3<", "dose_rate_e_per_px_s"),
        ('XMLSchema">50</a:Value>', 'XMLSchema">-50</a:Value>', "Aperture\\[C2\\]"),
        ("<X>-9.7152028000000058E-05</X>", "<X>west</X>", "stage Position/X"),
        ("<AccelerationVoltage>300000<", "<AccelerationVoltage><", "AccelerationVoltage is"),
    ],
)
def test_wrong_types_name_the_file_and_the_field(
    example: Path, tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = _variant(example, tmp_path, old, new)
    with pytest.raises(MetadataReadError, match=message) as caught:
        read_epu_xml(path)
    assert str(caught.value).startswith(str(path))


def test_missing_optional_parts_leave_fields_empty(example: Path, tmp_path: Path) -> None:
    text = example.read_text(encoding="utf-8")
    start, end = text.index("<CustomData"), text.index("</CustomData>") + len("</CustomData>")
    path = tmp_path / "bare.xml"
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    meta = read_epu_xml(path)
    assert meta.dose_e_per_a2 is None and meta.nominal_defocus_a is None
    assert meta.c2_aperture_um is None and meta.dose_rate_e_per_px_s is None
    assert meta.pixel_size_a == pytest.approx(1.0558814239614023)  # the required ones stay


def test_byte_order_mark_and_utf16_are_read(example: Path, tmp_path: Path) -> None:
    """.NET may write a UTF-8 byte order mark, or UTF-16 with its declaration."""
    (tmp_path / "bom.xml").write_bytes(b"\xef\xbb\xbf" + example.read_bytes())
    assert read_epu_xml(tmp_path / "bom.xml").voltage_kv == 300
    text = '<?xml version="1.0" encoding="utf-16"?>' + example.read_text(encoding="utf-8")
    (tmp_path / "u16.xml").write_bytes(text.encode("utf-16"))
    assert read_epu_xml(tmp_path / "u16.xml").nominal_defocus_a == pytest.approx(27000)


def test_non_utf8_and_hostile_xml(example: Path, tmp_path: Path) -> None:
    raw = example.read_bytes().replace(b"<name>Empty</name>", b"<name>\xff\xfe\x81</name>")
    (tmp_path / "latin.xml").write_bytes(raw)
    with pytest.raises(MetadataReadError, match="not well-formed XML"):
        read_epu_xml(tmp_path / "latin.xml")
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><MicroscopeImage>&b;</MicroscopeImage>'
    )
    (tmp_path / "bomb.xml").write_text(bomb)
    with pytest.raises(MetadataReadError, match="DTD or entity"):
        read_epu_xml(tmp_path / "bomb.xml")
    external = (
        '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<MicroscopeImage>&x;</MicroscopeImage>"
    )
    (tmp_path / "xxe.xml").write_text(external)
    with pytest.raises(MetadataReadError, match="DTD or entity"):
        read_epu_xml(tmp_path / "xxe.xml")
