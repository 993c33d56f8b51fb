"""The simulated EPU visit against real EPU 3.9 files: the same element layout (namespaces
included), the session → atlas → grid square → foil hole → movie references, several optics
settings, Falcon naming, and the delivery faults with their truth."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path, PureWindowsPath

import mrcfile
import pytest

from cryolive.io.epu import read_epu_xml
from cryolive.io.movies import read_movie
from cryolive.simulate import FaultRates, MovieConfig, VisitConfig, VisitTruth, simulate_visit

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "epu-example"
SQUARE = SHARED / "Images-Disc1" / "GridSquare_8999138"
TINY = MovieConfig(n_frames=4, particle_density=0.1)


@pytest.fixture
def real(need_service: Callable[[str, str], None]) -> Path:
    if not (SHARED / "EpuSession.dm").is_file():
        need_service("shared EPU reference data", f"not at {SHARED}")
    return SHARED


def _paths(path: Path) -> set[str]:
    """Every element path, with namespaces resolved: ``/{ns}Root/{ns}Child/…``."""
    found: set[str] = set()

    def walk(node: ET.Element, prefix: str) -> None:
        here = f"{prefix}/{node.tag}"
        found.add(here)
        for child in node:
            walk(child, here)

    walk(ET.parse(path).getroot(), "")
    return found


@pytest.fixture(scope="module")
def visit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, VisitTruth]:
    out = tmp_path_factory.mktemp("epu") / "bi23047-5"
    config = VisitConfig(
        movies_per_grid=12,
        movies_per_foil_hole=2,
        foil_holes_per_square=3,
        movie=TINY,
        faults=FaultRates(optics_change=1.0),
        start_time=datetime(2026, 5, 4, 9, 30, tzinfo=timezone(timedelta(hours=2))),
        seed=3,
    )
    return out, simulate_visit(config, out)


def test_every_element_written_is_where_real_epu_writes_it(
    real: Path, visit: tuple[Path, VisitTruth]
) -> None:
    out, truth = visit
    raw = out / "raw"
    square = next((raw / "Images-Disc1").glob("GridSquare_*"))
    pairs = [
        (out / truth.grids[0].movies[0].metadata, next((SQUARE / "Data").glob("*.xml"))),  # type: ignore[operator]
        (next(square.glob("GridSquare_*.xml")), next(SQUARE.glob("GridSquare_*.xml"))),
        (next((square / "FoilHoles").glob("*.xml")), next((SQUARE / "FoilHoles").glob("*.xml"))),
        (raw / "EpuSession.dm", real / "EpuSession.dm"),
        (out / truth.grids[0].atlas, real / "Atlas.dm"),  # type: ignore[operator]
    ]
    for simulated, reference in pairs:
        extra = _paths(simulated) - _paths(reference)
        assert not extra, f"{simulated.name}: not in {reference.name}: {sorted(extra)[:3]}"


def test_grid_square_dm_has_the_layout_tools_read(visit: tuple[Path, VisitTruth]) -> None:
    # Metadata/GridSquare_<id>.dm (not in the shared data): the names and prefixes facility
    # tools match, and every foil hole with its centre inside the square's image
    out, truth = visit
    square = truth.grids[0].grid_squares[0]
    path = out / "raw" / "Metadata" / f"GridSquare_{square.label}.dm"
    text = path.read_text()
    assert "<b:KeyValuePairOfintTargetLocationXmlBpEWF4JT>" in text
    assert "<a:m_serializationArray" in text and "<c:x>" in text
    ns = {
        "e": "http://schemas.datacontract.org/2004/07/Applications.Epu.Persistence",
        "a": "http://schemas.microsoft.com/2003/10/Serialization/Arrays",
        "g": "http://schemas.datacontract.org/2004/07/System.Collections.Generic",
        "d": "http://schemas.datacontract.org/2004/07/System.Drawing",
    }
    root = ET.parse(path).getroot()
    pairs = root.findall(
        "e:TargetLocations/e:TargetLocationsEfficient/a:m_serializationArray/*", ns
    )
    holes = {}
    for pair in pairs:
        value = pair.find("g:value", ns)
        assert value is not None
        x = float(value.findtext("e:PixelCenter/d:x", namespaces=ns) or "nan")
        y = float(value.findtext("e:PixelCenter/d:y", namespaces=ns) or "nan")
        holes[int(pair.findtext("g:key", namespaces=ns) or 0)] = (x, y)
    assert sorted(holes) == sorted(square.foil_holes)
    assert all(0 < x < 2880 and 0 < y < 2046 for x, y in holes.values())


def test_session_names_its_atlas_by_a_windows_path_inside_the_visit(
    visit: tuple[Path, VisitTruth],
) -> None:
    out, truth = visit
    root = ET.parse(out / "raw" / "EpuSession.dm").getroot()
    atlas_id = next(e.text for e in root.iter() if e.tag.endswith("}AtlasId"))
    assert atlas_id and atlas_id.startswith("Z:\\")
    parts = PureWindowsPath(atlas_id).parts
    relative = Path(*parts[parts.index(out.name) + 1 :])
    assert relative == Path(truth.grids[0].atlas or "")
    atlas = ET.parse(out / relative).getroot()
    keys = {int(e.text or 0) for e in atlas.iter() if e.tag.endswith("}key")}
    assert keys == {s.label for s in truth.grids[0].grid_squares}
    squares = {
        int(e.text or 0)
        for e in root.iter()
        if e.tag.endswith("}key") and e.text  # the session's grid squares
    }
    assert squares == keys
    base = next(e.text for e in atlas.iter() if e.tag.endswith("}BaseFileName"))
    assert (out / relative).with_name(f"{base}.jpg").is_file()
    with mrcfile.open((out / relative).with_name(f"{base}.mrc")) as mrc:
        assert mrc.data.shape == (1024, 1024)


def test_movies_name_their_foil_hole_and_carry_their_own_optics(
    visit: tuple[Path, VisitTruth],
) -> None:
    out, truth = visit
    movies = truth.grids[0].movies
    assert {m.optics_setting for m in movies} == {0, 1}
    for movie in movies:
        path = Path(movie.movie)
        assert path.parts[-3] == f"GridSquare_{movie.grid_square}"
        assert path.name.startswith(f"FoilHole_{movie.foil_hole}_Data_")
        assert path.name.endswith("_fractions.tiff")
        meta = read_epu_xml(out / (movie.metadata or ""))
        assert meta.pixel_size_a == pytest.approx(movie.pixel_size_a)
        assert meta.dose_e_per_a2 == pytest.approx(movie.dose_e_per_a2)
        assert meta.nominal_defocus_a == pytest.approx(movie.nominal_defocus_a)
        assert meta.acquired_at is not None and meta.acquired_at.utcoffset() == timedelta(hours=2)
        if movie.optics_setting:
            assert movie.dose_e_per_a2 == 60.0 and 24_000 <= movie.nominal_defocus_a <= 30_000
            assert movie.pixel_size_a == pytest.approx(1.25)
        else:
            assert movie.dose_e_per_a2 == 40.0 and movie.pixel_size_a == 1.0
    assert [f.kind for f in truth.faults] == ["optics_change"] * (
        len(truth.grids[0].grid_squares) - 1
    )


def test_falcon_names_its_movies_fractions_and_writes_the_integrated_image(tmp_path: Path) -> None:
    config = VisitConfig(movies_per_grid=2, detector="falcon-tiny", movie=TINY, seed=2)
    truth = simulate_visit(config, tmp_path)
    grid = truth.grids[0]
    assert len(grid.non_movies) == 2
    for movie, image in zip(grid.movies, grid.non_movies, strict=True):
        assert movie.movie.endswith("_Fractions.mrc")
        assert image.kind == "integrated_image" and image.of_movie == movie.movie
        assert image.path == movie.movie.removesuffix("_Fractions.mrc") + ".mrc"
        with mrcfile.open(tmp_path / image.path) as mrc:
            assert mrc.data.ndim == 2
        assert read_movie(tmp_path / movie.movie).shape == tuple(movie.shape_px)


def test_late_metadata_and_a_stalled_writer_land_after_the_movie(tmp_path: Path) -> None:
    config = VisitConfig(
        movies_per_grid=3,
        movie=TINY,
        faults=FaultRates(late_metadata=1.0, stalled_writer=1.0),
        seed=5,
    )
    seen: list[tuple[bool, int]] = []

    def watch(done: int, total: int) -> None:
        # what a watcher scanning while the microscope writes sees of the first movie
        first = tmp_path / "raw" / "Images-Disc1"
        movie = sorted(first.glob("GridSquare_*/Data/*_fractions.tiff"))[0]
        xml = movie.with_name(movie.name.removesuffix("_fractions.tiff") + ".xml")
        seen.append((xml.exists(), movie.stat().st_size))

    truth = simulate_visit(config, tmp_path, progress=watch)
    first = truth.grids[0].movies[0]
    assert all(not has_xml for has_xml, _ in seen)
    final = (tmp_path / first.movie).stat().st_size
    assert all(size < final for _, size in seen)
    assert (tmp_path / (first.metadata or "")).is_file()
    assert read_movie(tmp_path / first.movie).shape == tuple(first.shape_px)
    kinds = sorted(f.kind for f in truth.faults)
    assert kinds == ["late_metadata"] * 3 + ["stalled_writer"] * 3
    assert first.delivery == ["late_metadata", "stalled_writer"]


def test_integrated_images_and_foreign_links_are_listed_as_no_movies(tmp_path: Path) -> None:
    out = tmp_path / "visit"
    config = VisitConfig(
        movies_per_grid=2,
        movie=TINY,
        faults=FaultRates(integrated_image=1.0, foreign_symlink=1.0),
        seed=6,
    )
    truth = simulate_visit(config, out)
    kinds = sorted(n.kind for n in truth.grids[0].non_movies)
    assert kinds == ["foreign_symlink"] * 2 + ["integrated_image"] * 2
    for item in truth.grids[0].non_movies:
        path = out / item.path
        if item.kind == "foreign_symlink":
            assert path.is_symlink() and not path.resolve().is_relative_to(out.resolve())
            assert path.name.endswith("_fractions.tiff")
        else:
            assert path.is_file() and not path.name.endswith("_fractions.tiff")
    movies = {m.movie for m in truth.grids[0].movies}
    assert movies.isdisjoint(n.path for n in truth.grids[0].non_movies)
