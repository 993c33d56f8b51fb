"""SerialEM ``.mdoc`` variants, written here as SerialEM lays them out: K3 super-resolution
(``Binning = 0.5``), title lines ``[T = …]``, frame-set and single-image sections, dose only
as ``FrameDosesAndNumber``, ``Defocus`` without ``TargetDefocus``, and broken ones."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from cryolive.io import MetadataReadError
from cryolive.io.mdoc import read_mdoc

K3_SUPERRES = """\
PixelSpacing = 0.4175
Voltage = 300
ImageFile = 20261206_00042.tif
ImageSize = 11520 8184
UncroppedSize = -11520 -8184
DataMode = 1

[T = SerialEM: Digitized on Krios 3                     06-Dec-26  19:37:58    ]

[T =     Tilt axis angle = 84.7, binning = 1  spot = 8  camera = 1]

[FrameSet = 0]
TiltAngle = 0.0021
StagePosition = 123.456 -78.9
StageZ = -12.5
Magnification = 105000
Intensity = 0.131
ExposureDose = 50.4
DoseRate = 14.2
PixelSpacing = 0.4175
SpotSize = 8
Defocus = -1.91
ImageShift = 0.512 -0.305
RotationAngle = -84.7
ExposureTime = 3.6
Binning = 0.5
CameraIndex = 1
MagIndex = 31
TargetDefocus = -1.6
DateTime = 06-Dec-26  19:38:01
FilterSlitAndLoss = 20 0
NumSubFrames = 60
FrameDosesAndNumber = 0.84 60
"""


def _write(tmp_path: Path, text: str, name: str = "m.tif.mdoc") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_k3_super_resolution_frame_set(tmp_path: Path) -> None:
    meta = read_mdoc(_write(tmp_path, K3_SUPERRES))
    assert meta.source == "serialem"
    # Binning = 0.5 is super-resolution, not refused; PixelSpacing is the super-res pixel
    assert (meta.binning, meta.super_resolution_factor) == (1, 2)
    assert meta.pixel_size_a == pytest.approx(0.4175)
    assert meta.voltage_kv == 300 and meta.exposure_time_s == pytest.approx(3.6)
    assert meta.n_fractions == 60
    assert meta.dose_e_per_a2 == pytest.approx(50.4)
    assert meta.frame_dose_e_per_a2 == pytest.approx(0.84)
    assert meta.dose_rate_e_per_px_s == pytest.approx(14.2)
    # TargetDefocus (-1.6 µm) wins over the lens reading Defocus (-1.91 µm)
    assert meta.nominal_defocus_a == pytest.approx(16000)
    assert meta.nominal_magnification == 105000
    assert (meta.stage_x_um, meta.stage_y_um, meta.stage_z_um) == (123.456, -78.9, -12.5)
    assert meta.stage_alpha_deg == pytest.approx(0.0021)
    assert (meta.image_shift_x, meta.image_shift_y) == (0.512, -0.305)
    assert meta.energy_filter_slit_ev == 20 and meta.energy_filter_slit_inserted is True
    assert (meta.readout_width_px, meta.readout_height_px) == (11520, 8184)
    assert (meta.uncropped_width_px, meta.uncropped_height_px) == (11520, 8184)
    # the section's DateTime, in the microscope PC's local time: no zone is invented
    assert meta.acquired_at == datetime(2026, 12, 6, 19, 38, 1)
    assert meta.acquired_at is not None and meta.acquired_at.tzinfo is None


def test_section_values_win_over_global_ones(tmp_path: Path) -> None:
    text = K3_SUPERRES.replace("PixelSpacing = 0.4175\nSpotSize", "PixelSpacing = 0.42\nSpotSize")
    assert read_mdoc(_write(tmp_path, text)).pixel_size_a == pytest.approx(0.42)


def test_titles_anywhere_before_the_first_section(tmp_path: Path) -> None:
    text = (
        "[T = SerialEM: Digitized on Glacios   06-Dec-26  08:00:00 ]\n"
        "PixelSpacing = 1.1\n[T = a second title = with an equals sign]\nVoltage = 200\n"
        "[T = third]\n\n[ZValue = 0]\nExposureTime = 1.5\nBinning = 2\n"
        "[T = a title after the section is skipped too]\nMagnification = 73000\n"
    )
    meta = read_mdoc(_write(tmp_path, text))
    assert (meta.pixel_size_a, meta.voltage_kv, meta.exposure_time_s) == (1.1, 200, 1.5)
    assert (meta.binning, meta.super_resolution_factor) == (2, 1)
    assert meta.nominal_magnification == 73000


def test_only_the_first_section_describes_the_movie(tmp_path: Path) -> None:
    text = (
        "PixelSpacing = 1.0\nVoltage = 300\n\n[ZValue = 0]\nExposureTime = 2\nTargetDefocus = -1\n"
        "\n[ZValue = 1]\nExposureTime = 9\nTargetDefocus = -3\n"
    )
    meta = read_mdoc(_write(tmp_path, text))
    assert meta.exposure_time_s == 2 and meta.nominal_defocus_a == pytest.approx(10000)


def test_dose_from_frame_doses_and_defocus_without_target(tmp_path: Path) -> None:
    text = (
        "PixelSpacing = 0.83\nVoltage = 300\n[FrameSet = 0]\nExposureTime = 2.0\n"
        "ExposureDose = 0\nFrameDosesAndNumber = 1.0 30 1.5 10\nDefocus = -2.2\n"
        "DateTime = 06-Dec-2026 07:05:09\n"
    )
    meta = read_mdoc(_write(tmp_path, text))
    # ExposureDose 0 is "not calibrated": 1.0 * 30 + 1.5 * 10 = 45 e/Å² over 40 frames
    assert meta.dose_e_per_a2 == pytest.approx(45.0)
    assert meta.n_fractions == 40 and meta.frame_dose_e_per_a2 is None
    assert meta.nominal_defocus_a == pytest.approx(22000)
    assert meta.acquired_at == datetime(2026, 12, 6, 7, 5, 9)  # four-digit year too
    uncalibrated = text.replace("FrameDosesAndNumber = 1.0 30 1.5 10\n", "")
    assert read_mdoc(_write(tmp_path, uncalibrated, "u.mdoc")).dose_e_per_a2 is None


def test_windows_code_page_title_is_read(tmp_path: Path) -> None:
    text = "[T = SerialEM: Mikroskop Zürich ]\n" + K3_SUPERRES
    path = tmp_path / "cp.mdoc"
    path.write_bytes(text.encode("cp1252"))
    assert read_mdoc(path).pixel_size_a == pytest.approx(0.4175)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("Binning = 0.5", "Binning = 0.3", "Binning 0.3 is not 1/n"),
        ("Binning = 0.5", "Binning = 1.5", "Binning 1.5 is not a whole number"),
        ("Binning = 0.5", "Binning = 0", "Binning is 0, not positive"),
        ("Binning = 0.5", "Binning = half", "Binning is not a number"),
        ("StagePosition = 123.456 -78.9", "StagePosition = 123.456", "StagePosition is not 2"),
        ("FrameDosesAndNumber = 0.84 60", "FrameDosesAndNumber = 0.84 60 1", "FrameDosesAndNum"),
        ("NumSubFrames = 60", "NumSubFrames = 60.5", "NumSubFrames is not a whole number"),
        ("DateTime = 06-Dec-26", "DateTime = 06-Dez-26", "DateTime is not dd-Mon-yy"),
        ("DateTime = 06-Dec-26", "DateTime = 31-Feb-26", "DateTime is not a valid date"),
        ("ExposureTime = 3.6", "ExposureTime = inf", "ExposureTime is not finite"),
        ("ExposureTime = 3.6", "ExposureTime = -3", "implausible"),
        ("[FrameSet = 0]", "[FrameSet 0]", "line 12 is not a '\\[Name = value\\]' section"),
        ("Voltage = 300\n", "", "required key Voltage is missing"),
    ],
)
def test_broken_variants_name_the_file_and_the_key(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in K3_SUPERRES
    path = _write(tmp_path, K3_SUPERRES.replace(old, new, 1))
    with pytest.raises(MetadataReadError, match=message) as caught:
        read_mdoc(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_binary_and_truncated_mdocs(tmp_path: Path) -> None:
    (tmp_path / "nul.mdoc").write_bytes(K3_SUPERRES.encode()[:200] + b"\x00\x00\x01")
    with pytest.raises(MetadataReadError, match="not a text mdoc"):
        read_mdoc(tmp_path / "nul.mdoc")
    # cut in the middle of the global lines: the required keys are missing, and said so
    (tmp_path / "cut.mdoc").write_text(K3_SUPERRES[: K3_SUPERRES.index("ImageFile")])
    with pytest.raises(MetadataReadError, match="required key ExposureTime is missing"):
        read_mdoc(tmp_path / "cut.mdoc")
    # cut inside a line
    (tmp_path / "mid.mdoc").write_text(K3_SUPERRES[:30])
    with pytest.raises(MetadataReadError, match="line 2 is not 'Key = value'"):
        read_mdoc(tmp_path / "mid.mdoc")
