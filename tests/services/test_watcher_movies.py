"""What the watcher takes for a movie, by name and folder, and the gain it finds."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryolive.pipeline._movies import gain_reference, walk, why_not_a_movie


@pytest.mark.parametrize(
    ("name", "movie"),
    [
        ("Data/FoilHole_1_Data_2_3_20261206_120000_fractions.tiff", True),  # K3
        ("Data/FoilHole_1_Data_2_3_20261206_120000_Fractions.mrc", True),  # Falcon
        ("Data/FoilHole_1_Data_2_3_20261206_120000_EER.eer", True),
        ("Data/FoilHole_1_Data_2_3_20261206_120000.tiff", True),
        ("Data/FoilHole_1_Data_2_3_20261206_120000.mrc", False),  # EPU's integrated image
        ("Data/FoilHole_1_Data_2_3_20261206_120000.jpg", False),
        ("Data/FoilHole_1_Data_2_3_20261206_120000.xml", False),
        ("Frames/bi23047-5_00001.tif", True),  # SerialEM
        ("Frames/bi23047-5_00001.mrc", True),
        ("Frames/bi23047-5_00001.eer", True),
        ("Frames/SuperRef_bi23047-5_00001.dm4", False),
        ("Frames/CountRef_bi23047-5.mrc", False),
        ("Frames/gain_reference.mrc", False),
        ("GridSquare_1/GridSquare_20261206_115000.mrc", False),
        ("FoilHoles/FoilHole_1_20261206_115500.mrc", False),
    ],
)
def test_what_is_a_movie(tmp_path: Path, name: str, movie: bool) -> None:
    assert (why_not_a_movie(tmp_path / name) is None) is movie


def test_an_mrc_with_a_serialem_mdoc_is_a_movie_wherever(tmp_path: Path) -> None:
    path = tmp_path / "Data" / "grid1_0001.mrc"
    path.parent.mkdir()
    path.write_bytes(b"")
    assert why_not_a_movie(path) is not None
    path.with_name(path.name + ".mdoc").write_text("PixelSpacing = 1.0\n")
    assert why_not_a_movie(path) is None


def test_links_are_followed_only_inside_the_visit(tmp_path: Path) -> None:
    visit = tmp_path / "visit"
    frames = visit / "raw" / "Frames"
    frames.mkdir(parents=True)
    (frames / "m1.tif").write_bytes(b"x")
    (visit / "moved").mkdir()
    (visit / "moved" / "m2.tif").write_bytes(b"x")
    (frames / "m2.tif").symlink_to(visit / "moved" / "m2.tif")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "m3.tif").write_bytes(b"x")
    (frames / "m3.tif").symlink_to(tmp_path / "other" / "m3.tif")
    (frames / "elsewhere").symlink_to(tmp_path / "other", target_is_directory=True)
    (frames / "m4.tif").symlink_to(frames / "gone.tif")  # dangling, inside: a movie that fails
    refused: dict[Path, str] = {}
    found = list(walk(visit / "raw", visit, refused))
    assert found == [frames / n for n in ("m1.tif", "m2.tif", "m4.tif")]
    assert set(refused) == {frames / "m3.tif", frames / "elsewhere"}
    assert "outside the visit" in refused[frames / "m3.tif"]


def test_serialem_gain_references_are_found(tmp_path: Path) -> None:
    assert gain_reference(tmp_path) is None
    (tmp_path / "SuperRef_bi23047-5_00001.dm4").write_bytes(b"x")
    assert gain_reference(tmp_path) == tmp_path / "SuperRef_bi23047-5_00001.dm4"


def test_one_optics_setting_within_its_tolerances() -> None:
    from cryolive.pipeline._optics import Optics

    k3 = Optics(0.83, 300.0, "K3", 40)
    assert k3.matches(Optics(0.835, 300.2, "K3", 40))  # 0.6% pixel size, 0.2 kV
    assert not k3.matches(Optics(0.85, 300.0, "K3", 40))  # 2.4%: another magnification
    assert not k3.matches(Optics(0.83, 200.0, "K3", 40))
    assert not k3.matches(Optics(0.83, 300.0, "Falcon 4i", 40))
    assert not k3.matches(Optics(0.83, 300.0, "K3", 41))  # 2.5% more frames
    assert Optics(0.83, 300.0).matches(k3)  # a collection from before detectors were recorded
    assert Optics.from_row(1.0, 300.0, k3.note()) == k3
    assert Optics.from_row(1.0, 300.0, '{"hand": true}') == Optics(1.0, 300.0)
    assert Optics.from_row(None, 300.0, None) is None


def test_a_folder_is_listed_again_only_when_it_changed(tmp_path: Path) -> None:
    import os

    visit = tmp_path / "visit"
    frames = visit / "raw" / "Frames"
    frames.mkdir(parents=True)
    (frames / "m1.tif").write_bytes(b"x")
    old = 1_700_000_000
    for folder in (frames, frames.parent):
        os.utime(folder, (old, old))
    listings: dict = {}
    assert list(walk(visit / "raw", visit, {}, listings)) == [frames / "m1.tif"]
    (frames / "m2.tif").write_bytes(b"x")  # the folder's time stamp moves: listed again
    assert list(walk(visit / "raw", visit, {}, listings))[-1] == frames / "m2.tif"
    os.utime(frames, (old, old))
    assert len(list(walk(visit / "raw", visit, {}, listings))) == 2
    (frames / "m3.tif").write_bytes(b"x")
    os.utime(frames, (old, old))  # a change the time stamp hides: the cached listing is used
    assert len(list(walk(visit / "raw", visit, {}, listings))) == 2
    assert len(list(walk(visit / "raw", visit, {}, {}))) == 3
