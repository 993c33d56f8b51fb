"""Issue #22: a new movie reaches the database within 2 s of its completion (inotify on a local
file system, a re-check 1 s after a file appears), never while it is half written; polling stays
the fallback; registration is committed in batches, so a crash mid-scan loses nothing and a
rescan duplicates nothing."""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import tifffile
from ispyb.sqlalchemy import Movie
from sqlalchemy.orm import Session, sessionmaker

from cryolive.db import make_engine, session_factory, upgrade
from cryolive.db.models import WorkItem
from cryolive.messaging.recipe import load_recipe
from cryolive.pipeline import watcher as watcher_module
from cryolive.pipeline._inotify import file_system_type, local_file_system
from cryolive.pipeline.runtime import recipe_path
from cryolive.pipeline.watcher import Watcher, follow
from cryolive.simulate._layout import ImageRecord, epu_image_xml

log = logging.getLogger(__name__)
FRAMES = 20
RECORD = ImageRecord(
    pixel_size_a=0.83,
    voltage_kv=300.0,
    exposure_time_s=2.0,
    dose_e_per_a2=40.0,
    nominal_defocus_a=15000.0,
    magnification=105000,
    n_fractions=FRAMES,
    shape_px=(64, 64),
    stage_um=(1.0, 2.0, 0.0),
    acquired_at=datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
    detector="K3",
)
# Goal 2 s; asserted with a margin for the loaded 2-core test machine.
LIMIT_S = 4.0


class Recording:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, queue: str, body: bytes, **_: object) -> None:
        self.sent.append((queue, body))


@pytest.fixture
def sqlite_sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    return session_factory(engine)


def _tiff_bytes() -> bytes:
    buffer = io.BytesIO()
    frames = np.random.default_rng(0).poisson(1.0, (FRAMES, 64, 64)).astype(np.uint8)
    tifffile.imwrite(buffer, frames)
    return buffer.getvalue()


def _names(data: Path, i: int) -> tuple[Path, Path]:
    stem = f"FoilHole_{100 + i}_Data_7_1_20261207_0900{i:02d}"
    return data / f"{stem}_fractions.tiff", data / f"{stem}.xml"


def _atomic(path: Path, content: bytes) -> None:
    tmp = path.with_name("." + path.name + ".part")
    tmp.write_bytes(content)
    os.rename(tmp, path)


def _rows(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(sa.select(Movie.movieFullPath)))


def _watcher(root: Path, sessions: sessionmaker[Session], **kwargs: object) -> Watcher:
    return Watcher(
        visit_dir=root,
        visit="bi23047-5",
        sessions=sessions,
        transport=Recording(),  # type: ignore[arg-type]
        recipe=load_recipe(recipe_path("spa-preprocess")),
        **kwargs,  # type: ignore[arg-type]
    )


class Running:
    """The watcher's loop (as ``cryolive run`` runs it) in a thread."""

    def __init__(self, watcher: Watcher, poll_s: float) -> None:
        self.stop, self.scanned = threading.Event(), threading.Event()

        def scan() -> None:
            watcher.scan_once(time.time())
            self.scanned.set()

        self.thread = threading.Thread(
            target=follow,
            args=([watcher],),
            kwargs={"poll_s": poll_s, "stop": self.stop, "scan": scan},
            daemon=True,
        )

    def __enter__(self) -> Running:
        self.thread.start()
        assert self.scanned.wait(60)  # the first scan has run: the folders are watched
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(10)


