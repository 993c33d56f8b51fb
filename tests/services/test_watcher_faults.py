"""The fault matrix of real acquisitions, through the watcher: a visit written by the test with
late XML, XML that comes after the watcher stopped waiting, a stalled writer (half a file, then
the rest), EPU's integrated image beside a Falcon movie, Falcon ``_Fractions.mrc`` naming, EER,
a link to another visit's movie, an optics change mid-visit, and files that are never movies.
Each movie is registered exactly once, whole, with its own defocus and dose, and its processing
is started with its own dose and pixel size; none is lost; the foreign one never appears."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import sqlalchemy as sa
import tifffile
from ispyb.sqlalchemy import (
    Atlas,
    AutoProcProgramMessage,
    DataCollection,
    FoilHole,
    GridSquare,
    Movie,
)
from sqlalchemy.orm import Session, sessionmaker

from cryolive.db.models import WorkItem
from cryolive.db.repo.pipeline import write_records
from cryolive.io import MovieReadError
from cryolive.io.movies import read_movie
from cryolive.messaging.recipe import load_recipe
from cryolive.pipeline.runtime import recipe_path
from cryolive.pipeline.watcher import Watcher
from cryolive.services._common import record_failure
from cryolive.services.messages import WriteResults
from cryolive.simulate._eer import EerWriter, encode_eer_frame
from cryolive.simulate._layout import ImageRecord, epu_image_xml

VISIT = "bi23047-5"
FRAMES = 6
ZONE = timezone(timedelta(hours=2))
K3 = ImageRecord(
    pixel_size_a=0.83,
    voltage_kv=300.0,
    exposure_time_s=2.0,
    dose_e_per_a2=40.0,
    nominal_defocus_a=15000.0,
    magnification=105000,
    n_fractions=FRAMES,
    shape_px=(32, 32),
    stage_um=(1.0, 2.0, 0.0),
    acquired_at=datetime(2026, 12, 6, 12, 0, 0, tzinfo=ZONE),
    detector="K3",
)
FALCON = replace(K3, pixel_size_a=0.73, detector="Falcon 4i", dose_e_per_a2=35.0)


class Recording:
    """A transport that keeps what the watcher publishes."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, queue: str, body: bytes, **_: object) -> None:
        self.sent.append((queue, body))


def _frames(frames: int = FRAMES) -> np.ndarray:
    return np.random.default_rng(0).poisson(1.0, (frames, 32, 32)).astype(np.uint8)


def _tiff(path: Path, frames: int = FRAMES) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, _frames(frames))
    return path.read_bytes()


