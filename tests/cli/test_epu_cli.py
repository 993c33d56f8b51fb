"""``cryolive epu inspect``: what cryolive reads from EPU's own files and a SerialEM folder,
and a clear failure for a folder it cannot read."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryolive.cli import build_app

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
EXAMPLE = SHARED / "data" / "epu-example"


@pytest.fixture
def example(need_service: Callable[[str, str], None]) -> Path:
    if not (EXAMPLE / "EpuSession.dm").is_file():
        need_service("shared EPU reference data", f"not at {EXAMPLE}")
    return EXAMPLE


def _inspect(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["epu", "inspect", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_inspect_the_real_epu_example(example: Path) -> None:
    code, out = _inspect(str(example), "--atlas", str(example / "Atlas.dm"))
    assert code == 0, out
    assert "Supervisor_20250108_101446_62_cm40593-1_EPU" in out
    assert "228" in out  # grid squares the session lists
    assert "47 grid squares on it" in out and "3411.5 Å/px" in out
    assert "8999138" in out  # the square with files
    # the two acquisitions, read with their metadata though their movies are not there
    assert "2 without" in out
    assert "1.056" in out and "14.41" in out and "14.56" in out and "27000" in out
    assert "movie has not appeared" in out


def test_inspect_says_when_the_atlas_is_not_found(example: Path) -> None:
    code, out = _inspect(str(example))
    assert code == 0
    assert "no (set atlas_roots)" in out


def test_inspect_a_serialem_folder_with_skipped_files(tmp_path: Path) -> None:
    frames = tmp_path / "raw" / "Frames"
    frames.mkdir(parents=True)
    (frames / "grid1_0001.tif").write_bytes(b"II*\0")
    (frames / "grid1_0001.tif.mdoc").write_text(
        "PixelSpacing = 0.83\nVoltage = 300\n\n[FrameSet = 0]\nExposureTime = 2.5\n"
        "NumSubFrames = 40\nExposureDose = 48.5\nTargetDefocus = -1.8\n"
    )
    (frames / "grid1_0002.tif").write_bytes(b"II*\0")  # its mdoc has not come
    (tmp_path / "raw" / "SuperRef_grid1.tif").write_bytes(b"II*\0")
    (tmp_path / "raw" / "overview.mrc").write_bytes(b"\0")
    data = tmp_path / "raw2" / "Images-Disc1" / "GridSquare_1" / "Data"
    data.mkdir(parents=True)
    (data / "FoilHole_2_Data_3_4_20250108_154915.mrc").write_bytes(b"\0")  # integrated image
    code, out = _inspect(str(tmp_path))  # the visit folder: each raw folder is inspected
    assert code == 0, out
    assert "no EpuSession.dm" in out
    assert "0.830" in out and "48.50" in out and "18000" in out and "40" in out
    assert "grid1_0002.tif" in out and "missing" in out
    assert "overview.mrc" in out and "not in a Data/ (EPU) or Frames/ (SerialEM) folder" in out
    assert "SuperRef_grid1.tif" in out and "a gain reference" in out
    assert "FoilHole_2_Data_3_4_20250108_154915.mrc" in out and "integrated image" in out
    assert "Acquisitions (0 movies" in out  # raw2: the integrated image is not one


def test_inspect_fails_clearly_on_a_folder_it_cannot_read(tmp_path: Path) -> None:
    code, out = _inspect(str(tmp_path / "nowhere"))
    assert code == 2 and "not a folder" in out
    (tmp_path / "notes.txt").write_text("hello")
    code, out = _inspect(str(tmp_path))
    assert code == 1 and "nothing cryolive reads here" in out


def test_inspect_reports_an_unreadable_session_file(tmp_path: Path, example: Path) -> None:
    shutil.copytree(example / "Images-Disc1", tmp_path / "Images-Disc1")
    (tmp_path / "EpuSession.dm").write_text("<EpuSessionXml><Name>cut")
    code, out = _inspect(str(tmp_path))
    assert code == 0
    assert "EpuSession.dm unreadable" in out and "not well-formed" in out