def _wait_for(sessions: sessionmaker[Session], movie: Path, limit_s: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        if str(movie) in _rows(sessions):
            return time.monotonic()
        time.sleep(0.02)
    return None


def _visit(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "bi23047-5"
    data = root / "raw" / "Images-Disc1" / "GridSquare_1" / "Data"
    data.mkdir(parents=True)
    return root, data


@pytest.mark.parametrize("events", [True, False], ids=["inotify", "polling"])
def test_a_movie_renamed_into_place_reaches_the_database_fast(
    tmp_path: Path,
    sqlite_sessions: sessionmaker[Session],
    events: bool,
    need_service: Callable[[str, str], None],
) -> None:
    root, data = _visit(tmp_path)
    if events and not local_file_system(root):
        need_service("inotify", f"{root} is on {file_system_type(root)}")  # fails in CI
    poll_s = 5.0 if events else 2.0
    watcher = _watcher(root, sqlite_sessions, events=events)
    movie_bytes = _tiff_bytes()
    with Running(watcher, poll_s):
        waits = []
        for i in range(2):  # the first also opens the data collection and its run
            movie, xml = _names(data, i)
            _atomic(movie, movie_bytes)
            _atomic(xml, epu_image_xml(RECORD).encode())
            complete = time.monotonic()
            seen = _wait_for(sqlite_sessions, movie, poll_s + 10)
            assert seen is not None, "never registered"
            waits.append(seen - complete)
            time.sleep(0.3)
    log.warning("new movie -> database (%s): %s s", "inotify" if events else "polling", waits)
    print(f"new movie -> database ({'inotify' if events else 'polling'}): {waits} s")
    # inotify: ~1 s (the file must stand still 1 s); polling: up to a poll + 1 s
    limit = LIMIT_S if events else poll_s + LIMIT_S
    assert max(waits) < limit


def test_a_slowly_written_movie_is_never_registered_half_written(
    tmp_path: Path, sqlite_sessions: sessionmaker[Session]
) -> None:
    root, data = _visit(tmp_path)
    watcher = _watcher(root, sqlite_sessions)
    whole = _tiff_bytes()
    movie, xml = _names(data, 0)
    with Running(watcher, 5.0):
        xml.write_text(epu_image_xml(RECORD))  # the metadata first: only the file's state counts
        chunk = len(whole) // 8
        with movie.open("wb") as out:
            for k in range(8):
                out.write(whole[k * chunk : (k + 1) * chunk])
                out.flush()
                # one pause longer than the 1 s re-check: the file stands still, half written
                time.sleep(1.6 if k == 3 else 0.2)
                assert str(movie) not in _rows(sqlite_sessions), f"registered after chunk {k}"
            out.write(whole[8 * chunk :])
        complete = time.monotonic()
        seen = _wait_for(sqlite_sessions, movie, 15)
    assert seen is not None
    print(f"slow write: registered {seen - complete:.2f} s after completion")
    assert seen - complete < LIMIT_S
    with sqlite_sessions() as session:
        frames = session.scalar(
            sa.select(Movie.numberOfFrames).where(Movie.movieFullPath == str(movie))
        )
    assert frames == FRAMES


def test_a_crash_mid_scan_keeps_the_committed_batches_and_a_rescan_adds_no_duplicate(
    tmp_path: Path, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, data = _visit(tmp_path)
    xml_text = epu_image_xml(RECORD)
    movie_bytes = _tiff_bytes()
    movies = []
    for i in range(12):
        movie, xml = _names(data, i)
        movie.write_bytes(movie_bytes)
        xml.write_text(xml_text)
        movies.append(movie)
    watcher = _watcher(root, sessions, events=False, batch_size=5)
    assert watcher.scan_once(0.0).registered == 0  # sizes noted
    real = watcher_module.read_metadata
    calls = [0]

    def crashing(path: Path) -> object:
        calls[0] += 1
        if calls[0] == 8:  # the 8th movie read: the process dies mid-scan
            raise RuntimeError("killed")
        return real(path)

    monkeypatch.setattr(watcher_module, "read_metadata", crashing)
    with pytest.raises(RuntimeError, match="killed"):
        watcher.scan_once(1.0)
    assert sorted(_rows(sessions)) == sorted(map(str, movies[:5]))  # the first batch is kept
    monkeypatch.setattr(watcher_module, "read_metadata", real)
    restarted = _watcher(root, sessions, events=False, batch_size=5)
    restarted.scan_once(10.0)
    assert restarted.scan_once(11.0).registered == 7  # only those the crash left
    assert restarted.scan_once(12.0).registered == 0
    rows = _rows(sessions)
    assert sorted(rows) == sorted(map(str, movies))  # each once
    with sessions() as session:
        keys = list(session.scalars(sa.select(WorkItem.key)))
    assert len(keys) == len(set(keys)) == 12


def test_a_backlog_is_committed_batch_by_batch(
    tmp_path: Path, sqlite_sessions: sessionmaker[Session]
) -> None:
    root, data = _visit(tmp_path)
    xml_text, movie_bytes = epu_image_xml(RECORD), _tiff_bytes()
    for i in range(11):
        movie, xml = _names(data, i)
        movie.write_bytes(movie_bytes)
        xml.write_text(xml_text)
    seen_at_publish: list[int] = []

    class Counting(Recording):
        def publish(self, queue: str, body: bytes, **_: object) -> None:
            seen_at_publish.append(len(_rows(sqlite_sessions)))
            super().publish(queue, body)

    watcher = _watcher(root, sqlite_sessions, events=False, batch_size=4)
    watcher.transport = Counting()  # type: ignore[assignment]
    watcher.scan_once(0.0)
    assert watcher.scan_once(1.0).registered == 11
    # what each publish saw committed: 4, then 8, then 11 rows (three transactions)
    assert sorted(set(seen_at_publish)) == [4, 8, 11]


def test_network_file_systems_are_polled_only(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        f"40 22 0:50 / {tmp_path}/dls rw,relatime shared:30 - nfs4 server:/dls rw\n"
    )
    assert file_system_type(tmp_path / "dls" / "m01" / "raw", str(mountinfo)) == "nfs4"
    assert file_system_type(tmp_path / "dlsx", str(mountinfo)) == "ext4"