def _mrc(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mrcfile.write(path, _frames().astype(np.int16), overwrite=True)


def _eer(path: Path, frames: int = 24) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    writer = EerWriter(path, (64, 64), metadata_xml="<metadata/>")
    for _ in range(frames):
        position = np.sort(rng.choice(64 * 64, size=40, replace=False)).astype(np.int64)
        sub = np.zeros(position.size, dtype=np.uint8)
        writer.write_frame(encode_eer_frame(position, sub, sub, n_pixels=64 * 64))
    writer.close()


def _xml(movie: Path, record: ImageRecord) -> Path:
    stem = movie.stem.removesuffix("_fractions").removesuffix("_Fractions").removesuffix("_EER")
    xml = movie.with_name(stem + ".xml")
    xml.write_text(epu_image_xml(record))
    return xml


def _data(raw: Path, square: int) -> Path:
    return raw / "Images-Disc1" / f"GridSquare_{square}" / "Data"


@dataclass
class Visit:
    root: Path
    expected: dict[Path, ImageRecord]  # every movie, with the metadata it must be recorded with
    stalled: Path
    stalled_bytes: bytes
    late: Path
    too_late: Path
    foreign: Path
    not_movies: list[Path]


def _write_visit(tmp_path: Path) -> Visit:
    root = tmp_path / VISIT
    raw, raw2, raw3 = root / "raw", root / "raw2", root / "raw3"
    expected: dict[Path, ImageRecord] = {}
    # raw, grid square 1: K3 movies at 15,000 Å and 40 e/Å²
    for i in range(2):
        movie = _data(raw, 1) / f"FoilHole_10{i}_Data_7_{i}_20261206_120000_fractions.tiff"
        _tiff(movie)
        _xml(movie, replace(K3, stage_um=(10.0 + i, -5.0, 0.0)))
        expected[movie] = replace(K3, stage_um=(10.0 + i, -5.0, 0.0))
    # grid square 2: another pixel size, defocus and dose: the optics changed mid-visit
    other = replace(K3, pixel_size_a=1.06, nominal_defocus_a=27000.0, dose_e_per_a2=50.0)
    for i in range(2):
        movie = _data(raw, 2) / f"FoilHole_20{i}_Data_7_{i}_20261206_130000_fractions.tiff"
        _tiff(movie)
        _xml(movie, other)
        expected[movie] = other
    # a stalled writer: half the file for a while, then the rest
    stalled = _data(raw, 1) / "FoilHole_110_Data_7_1_20261206_121000_fractions.tiff"
    whole = _tiff(stalled)
    stalled.write_bytes(whole[: len(whole) // 2])
    _xml(stalled, replace(K3, nominal_defocus_a=16000.0))
    expected[stalled] = replace(K3, nominal_defocus_a=16000.0)
    # XML late (within the wait), and too late (after it)
    late = _data(raw, 1) / "FoilHole_120_Data_7_1_20261206_122000_fractions.tiff"
    too_late = _data(raw, 1) / "FoilHole_121_Data_7_1_20261206_122100_fractions.tiff"
    for movie, defocus in ((late, 17000.0), (too_late, 18000.0)):
        _tiff(movie)
        expected[movie] = replace(K3, nominal_defocus_a=defocus, dose_e_per_a2=42.0)
    # a link to another visit's movie (with its XML beside the link: it would register)
    elsewhere = tmp_path / "bi99999-1" / "raw" / "FoilHole_9_Data_1_1_fractions.tiff"
    _tiff(elsewhere)
    foreign = _data(raw, 1) / "FoilHole_130_Data_7_1_20261206_123000_fractions.tiff"
    foreign.symlink_to(elsewhere)
    _xml(foreign, K3)
    # a link that stays inside the visit is followed
    inner = _data(raw, 1) / "FoilHole_131_Data_7_1_20261206_123100_fractions.tiff"
    target = root / "moved" / "FoilHole_131.tiff"
    _tiff(target)
    inner.symlink_to(target)
    _xml(inner, replace(K3, nominal_defocus_a=19000.0))
    expected[inner] = replace(K3, nominal_defocus_a=19000.0)
    # raw2: a Falcon grid: _Fractions.mrc with EPU's integrated image beside it
    falcon = _data(raw2, 5) / "FoilHole_500_Data_8_1_20261206_140000_Fractions.mrc"
    _mrc(falcon)
    integrated = falcon.with_name("FoilHole_500_Data_8_1_20261206_140000.mrc")
    _mrc(integrated)
    _xml(falcon, FALCON)
    expected[falcon] = FALCON
    # raw3: EER (EPU's fractions count is not the EER frame count)
    eer = _data(raw3, 6) / "FoilHole_600_Data_9_1_20261206_150000_EER.eer"
    _eer(eer)
    _xml(eer, replace(FALCON, dose_e_per_a2=8.0))
    expected[eer] = replace(FALCON, dose_e_per_a2=8.0)
    # never movies
    square = raw / "Images-Disc1" / "GridSquare_1"
    not_movies = [
        square / "GridSquare_20261206_115000.mrc",
        square / "FoilHoles" / "FoilHole_100_20261206_115500.mrc",
        _data(raw, 1) / "FoilHole_100_Data_7_0_20261206_120000.jpg",
        raw / "SuperRef_bi23047-5.dm4",
        raw / "Atlas" / "Atlas_1.mrc",
        integrated,
    ]
    for path in not_movies:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\0" * 1100)
    return Visit(root, expected, stalled, whole, late, too_late, foreign, not_movies)


def _watcher(sessions: sessionmaker[Session], visit: Visit, transport: Recording) -> Watcher:
    return Watcher(
        visit_dir=visit.root,
        visit=VISIT,
        sessions=sessions,
        transport=transport,  # type: ignore[arg-type]
        recipe=load_recipe(recipe_path("spa-preprocess")),
        settle_s=0.5,
        metadata_wait_s=10.0,
        incomplete_wait_s=100.0,
    )


def _sent_parameters(transport: Recording) -> dict[str, dict[str, object]]:
    found = {}
    for _, body in transport.sent:
        parameters = json.loads(body)["parameters"]
        found[parameters["movie_path"]] = parameters
    return found


def test_every_movie_of_a_faulty_visit_registers_once_with_its_own_metadata(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    visit = _write_visit(tmp_path)
    transport = Recording()
    watcher = _watcher(sessions, visit, transport)
    assert watcher.scan_once(0.0).registered == 0  # first seen: sizes noted
    first = watcher.scan_once(1.0)
    # K3 x4, the inner link, Falcon, EER; the stalled one and the two without XML wait
    assert (first.registered, first.waiting) == (7, 3)
    _xml(visit.late, visit.expected[visit.late])
    assert watcher.scan_once(2.0).registered == 1  # its XML came within the wait
    visit.stalled.write_bytes(visit.stalled_bytes)  # the writer finishes
    assert watcher.scan_once(3.0).registered == 0  # it changed: looked at again next time
    assert watcher.scan_once(4.0).registered == 1
    assert watcher.scan_once(9.0).registered == 0  # still waiting for the too-late XML
    registered_late = watcher.scan_once(12.0)  # 12 s without metadata: registered without
    assert registered_late.failed == 1
    _xml(visit.too_late, visit.expected[visit.too_late])
    assert watcher.scan_once(13.0).updated == 1  # the XML after all: filled in, started

    with sessions() as session:
        rows = session.execute(
            sa.select(
                Movie.movieFullPath,
                Movie.dataCollectionId,
                Movie.nominalDefocus,
                Movie.fluence,
                Movie.numberOfFrames,
                Movie.positionX,
                Movie.createdTimeStamp,
            )
        ).all()
        collections = session.execute(
            sa.select(
                DataCollection.dataCollectionId,
                DataCollection.dataCollectionGroupId,
                DataCollection.imageDirectory,
                DataCollection.pixelSizeOnImage,
            )
        ).all()
        work = session.execute(sa.select(WorkItem.message, WorkItem.done_at)).all()
        errors = session.scalars(
            sa.select(AutoProcProgramMessage.message).where(
                AutoProcProgramMessage.severity == "ERROR"
            )
        ).all()
    paths = [Path(r.movieFullPath) for r in rows]
    assert sorted(paths) == sorted(visit.expected)  # each once; none lost; nothing else
    assert visit.foreign not in paths
    assert not set(visit.not_movies) & set(paths)
    for row in rows:
        record = visit.expected[Path(row.movieFullPath)]
        assert row.nominalDefocus == pytest.approx(record.nominal_defocus_a)
        assert row.fluence == pytest.approx(record.dose_e_per_a2)
        assert row.numberOfFrames == record.n_fractions
        assert row.positionX == pytest.approx(record.stage_um[0])
        assert row.createdTimeStamp == datetime(2026, 12, 6, 10, 0, 0)  # 12:00 at +02:00, UTC
    assert errors == []  # the too-late movie's missing metadata is no longer its failure

    # the optics change made a second data collection in the first one's group
    by_dc = {c.dataCollectionId: c for c in collections}
    raw_dcs = [c for c in collections if c.imageDirectory == f"{visit.root}/raw/"]
    assert len(raw_dcs) == 2
    assert len({c.dataCollectionGroupId for c in raw_dcs}) == 1
    assert sorted(c.pixelSizeOnImage for c in raw_dcs) == pytest.approx([0.83, 1.06])
    assert len(collections) == 4  # raw x2, raw2, raw3
    for row in rows:
        record = visit.expected[Path(row.movieFullPath)]
        assert by_dc[row.dataCollectionId].pixelSizeOnImage == pytest.approx(record.pixel_size_a)

    # every movie's work recorded once and started with its own dose and pixel size
    started = {json.loads(m)["parameters"]["movie_path"]: json.loads(m) for m, _ in work}
    assert sorted(map(Path, started)) == sorted(visit.expected)
    sent = _sent_parameters(transport)
    assert sorted(map(Path, sent)) == sorted(visit.expected)
    for movie, record in visit.expected.items():
        parameters = sent[str(movie)]
        assert parameters["acquisition"]["pixel_size_a"] == pytest.approx(record.pixel_size_a)
        if movie.suffix == ".eer":  # 8 e/Å² over 24 EER frames, grouped
            group = parameters["motion"]["eer_grouping"]
            assert parameters["acquisition"]["dose_per_frame_e_per_a2"] == pytest.approx(
                8.0 * group / 24
            )
        else:
            per_frame = record.dose_e_per_a2 / record.n_fractions
            assert parameters["acquisition"]["dose_per_frame_e_per_a2"] == pytest.approx(per_frame)
            assert parameters["motion"]["frames"] == record.n_fractions

    # a restart registers nothing again
    again = _watcher(sessions, visit, Recording())
    assert again.scan_once(20.0).registered == 0
    assert again.scan_once(21.0).registered == 0
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Movie)) == len(rows)
        assert session.scalar(sa.select(sa.func.count()).select_from(DataCollection)) == 4


def _fail_motion_correction(sessions: sessionmaker[Session], parameters: dict, now: float) -> None:
    """Record the failure the motion correction service records for an unreadable movie."""
    with pytest.raises(MovieReadError) as caught:
        read_movie(parameters["movie_path"], expected_frames=parameters["motion"]["frames"])
    emits = record_failure(parameters, "motioncorr", caught.value)
    message = emits[0].result
    assert isinstance(message, WriteResults)
    with sessions.begin() as session:
        write_records(session, records=message.records, now=now)


def test_a_movie_read_while_incomplete_is_retried_once_when_whole(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    root = tmp_path / VISIT
    movie = _data(root / "raw", 1) / "FoilHole_1_Data_2_3_20261206_120000_fractions.tiff"
    whole = _tiff(movie)
    movie.write_bytes(whole[: len(whole) * 2 // 3])  # the writer stalls
    _xml(movie, K3)
    transport = Recording()
    watcher = Watcher(
        visit_dir=root,
        visit=VISIT,
        sessions=sessions,
        transport=transport,  # type: ignore[arg-type]
        recipe=load_recipe(recipe_path("spa-preprocess")),
        incomplete_wait_s=5.0,
    )
    watcher.scan_once(0.0)
    assert watcher.scan_once(1.0).waiting == 1  # not whole: waits
    assert watcher.scan_once(6.0).registered == 1  # stalled too long: registered anyway
    assert len(transport.sent) == 1
    parameters = json.loads(transport.sent[0][1])["parameters"]
    _fail_motion_correction(sessions, parameters, now=7.0)
    assert watcher.scan_once(8.0).retried == 0  # same file: nothing to try again
    assert watcher.scan_once(9.0).retried == 0

    movie.write_bytes(whole)  # the writer resumes and finishes
    assert watcher.scan_once(10.0).retried == 0  # changed: looked at again next time
    assert watcher.scan_once(11.0).retried == 1
    assert len(transport.sent) == 2 and transport.sent[1] == transport.sent[0]
    with sessions() as session:
        item = session.scalars(sa.select(WorkItem)).one()
        assert item.done_at is None and item.attempts == 2  # open again: a new attempt
        severities = session.scalars(sa.select(AutoProcProgramMessage.severity)).all()
        assert severities == ["WARNING"]  # the first failure kept, as retried

    # it fails again (say the file is damaged): recorded, and never retried a second time
    movie.write_bytes(whole[:-100])
    _fail_motion_correction(sessions, parameters, now=12.0)
    movie.write_bytes(whole)
    for t in (13.0, 14.0, 15.0):
        assert watcher.scan_once(t).retried == 0
    restarted = Watcher(
        visit_dir=root,
        visit=VISIT,
        sessions=sessions,
        transport=transport,  # type: ignore[arg-type]
        recipe=load_recipe(recipe_path("spa-preprocess")),
    )
    for t in (16.0, 17.0, 18.0):
        assert restarted.scan_once(t).retried == 0
    assert len(transport.sent) == 2
    with sessions() as session:
        item = session.scalars(sa.select(WorkItem)).one()
        assert item.done_at is not None and item.outcome == "failed"
        severities = sorted(session.scalars(sa.select(AutoProcProgramMessage.severity)).all())
        assert severities == ["ERROR", "WARNING"]


class FakeGrid:
    """Stands in for the grid scanner: one foil hole row per movie, created on demand."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.scanned: list[tuple[Path, int]] = []

    def scan(self, raw_dir: Path, data_collection_group_id: int) -> None:
        self.scanned.append((raw_dir, data_collection_group_id))

    def foil_hole_ids(
        self, session: Session, raw_dir: Path, data_collection_group_id: int, movies: list[Path]
    ) -> dict[Path, int | None]:
        atlas = Atlas(dataCollectionGroupId=data_collection_group_id, atlasImage="", pixelSize=1)
        session.add(atlas)
        session.flush()
        square = GridSquare(atlasId=atlas.atlasId, gridSquareLabel=1)
        session.add(square)
        session.flush()
        found: dict[Path, int | None] = {}
        for movie in movies:
            hole = FoilHole(gridSquareId=square.gridSquareId, foilHoleLabel=len(movie.name))
            session.add(hole)
            session.flush()
            found[movie] = hole.foilHoleId
        return found


def test_movies_get_their_foil_hole_and_late_metadata_keeps_it(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    root = tmp_path / VISIT
    first = _data(root / "raw", 1) / "FoilHole_1_Data_2_1_20261206_120000_fractions.tiff"
    _tiff(first)
    _xml(first, K3)
    movie = _data(root / "raw", 1) / "FoilHole_1_Data_2_3_20261206_120000_fractions.tiff"
    _tiff(movie)
    grid = FakeGrid(sessions)
    watcher = Watcher(
        visit_dir=root,
        visit=VISIT,
        sessions=sessions,
        transport=Recording(),  # type: ignore[arg-type]
        recipe=load_recipe(recipe_path("spa-preprocess")),
        settle_s=0.0,
        metadata_wait_s=2.0,
        grid=grid,
    )
    watcher.scan_once(0.0)
    assert watcher.scan_once(1.0).registered == 1
    assert watcher.scan_once(3.0).failed == 1  # no metadata: registered with its failure
    with sessions() as session:
        rows = session.execute(
            sa.select(Movie.movieFullPath, Movie.foilHoleId, DataCollection.dataCollectionGroupId)
            .join(DataCollection, DataCollection.dataCollectionId == Movie.dataCollectionId)
            .order_by(Movie.movieId)
        ).all()
    assert [Path(r.movieFullPath) for r in rows] == [first, movie]
    assert None not in {r.foilHoleId for r in rows}
    hole, group = rows[1].foilHoleId, rows[1].dataCollectionGroupId
    assert grid.scanned[-1] == (root / "raw", group)  # the folder's files, on its group
    _xml(movie, K3)
    assert watcher.scan_once(4.0).updated == 1
    with sessions() as session:
        row = session.execute(
            sa.select(Movie.foilHoleId, Movie.nominalDefocus).where(
                Movie.movieFullPath == str(movie)
            )
        ).one()
    assert row.foilHoleId == hole and row.nominalDefocus == pytest.approx(15000.0)
