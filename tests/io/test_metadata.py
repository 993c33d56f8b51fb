"""EPU .xml and SerialEM .mdoc parsing, on EPU's own files and on broken ones."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cryolive.io import MetadataReadError
from cryolive.io.epu import read_epu_xml
from cryolive.io.mdoc import read_mdoc
from cryolive.simulate._layout import ImageRecord, epu_image_xml, serialem_mdoc

# In CI the shared folder lies beside the repository, as /work/shared does beside a worktree.
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
EXAMPLE = SHARED / "data" / "epu-example" / "Images-Disc1" / "GridSquare_8999138"
REAL_MOVIE_XML = EXAMPLE / "Data" / "FoilHole_9015883_Data_9017347_6_20250108_154915.xml"


@pytest.fixture
def real_xml(need_service: Callable[[str, str], None]) -> Path:
    """The EPU example beside the repository: skipped locally without it, a failure in CI."""
    if not REAL_MOVIE_XML.is_file():
        need_service("shared EPU reference data", f"not at {REAL_MOVIE_XML}")
    return REAL_MOVIE_XML


def test_real_epu_movie_xml(real_xml: Path) -> None:
    meta = read_epu_xml(real_xml)
    assert meta.pixel_size_a == pytest.approx(1.0559, abs=1e-4)
    assert meta.voltage_kv == 300
    assert meta.nominal_magnification == 165000
    assert meta.exposure_time_s == pytest.approx(0.89)
    assert meta.dose_e_per_a2 == pytest.approx(14.41, abs=0.01)
    assert meta.n_fractions == 50
    assert meta.nominal_defocus_a == pytest.approx(27000)  # EPU's -2.7 µm is underfocus
    assert (meta.binning, meta.readout_width_px, meta.readout_height_px) == (2, 2880, 2046)
    assert meta.super_resolution_factor == 2
    assert meta.energy_filter_slit_ev == 20
    assert meta.detector_name == "BioQuantum K3"
    assert meta.stage_x_um == pytest.approx(-97.152, abs=1e-3)
    assert meta.acquired_at == datetime(2025, 1, 8, 15, 49, 18, 115828, tzinfo=UTC)


def test_real_grid_square_and_foil_hole_xml_parse(real_xml: Path) -> None:
    square = read_epu_xml(next(EXAMPLE.glob("GridSquare_*.xml")))
    assert square.nominal_magnification == 470
    hole = read_epu_xml(next((EXAMPLE / "FoilHoles").glob("*.xml")))
    assert hole.nominal_magnification == 11500


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.95])
def test_real_xml_cut_short_is_refused(real_xml: Path, tmp_path: Path, keep: float) -> None:
    text = real_xml.read_bytes()
    cut = tmp_path / "cut.xml"
    cut.write_bytes(text[: int(len(text) * keep)])
    with pytest.raises(MetadataReadError, match="not well-formed XML"):
        read_epu_xml(cut)


def test_broken_xml_files(real_xml: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.xml").write_bytes(b"")
    with pytest.raises(MetadataReadError, match="zero-byte"):
        read_epu_xml(tmp_path / "empty.xml")
    with pytest.raises(MetadataReadError, match="no such file"):
        read_epu_xml(tmp_path / "absent.xml")
    (tmp_path / "other.xml").write_text("<Atlas><x>1</x></Atlas>")
    with pytest.raises(MetadataReadError, match="not MicroscopeImage"):
        read_epu_xml(tmp_path / "other.xml")
    text = real_xml.read_text()
    no_pixel = text.replace("<pixelSize>", "<notPixelSize>").replace(
        "</pixelSize>", "</notPixelSize>"
    )
    (tmp_path / "nopix.xml").write_text(no_pixel)
    with pytest.raises(MetadataReadError, match="pixelSize is missing"):
        read_epu_xml(tmp_path / "nopix.xml")
    bad_volt = text.replace("<AccelerationVoltage>300000<", "<AccelerationVoltage>high<")
    (tmp_path / "volt.xml").write_text(bad_volt)
    with pytest.raises(MetadataReadError, match="AccelerationVoltage is not a number"):
        read_epu_xml(tmp_path / "volt.xml")
    negative = text.replace("<ExposureTime>0.89<", "<ExposureTime>-1<")
    (tmp_path / "neg.xml").write_text(negative)
    with pytest.raises(MetadataReadError, match="implausible"):
        read_epu_xml(tmp_path / "neg.xml")


RECORD = ImageRecord(
    pixel_size_a=0.83, voltage_kv=200, exposure_time_s=2.5, dose_e_per_a2=45.0,
    nominal_defocus_a=15000, magnification=105000, n_fractions=40, shape_px=(4092, 5760),
    stage_um=(12.5, -3.0, 1.0), acquired_at=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),
    detector="BioQuantum K3",
)  # fmt: skip


def test_generated_xml_and_mdoc_round_trip(tmp_path: Path) -> None:
    (tmp_path / "m.xml").write_text(epu_image_xml(RECORD))
    (tmp_path / "m.tif.mdoc").write_text(serialem_mdoc(RECORD, image_file="m.tif"))
    for meta in (read_epu_xml(tmp_path / "m.xml"), read_mdoc(tmp_path / "m.tif.mdoc")):
        assert meta.pixel_size_a == pytest.approx(0.83)
        assert meta.voltage_kv == 200
        assert meta.exposure_time_s == 2.5
        assert meta.dose_e_per_a2 == pytest.approx(45.0)
        assert meta.nominal_defocus_a == pytest.approx(15000)
        assert meta.n_fractions == 40
        assert meta.nominal_magnification == 105000
        assert meta.stage_x_um == pytest.approx(12.5)
        assert meta.acquired_at is not None and meta.acquired_at.replace(tzinfo=None) == datetime(
            2026, 3, 4, 5, 6, 7
        )


def test_broken_mdoc_files(tmp_path: Path) -> None:
    good = serialem_mdoc(RECORD, image_file="m.tif")
    cases = {
        "nopix.mdoc": (good.replace("PixelSpacing", "Spacing"), "PixelSpacing is missing"),
        "badvolt.mdoc": (
            good.replace("Voltage = 200", "Voltage = lots"),
            "Voltage is not a number",
        ),
        "noeq.mdoc": ("PixelSpacing 1.0\n", "not 'Key = value'"),
        "date.mdoc": (good.replace("DateTime = ", "DateTime = yesterday "), "DateTime"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(MetadataReadError, match=message):
            read_mdoc(tmp_path / name)
    (tmp_path / "bin.mdoc").write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(MetadataReadError, match="not a text mdoc"):
        read_mdoc(tmp_path / "bin.mdoc")
