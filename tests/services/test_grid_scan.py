"""The grid scanner on EPU's own files laid out as a visit: atlas, squares and holes registered
whichever comes first (files or movies), once, and a scan with nothing new touches no database."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import Atlas, DataCollection, FoilHole, GridSquare, Movie
from sqlalchemy.orm import Session, sessionmaker

from cryolive.db import make_engine, session_factory, upgrade
from cryolive.db.repo import collections, visits
from cryolive.messaging import open_transport
from cryolive.messaging.recipe import load_recipe
from cryolive.pipeline.grid_scan import GridScanner
from cryolive.pipeline.runtime import recipe_path
from cryolive.pipeline.watcher import Watcher

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
EXAMPLE = SHARED / "data" / "epu-example"
VISIT = "cm40593-1"  # the visit EPU's AtlasId names
ATLAS_IN_VISIT = Path("atlas/Supervisor_20250108_101551_cm40593-1_Atlas/Sample7/Atlas/Atlas.dm")
SQUARE = Path("Images-Disc1/GridSquare_8999138")
MOVIE_XML = SQUARE / "Data" / "FoilHole_9015883_Data_9017347_6_20250108_154915.xml"


@pytest.fixture
def example(need_service: Callable[[str, str], None]) -> Path:
    if not (EXAMPLE / "EpuSession.dm").is_file():
        need_service("shared EPU reference data", f"not at {EXAMPLE}")
    return EXAMPLE


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    return session_factory(engine)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _session_files(example: Path, visit_dir: Path, targets: str) -> None:
    """EPU's session, atlas, square and hole files (no movies), and the square's targets."""
    raw = visit_dir / "raw"
    _copy(example / "EpuSession.dm", raw / "EpuSession.dm")
    _copy(example / "Atlas.dm", visit_dir / ATLAS_IN_VISIT)
    for path in (example / SQUARE).rglob("*"):
        if path.is_file() and path.parent.name != "Data":
            _copy(path, raw / path.relative_to(example))
    (raw / "Metadata").mkdir()
    (raw / "Metadata" / "GridSquare_8999138.dm").write_text(targets)


def _group(sessions: sessionmaker[Session], raw: Path) -> int:
    with sessions.begin() as session:
        sid = visits.ensure_visit(session, visit=VISIT)
        spec = collections.DataCollectionSpec(session_id=sid, image_directory=str(raw))
        return collections.register_data_collection(session, spec=spec)[0]


def _count(session: Session, model: type) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def test_files_first_then_the_movie(
    example: Path,
    tmp_path: Path,
    sessions: sessionmaker[Session],
    square_targets_xml: Callable[..., str],
) -> None:
    visit_dir = tmp_path / VISIT
    raw = visit_dir / "raw"
    targets = square_targets_xml(8999138, {9015883: (100, 200, 51.3), 9015889: (300, 400, 51.3)})
    _session_files(example, visit_dir, targets)
    group = _group(sessions, raw)
    scanner = GridScanner(sessions, visit_dir)
    scanner.scan(raw, group)

    with sessions() as session:
        atlas = session.scalars(sa.select(Atlas)).one()
        assert atlas.dataCollectionGroupId == group
        assert atlas.atlasImage == str(visit_dir / ATLAS_IN_VISIT.parent / "Atlas_4590151.mrc")
        assert atlas.pixelSize == pytest.approx(3411.5, abs=1)
        squares = {s.gridSquareLabel: s for s in session.scalars(sa.select(GridSquare))}
        assert len(squares) == 48  # the atlas's 47 and the square with files
        on_atlas = squares[4590306]
        assert (on_atlas.pixelLocationX, on_atlas.pixelLocationY) == (2237, 1741)
        assert (on_atlas.width, on_atlas.height) == (143, 134)
        square = squares[8999138]
        assert square.gridSquareImage == str(raw / SQUARE / "GridSquare_20250108_151151.jpg")
        assert square.pixelSize == pytest.approx(415.628, abs=1e-3)
        assert square.stageLocationX == pytest.approx(-98.806, abs=1e-3)
        holes = {h.foilHoleLabel: h for h in session.scalars(sa.select(FoilHole))}
        assert set(holes) == {"9015883", "9015889"}
        assert (holes["9015883"].pixelLocationX, holes["9015883"].diameter) == (100, 51)
        imaged = holes["9015889"]  # targets and its own image: both told
        assert (imaged.pixelLocationX, imaged.pixelLocationY) == (300, 400)
        assert imaged.foilHoleImage == str(
            raw / SQUARE / "FoilHoles" / "FoilHole_9015889_20250108_154725.jpg"
        )  # the later of its two images
        assert imaged.pixelSize == pytest.approx(16.359, abs=1e-3)

        movie = raw / MOVIE_XML.with_name(MOVIE_XML.stem + "_fractions.tiff")
        hole_id = scanner.foil_hole_id(session, raw, group, movie)
        assert hole_id == holes["9015883"].foilHoleId
        assert scanner.foil_hole_id(session, raw, group, raw / "Frames" / "a.tif") is None

    class NoDatabase:
        def __call__(self) -> None:
            raise AssertionError("a scan with nothing new opened a session")

        begin = __call__

    scanner.sessions = NoDatabase()  # type: ignore[assignment]
    scanner.scan(raw, group)  # nothing changed: no file read, no database


def test_a_hole_image_cut_short_is_read_once_complete(
    example: Path, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    visit_dir = tmp_path / VISIT
    raw = visit_dir / "raw"
    holes_dir = raw / SQUARE / "FoilHoles"
    xml = holes_dir / "FoilHole_9015889_20250108_154725.xml"
    full = (example / SQUARE / "FoilHoles" / xml.name).read_bytes()
    holes_dir.mkdir(parents=True)
    (xml.with_suffix(".jpg")).write_bytes(b"jpeg")
    xml.write_bytes(full[: len(full) // 2])  # EPU still writing it
    group = _group(sessions, raw)
    scanner = GridScanner(sessions, visit_dir)
    scanner.scan(raw, group)
    with sessions() as session:
        assert _count(session, FoilHole) == 0
    xml.write_bytes(full)  # the folder's time stamp may not move: only the file's
    scanner.scan(raw, group)
    with sessions() as session:
        hole = session.scalars(sa.select(FoilHole)).one()
        assert hole.foilHoleLabel == "9015889"
        assert hole.stageLocationY == pytest.approx(-152.722, abs=1e-3)


def test_the_watcher_ties_movies_to_holes_filled_in_later(
    example: Path,
    tmp_path: Path,
    sessions: sessionmaker[Session],
    square_targets_xml: Callable[..., str],
) -> None:
    visit_dir = tmp_path / VISIT
    raw = visit_dir / "raw"
    movie = raw / MOVIE_XML.with_name(MOVIE_XML.stem + "_fractions.tiff")
    _copy(example / MOVIE_XML, raw / MOVIE_XML)
    movie.write_bytes(b"\0" * 1024)  # not read: the metadata beside it says what it is
    watcher = Watcher(
        visit_dir=visit_dir,
        visit=VISIT,
        sessions=sessions,
        transport=open_transport(f"memory://grid-{uuid.uuid4().hex[:8]}"),
        recipe=load_recipe(recipe_path("spa-preprocess")),
        settle_s=1.0,
        grid=GridScanner(sessions, visit_dir),
    )
    watcher.scan_once(0.0)
    assert watcher.scan_once(5.0).registered == 1
    with sessions() as session:
        hole_id = session.scalars(sa.select(Movie.foilHoleId)).one()
        assert hole_id is not None
        placeholder = session.get_one(FoilHole, hole_id)
        assert placeholder.foilHoleLabel == "9015883"
        assert placeholder.pixelLocationX is None
        square = session.get_one(GridSquare, placeholder.gridSquareId)
        assert square.gridSquareLabel == 8999138
        group = session.get_one(
            DataCollection, session.scalars(sa.select(Movie)).one().dataCollectionId
        )
        atlas = session.get_one(Atlas, square.atlasId)
        assert atlas.dataCollectionGroupId == group.dataCollectionGroupId

    targets = square_targets_xml(8999138, {9015883: (100, 200, 51.3)})
    _session_files(example, visit_dir, targets)
    watcher.scan_once(10.0)
    with sessions() as session:
        assert _count(session, Atlas) == 1
        assert (
            session.scalar(sa.select(sa.func.count()).where(GridSquare.gridSquareLabel == 8999138))
            == 1
        )
        hole = session.scalars(sa.select(FoilHole).where(FoilHole.foilHoleLabel == "9015883")).one()
        assert hole.foilHoleId == hole_id  # the placeholder, filled in
        assert (hole.pixelLocationX, hole.pixelLocationY) == (100, 200)
        assert session.get_one(Atlas, square.atlasId).atlasImage.endswith("Atlas_4590151.mrc")


def test_movies_of_many_holes_at_once(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    raw = tmp_path / VISIT / "raw"
    group = _group(sessions, raw)
    scanner = GridScanner(sessions, tmp_path / VISIT)
    movies = [
        raw / f"Images-Disc1/GridSquare_{s}/Data/FoilHole_{h}_Data_1_{n}_20250108_154915.tiff"
        for s, h, n in ((1, 10, 1), (1, 10, 2), (1, 11, 1), (2, 20, 1))
    ]
    outside = raw / "Frames" / "m.tif"
    with sessions.begin() as session:
        ids = scanner.foil_hole_ids(session, raw, group, [*movies, outside])
    assert ids[outside] is None
    assert ids[movies[0]] == ids[movies[1]] != ids[movies[2]]
    with sessions() as session:
        holes = {
            h.foilHoleId: (h.foilHoleLabel, h.gridSquareId)
            for h in session.scalars(sa.select(FoilHole))
        }
        squares = {
            s.gridSquareId: s.gridSquareLabel for s in session.scalars(sa.select(GridSquare))
        }
    assert sorted(label for label, _ in holes.values()) == ["10", "11", "20"]
    assert squares[holes[ids[movies[3]]][1]] == 2
    assert squares[holes[ids[movies[0]]][1]] == 1


def test_the_atlas_pixel_size_comes_from_its_image_xml_when_there_is_one(
    example: Path, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    visit_dir = tmp_path / VISIT
    raw = visit_dir / "raw"
    _copy(example / "EpuSession.dm", raw / "EpuSession.dm")
    atlas_dir = visit_dir / ATLAS_IN_VISIT.parent
    _copy(example / "Atlas.dm", atlas_dir / "Atlas.dm")
    # EPU's Atlas_<n>.xml is a MicroscopeImage like a square's: one stands in for it here
    _copy(example / SQUARE / "GridSquare_20250108_151151.xml", atlas_dir / "Atlas_4590151.xml")
    _copy(example / SQUARE / "GridSquare_20250108_151151.jpg", atlas_dir / "Atlas_4590151.jpg")
    scanner = GridScanner(sessions, visit_dir)
    scanner.scan(raw, _group(sessions, raw))
    with sessions() as session:
        atlas = session.scalars(sa.select(Atlas)).one()
        assert atlas.pixelSize == pytest.approx(415.628, abs=1e-3)
        assert atlas.atlasImage == str(atlas_dir / "Atlas_4590151.jpg")


def test_an_unreadable_file_is_read_again_only_when_it_changes(
    tmp_path: Path,
    sessions: sessionmaker[Session],
    square_targets_xml: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cryolive.pipeline import grid_scan

    raw = tmp_path / VISIT / "raw"
    targets = raw / "Metadata" / "GridSquare_5.dm"
    targets.parent.mkdir(parents=True)
    targets.write_text("<GridSquareXml><Id>5</Id>")  # cut short
    reads: list[Path] = []
    original = grid_scan.read_square_targets

    def counting(path: Path) -> Any:
        reads.append(path)
        return original(path)

    monkeypatch.setattr(grid_scan, "read_square_targets", counting)
    group = _group(sessions, raw)
    scanner = GridScanner(sessions, tmp_path / VISIT)
    scanner.scan(raw, group)
    scanner.scan(raw, group)
    assert len(reads) == 1  # not parsed again while unchanged
    targets.write_text(square_targets_xml(5, {50: (1.0, 2.0, 3.0)}))
    scanner.scan(raw, group)
    assert len(reads) == 2
    with sessions() as session:
        assert session.scalars(sa.select(FoilHole.foilHoleLabel)).all() == ["50"]
