"""EPU's session, atlas, grid square and foil hole files: read on EPU's own files (values read
off the files by eye) and on files the tests write."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from cryolive.io import MetadataReadError
from cryolive.io.epu_session import (
    find_image,
    foil_hole_label,
    grid_square_label,
    read_atlas,
    read_epu_session,
    read_image_xml,
    read_square_targets,
    resolve_atlas,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
EXAMPLE = SHARED / "data" / "epu-example"
SQUARE = EXAMPLE / "Images-Disc1" / "GridSquare_8999138"


@pytest.fixture
def example(need_service: Callable[[str, str], None]) -> Path:
    """The EPU example beside the repository: skipped locally without it, a failure in CI."""
    if not (EXAMPLE / "EpuSession.dm").is_file():
        need_service("shared EPU reference data", f"not at {EXAMPLE}")
    return EXAMPLE


def test_real_epu_session(example: Path) -> None:
    session = read_epu_session(example / "EpuSession.dm")
    assert session.name == "Supervisor_20250108_101446_62_cm40593-1_EPU"
    assert session.started_at == datetime(2025, 1, 8, 15, 10, 39, 480727, tzinfo=UTC)
    assert session.atlas_id == (
        "Z:\\DoseFractions\\cm40593-1\\atlas\\Supervisor_20250108_101551_cm40593-1_Atlas"
        "\\Sample7\\Atlas\\Atlas.dm"
    )
    assert len(session.grid_squares) == 228
    assert session.grid_squares[:3] == (8999669, 8999690, 8999693)
    assert 8999138 in session.grid_squares  # the square whose files are in the example


def test_real_atlas(example: Path) -> None:
    atlas = read_atlas(example / "Atlas.dm")
    assert atlas.image_base_name == "Atlas_4590151"
    assert atlas.acquired_at == datetime(
        2024, 4, 5, 10, 17, 53, 987880, tzinfo=timezone(timedelta(hours=1))
    )
    assert len(atlas.squares) == 47  # nodes on several tiles are one square each
    square = atlas.squares[4590306]
    assert (square.center_x_px, square.center_y_px) == (2236.751, 1741.15442)
    assert (square.width_px, square.height_px) == (143.233978, 134.156143)
    assert square.stage_x_um == pytest.approx(-117.4624, abs=1e-4)
    assert square.stage_y_um == pytest.approx(-109.4415, abs=1e-4)
    assert square.angle_deg == pytest.approx(11.830, abs=1e-3)  # Rotation 0.2065 rad
    # 4.88648839E-05 m wide on the stage, 143.233978 px on the atlas: 3412 Å per pixel
    assert atlas.pixel_size_a == pytest.approx(3411.5, abs=1.0)


def test_real_grid_square_image(example: Path) -> None:
    image = read_image_xml(SQUARE / "GridSquare_20250108_151151.xml")
    assert image.pixel_size_a == pytest.approx(415.628, abs=1e-3)  # 4.1562760e-08 m
    assert (image.width_px, image.height_px) == (2880, 2046)
    assert image.stage_x_um == pytest.approx(-98.8057, abs=1e-4)
    assert image.stage_y_um == pytest.approx(-164.7162, abs=1e-4)
    assert image.acquired_at == datetime(2025, 1, 8, 15, 11, 49, 670928, tzinfo=UTC)
    assert find_image(image.path) == SQUARE / "GridSquare_20250108_151151.jpg"


def test_real_foil_hole_image(example: Path) -> None:
    xml = SQUARE / "FoilHoles" / "FoilHole_9015889_20250108_154725.xml"
    image = read_image_xml(xml)
    assert image.pixel_size_a == pytest.approx(16.3591, abs=1e-4)  # 1.6359115e-09 m
    assert image.stage_x_um == pytest.approx(-97.1462, abs=1e-4)
    assert image.stage_y_um == pytest.approx(-152.7218, abs=1e-4)
    assert image.acquired_at == datetime(2025, 1, 8, 15, 47, 21, 817777, tzinfo=UTC)
    assert foil_hole_label(xml) == 9015889
    assert grid_square_label(xml) == 8999138


def test_labels_from_a_movie_path() -> None:
    movie = SQUARE / "Data" / "FoilHole_9015883_Data_9017354_6_20250108_154918_fractions.tiff"
    assert (grid_square_label(movie), foil_hole_label(movie)) == (8999138, 9015883)
    assert grid_square_label(Path("/visit/raw/Frames/a.tif")) is None
    assert foil_hole_label(Path("GridSquare_20250108_151151.jpg")) is None


def test_square_targets(tmp_path: Path, square_targets_xml: Callable[..., str]) -> None:
    path = tmp_path / "GridSquare_4590776.dm"
    path.write_text(square_targets_xml(4590776, {5665438: (1396, 972, 51.28809), 17: (3, 4, 5)}))
    targets = read_square_targets(path)
    assert targets.label == 4590776
    assert targets.stage_x_um == pytest.approx(-49.0)
    assert targets.stage_y_um == pytest.approx(-562.0)
    hole = targets.holes[5665438]
    assert (hole.center_x_px, hole.center_y_px, hole.diameter_px) == (1396, 972, 51.28809)
    assert hole.stage_x_um == pytest.approx(5665.438)
    assert hole.stage_y_um == pytest.approx(-5665.438)
    assert hole.selected
    assert set(targets.holes) == {5665438, 17}


def test_resolve_atlas_inside_the_visit(tmp_path: Path) -> None:
    visit = tmp_path / "cm40593-1"
    atlas = visit / "atlas" / "Sample7" / "Atlas" / "Atlas.dm"
    atlas.parent.mkdir(parents=True)
    atlas.write_text("<AtlasSessionXml/>")
    atlas_id = "Z:\\DoseFractions\\cm40593-1\\atlas\\Sample7\\Atlas\\Atlas.dm"
    assert resolve_atlas(atlas_id, visit_dir=visit) == atlas
    assert resolve_atlas(atlas_id, visit_dir=tmp_path / "other-1") is None


def test_resolve_atlas_under_a_configured_root(tmp_path: Path) -> None:
    root = tmp_path / "atlases"
    atlas = root / "Supervisor_1_Atlas" / "Sample7" / "Atlas" / "Atlas.dm"
    atlas.parent.mkdir(parents=True)
    atlas.write_text("<AtlasSessionXml/>")
    atlas_id = "Z:\\Atlases\\Supervisor_1_Atlas\\Sample7\\Atlas\\Atlas.dm"
    visit = tmp_path / "cm40593-1"
    assert resolve_atlas(atlas_id, visit_dir=visit) is None
    assert resolve_atlas(atlas_id, visit_dir=visit, atlas_roots=(root,)) == atlas
    climbing = "Z:\\cm40593-1\\..\\..\\Supervisor_1_Atlas\\Sample7\\Atlas\\Atlas.dm"
    assert resolve_atlas(climbing, visit_dir=visit, atlas_roots=(root,)) is None


@pytest.mark.parametrize(
    ("reader", "content", "reason"),
    [
        (read_epu_session, "", "zero-byte"),
        (read_epu_session, "   ", "empty"),
        (read_epu_session, "<EpuSessionXml><Name>x</Name>", "not well-formed"),
        (read_atlas, "<EpuSessionXml/>", "root element is not AtlasSessionXml"),
        (read_image_xml, "<MicroscopeImage/>", "pixelSize"),
        (
            read_epu_session,
            '<!DOCTYPE x [<!ENTITY a "aaaa">]><EpuSessionXml><Name>&a;</Name></EpuSessionXml>',
            "DTD",
        ),
        (read_square_targets, "<GridSquareXml><Id>12a</Id></GridSquareXml>", "whole number"),
    ],
)
def test_bad_files_raise_a_read_error(
    tmp_path: Path, reader: Callable[[Path], object], content: str, reason: str
) -> None:
    path = tmp_path / "file.dm"
    path.write_text(content)
    with pytest.raises(MetadataReadError, match=reason):
        reader(path)


def test_a_missing_file_raises_a_read_error(tmp_path: Path) -> None:
    with pytest.raises(MetadataReadError, match="no such file"):
        read_atlas(tmp_path / "Atlas.dm")
