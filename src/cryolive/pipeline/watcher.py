"""The watcher: finds the movies a microscope writes into a visit folder and starts their
processing, each movie once, complete, with its own metadata.

It polls (network file systems give no reliable events); on a local file system it also
listens to inotify (:mod:`cryolive.pipeline._inotify`), so that a movie closed or renamed into
place is looked at at once rather than at the next poll. Below every raw folder (``raw``,
``raw2`` …: one grid, one DataCollectionGroup) it takes the files that are movies
(:mod:`cryolive.pipeline._movies`: never EPU's integrated image, gain files, JPEGs or survey
images; symbolic links only where they stay inside the visit). A movie is registered when

- its size and time stamp have not changed since the last look, at least ``recheck_s`` (1 s)
  before: a movie that is new or changed is looked at again ``recheck_s`` later, without waiting
  for the next poll (only that file, not the tree);
- its file is whole (:func:`cryolive.io.completeness.check_movie`: the TIFF/EER directory chain
  and its data inside the file, the MRC size, and the frame count its metadata promises); a file
  that stays incomplete for ``incomplete_wait_s`` is registered anyway, so that its failure is
  recorded;
- its metadata (EPU's ``.xml``, SerialEM's ``.mdoc``) has appeared, or ``metadata_wait_s`` has
  passed: then it is registered from its header and the optics entered by hand, and the
  metadata, when it comes later, fills in its Movie row.

Each Movie row carries the movie's own defocus, dose, frames, stage position and acquisition
time (UTC), and its processing uses its own dose and pixel size. Movies of one folder with one
optics setting (pixel size within 1%, voltage, detector, frame count) form one DataCollection
with its automatic run; a change of optics starts another DataCollection in the same group.

A movie whose motion correction failed because its file was incomplete is tried once more when
its file has become whole (see :mod:`cryolive.db.repo.retries`); never more than once.

Movies are registered in transactions of ``batch_size`` (500) as they are read, so a backlog
of 50,000 shows its first rows within seconds and a crash mid-scan loses none of the committed
ones (the next scan skips them: their rows are what it loads).

For EER movies the run's ``eer_grouping`` is chosen from the dose (each fraction 0.5-1.0 e/Å²,
see :func:`cryolive.engines.motion.choose_eer_grouping`) unless the user set it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import select
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from ispyb.sqlalchemy import Movie
from sqlalchemy.orm import Session, sessionmaker

from cryolive.db import ledger
from cryolive.db.repo.collections import (
    DataCollectionSpec,
    folder_collections,
    register_data_collection,
)
from cryolive.db.repo.manual import HandOptics, hand_optics
from cryolive.db.repo.pipeline import write_failures
from cryolive.db.repo.results import update_movie_metadata, write_movies
from cryolive.db.repo.retries import failure_descriptions, retry_failure
from cryolive.db.repo.visits import ensure_visit
from cryolive.engines.motion import choose_eer_grouping
from cryolive.errors import printable
from cryolive.io import AcquisitionMetadata, MetadataReadError, MovieReadError
from cryolive.io.completeness import Completeness, check_movie
from cryolive.io.layout import project_dir
from cryolive.io.movies import movie_frame_count
from cryolive.messaging.recipe import Recipe
from cryolive.messaging.transport import Transport
from cryolive.params import build_parameters
from cryolive.pipeline._inotify import IN_ISDIR, Inotify, file_system_type, local_file_system
from cryolive.pipeline._movies import (
    Listing,
    gain_reference,
    metadata_file,
    read_metadata,
    walk,
    why_not_a_movie,
)
from cryolive.pipeline._optics import Optics
from cryolive.pipeline.runs import (
    Run,
    expect_movies,
    load_run,
    open_run,
    publish,
    registered_movies,
)
from cryolive.records import FailureRecord, MovieRecord, MovieRef

__all__ = [
    "ScanReport",
    "Watcher",
    "follow",
    "gain_reference",
    "metadata_file",
    "movie_files",
    "read_metadata",
]

log = logging.getLogger(__name__)
RAW_FOLDER = re.compile(r"^raw\d*$")
# What a reader says about a file that was not yet whole when it was read.
INCOMPLETE = re.compile(
    r"truncated|still being written|zero-byte|frames but its metadata promises", re.IGNORECASE
)
# A movie new or changed this long ago is looked at again every ``recheck_s``; after that, at
# the polls only (a file that waits minutes for its metadata is not stat'ed every second).
HOT_WINDOW_S = 30.0


def movie_files(raw_dir: Path, visit_dir: Path | None = None) -> list[Path]:
    """The files below ``raw_dir`` that the watcher takes for movies, by the same rule (their
    name and folder; links only where they stay inside ``visit_dir``, by default the raw
    folder's parent)."""
    refused: dict[Path, str] = {}
    found = walk(raw_dir, visit_dir or raw_dir.parent, refused)
    return [path for path in found if why_not_a_movie(path) is None]


class GridHook(Protocol):
    """Where on the grid movies were taken (``services.grid_scan.GridScanner``): the watcher
    asks it to register the EPU atlas, square and hole files of a folder, and for each new
    movie's foil hole."""

    def scan(self, raw_dir: Path, data_collection_group_id: int) -> None: ...

    def foil_hole_ids(
        self, session: Session, raw_dir: Path, data_collection_group_id: int, movies: list[Path]
    ) -> dict[Path, int | None]: ...


@dataclass
class _Group:
    optics: Optics
    data_collection_id: int
    data_collection_group_id: int  # the folder's (one grid): the same for all its groups
    run: Run | None = None


@dataclass
class _Seen:
    stat: tuple[int, float]
    changed_at: float
    first_at: float
    noted: str = ""  # what was logged about it last, so each reason is logged once


@dataclass
class _Folder:
    loaded: bool = False
    groups: list[_Group] = field(default_factory=list)
    known: set[Path] = field(default_factory=set)
    seen: dict[Path, _Seen] = field(default_factory=dict)
    refused: dict[Path, str] = field(default_factory=dict)
    skipped: set[Path] = field(default_factory=set)
    late: dict[Path, int] = field(default_factory=dict)  # registered without metadata: its DC
    failed: dict[Path, tuple[int, float] | None] = field(default_factory=dict)
    retried: set[Path] = field(default_factory=set)
    unregistrable: set[Path] = field(default_factory=set)  # logged once as such
    listings: dict[Path, Listing] = field(default_factory=dict)  # folder listings, reused
    hot: dict[Path, float] = field(default_factory=dict)  # movie -> when to look at it again


@dataclass
class _Ready:
    movie: Path
    meta: AcquisitionMetadata | None
    why: str = ""  # why there is no metadata, when there is none
    frames: int | None = None  # counted in the file (EER: EER frames)


@dataclass(frozen=True)
class ScanReport:
    registered: int
    failed: int
    waiting: int
    updated: int = 0  # movies whose late metadata was filled in
    retried: int = 0


class Watcher:
    """Watches one visit folder.

    Parameters
    ----------
    visit_dir
        The visit's folder, holding ``raw``, ``raw2`` ….
    visit
        The visit's name (``bi23047-5``); created in the database if missing.
    sessions, transport, recipe
        Database sessions (with write rights), the broker, and the recipe to start.
    settle_s
        Seconds a movie without metadata must stand still before it counts as settled.
    metadata_wait_s
        Seconds a whole movie waits for its metadata file before it is registered without.
    incomplete_wait_s
        Seconds a file that stands still but is not whole waits before it is registered
        anyway (its failure then recorded).
    defaults
        Processing parameters that the metadata does not give (cs, amplitude contrast …); they
        win over the metadata's.
    grid
        Registers the atlas, grid squares and foil holes, and gives each movie its foil hole.
    recheck_s
        A new or changed movie is looked at again this much later (:meth:`recheck`), and
        registered only once its size and time stamp have stood still this long.
    events
        Listen to inotify where the visit is on a local file system (never on NFS & co.).
    batch_size
        Movies registered per database transaction.
    """

    def __init__(
        self,
        *,
        visit_dir: Path,
        visit: str,
        sessions: sessionmaker[Session],
        transport: Transport,
        recipe: Recipe,
        settle_s: float = 10.0,
        metadata_wait_s: float = 600.0,
        incomplete_wait_s: float = 300.0,
        microscope: str = "",
        defaults: dict[str, object] | None = None,
        grid: GridHook | None = None,
        recheck_s: float = 1.0,
        events: bool = True,
        batch_size: int = 500,
    ) -> None:
        self.visit_dir, self.visit = visit_dir, visit
        self.sessions, self.transport, self.recipe = sessions, transport, recipe
        self.settle_s, self.microscope = settle_s, microscope
        self.metadata_wait_s, self.incomplete_wait_s = metadata_wait_s, incomplete_wait_s
        self.defaults = dict(defaults or {})
        self.grid = grid
        self._folders: dict[Path, _Folder] = {}
        self.recheck_s, self.batch_size = recheck_s, max(1, batch_size)
        self._events_wanted = events
        self._inotify: Inotify | None = None
        self._watched: dict[Path, Path] = {}  # folder -> its raw folder
        self._walked: set[Path] = set()

    def raw_folders(self) -> list[Path]:
        if not self.visit_dir.is_dir():
            return []
        return sorted(
            p for p in self.visit_dir.iterdir() if p.is_dir() and RAW_FOLDER.match(p.name)
        )

    def scan_once(self, now: float) -> ScanReport:
        """Register and start every movie that has become ready since the last scan; fill in
        late metadata; retry, once, movies that failed as incomplete and are now whole."""
        totals = [0, 0, 0, 0, 0]
        self._start_events()
        for raw_dir in self.raw_folders():
            folder = self._folders.setdefault(raw_dir, _Folder())
            if not folder.loaded:
                self._load(raw_dir, folder)
            counted = [0]
            self._walked.clear()
            ready = self._ready(raw_dir, folder, now, counted)
            registered, failed = self._register_batches(raw_dir, folder, ready)
            waiting = counted[0]
            self._watch(raw_dir, self._walked)
            updated = self._fill_late_metadata(raw_dir, folder) if folder.late else 0
            retried = self._retry_incomplete(folder)
            if self.grid is not None and folder.groups:
                self.grid.scan(raw_dir, folder.groups[0].data_collection_group_id)
            for i, n in enumerate((registered, failed, waiting, updated, retried)):
                totals[i] += n
        return ScanReport(*totals)

    def recheck(self, now: float) -> ScanReport:
        """Between polls: look at the movies that are due (new or changed ``recheck_s`` ago, or
        in a folder where inotify reported a file closed or renamed), only those, and register
        the ready ones."""
        if self._inotify is not None:
            self._take_events(now)
        registered = failed = waiting = 0
        for raw_dir, folder in self._folders.items():
            if not folder.loaded or not folder.hot:
                continue
            due = sorted(m for m, at in folder.hot.items() if at <= now)
            for movie in due:
                del folder.hot[movie]
            if not due:
                continue
            counted = [0]
            r, f = self._register_batches(raw_dir, folder, self._due(folder, due, now, counted))
            registered, failed, waiting = registered + r, failed + f, waiting + counted[0]
        return ScanReport(registered, failed, waiting)

    def next_due(self) -> float | None:
        """When :meth:`recheck` has something to look at next (None: nothing before the poll)."""
        return min((min(f.hot.values()) for f in self._folders.values() if f.hot), default=None)

    def fileno(self) -> int | None:
        """The inotify descriptor to wait on, when events are used."""
        return self._inotify.fd if self._inotify is not None else None

    def close(self) -> None:
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None

    # -- events (local file systems) -------------------------------------------------------

    def _start_events(self) -> None:
        if not self._events_wanted:
            return
        self._events_wanted = False  # decided once
        if not local_file_system(self.visit_dir):
            log.info(
                "%s is on %s: polling only (inotify sees only this host's writes there)",
                self.visit_dir, file_system_type(self.visit_dir) or "an unknown file system",
            )  # fmt: skip
            return
        try:
            self._inotify = Inotify()
        except OSError as exc:
            log.warning("inotify unavailable (%s): polling only", exc)

    def _watch(self, raw_dir: Path, folders: Iterable[Path]) -> None:
        if self._inotify is None:
            return
        for path in folders:
            if path not in self._watched:
                self._watched[path] = raw_dir  # also when the watch fails: not tried again
                self._inotify.add(path)

    def _take_events(self, now: float) -> None:
        assert self._inotify is not None
        events, _ = self._inotify.read()  # an overflow: the next poll finds what was missed
        touched: dict[Path, Path] = {}
        for parent, name, mask in events:
            raw_dir = self._watched.get(parent)
            if raw_dir is None:
                continue
            if mask & IN_ISDIR:  # a new folder (a grid square's Data/): watch it and below
                path = parent / name
                if path.is_symlink():
                    continue  # a link: the polls decide whether it stays in the visit
                for below, _, _ in os.walk(path):
                    self._watch(raw_dir, [Path(below)])
                    touched[Path(below)] = raw_dir
            else:
                touched[parent] = raw_dir
        for parent, raw_dir in touched.items():
            folder = self._folders.get(raw_dir)
            if folder is None or not folder.loaded:
                continue
            try:
                with os.scandir(parent) as entries:
                    names = [e.path for e in entries if e.is_file(follow_symlinks=False)]
            except OSError:
                continue
            for name in names:  # a movie's metadata may be what came: its movie is due too
                movie = Path(name)
                if movie in folder.known or movie in folder.skipped:
                    continue
                if why_not_a_movie(movie) is None:
                    folder.hot[movie] = min(folder.hot.get(movie, now), now)

    # -- what the database already holds (after a restart) ---------------------------------

    def _session_id(self, session: Session) -> int:
        return ensure_visit(session, visit=self.visit, microscope=self.microscope)

    def _load(self, raw_dir: Path, folder: _Folder) -> None:
        with self.sessions.begin() as session:
            sid = self._session_id(session)
            for dc, dcg, pixel, kv, comments in folder_collections(
                session, session_id=sid, image_directory=str(raw_dir)
            ):
                movies = registered_movies(session, data_collection_id=dc)
                folder.known |= set(movies)
                optics = Optics.from_row(pixel, kv, comments)
                if optics is not None:
                    folder.groups.append(_Group(optics, dc, dcg))
                folder.late |= {
                    Path(p): dc
                    for p in session.scalars(
                        sa.select(Movie.movieFullPath).where(
                            Movie.dataCollectionId == dc,
                            Movie.nominalDefocus.is_(None),
                            Movie.positionX.is_(None),
                        )
                    )
                }
        folder.loaded = True

    # -- which movies are ready ------------------------------------------------------------

    def _note(self, seen: _Seen, movie: Path, text: str) -> None:
        if seen.noted != text:
            seen.noted = text
            log.info("%s: waiting: %s", printable(str(movie)), text)

    def _ready(
        self, raw_dir: Path, folder: _Folder, now: float, waiting: list[int]
    ) -> Iterator[_Ready]:
        """The movies ready to register, as the walk finds them (``waiting[0]`` counts those
        that must wait)."""
        refused_before = len(folder.refused)
        walked = walk(raw_dir, self.visit_dir, folder.refused, folder.listings, self._walked)
        for movie in walked:
            if movie in folder.known or movie in folder.skipped:
                continue
            why_not = why_not_a_movie(movie)
            if why_not is not None:
                folder.skipped.add(movie)
                if not why_not.startswith("not a movie file type"):
                    log.info("%s: not a movie: %s", printable(str(movie)), why_not)
                continue
            found = self._check(folder, movie, now)
            if found is None:
                waiting[0] += 1
            else:
                yield found
        if len(folder.refused) > refused_before:
            for path, why in list(folder.refused.items())[refused_before:]:
                log.warning("%s: not followed: %s", printable(str(path)), why)

    def _due(
        self, folder: _Folder, movies: list[Path], now: float, waiting: list[int]
    ) -> Iterator[_Ready]:
        for movie in movies:
            if movie in folder.known or movie in folder.skipped:
                continue
            found = self._check(folder, movie, now)
            if found is None:
                waiting[0] += 1
            else:
                yield found

    def _check(self, folder: _Folder, movie: Path, now: float) -> _Ready | None:
        """:meth:`_settled`, and when the movie must wait, when to look at it again."""
        found = self._settled(folder, movie, now)
        seen = folder.seen.get(movie)
        if found is not None:
            folder.hot.pop(movie, None)
        elif seen is not None and now - seen.changed_at < HOT_WINDOW_S:
            folder.hot[movie] = now + self.recheck_s
        return found

    def _settled(self, folder: _Folder, movie: Path, now: float) -> _Ready | None:
        """The movie, ready to register; None while it must wait."""
        try:
            stat = movie.stat()
        except OSError:
            try:
                stat = movie.lstat()  # a dangling link: its target will never come
            except OSError:
                return None
        now_stat = (stat.st_size, stat.st_mtime)
        seen = folder.seen.get(movie)
        if seen is None or seen.stat != now_stat:
            first = now if seen is None else seen.first_at
            folder.seen[movie] = _Seen(now_stat, now, first, "" if seen is None else seen.noted)
            return None  # changed since the last look (or first seen): look again later
        if now - seen.changed_at < self.recheck_s - 1e-3:
            return None  # not still for long enough yet
        meta_path = metadata_file(movie)
        has_meta = meta_path.exists()
        if not has_meta and now - seen.changed_at < self.settle_s:
            return None
        meta: AcquisitionMetadata | None = None
        why = ""
        if has_meta:
            try:
                meta = read_metadata(movie)
            except MetadataReadError as exc:
                why = str(exc)
        if not os.path.isfile(movie):  # a folder, pipe or dangling link: the reader says why
            return self._without(folder, seen, movie, meta, why, now)
        expected = meta.n_fractions if meta is not None else None
        found = check_movie(movie, expected_frames=expected)
        if found.state == "incomplete":
            if now - seen.changed_at < self.incomplete_wait_s:
                self._note(seen, movie, f"not yet whole ({found.reason})")
                return None
            log.warning(
                "%s: still not whole after %.0f s (%s); registering it",
                printable(str(movie)), now - seen.changed_at, found.reason,
            )  # fmt: skip
        return self._without(folder, seen, movie, meta, why, now, found)

    def _without(
        self,
        folder: _Folder,
        seen: _Seen,
        movie: Path,
        meta: AcquisitionMetadata | None,
        why: str,
        now: float,
        found: Completeness | None = None,
    ) -> _Ready | None:
        frames = found.frames if found is not None else None
        if meta is not None or why:
            return _Ready(movie, meta, why, frames)
        if now - seen.first_at < self.metadata_wait_s:
            self._note(seen, movie, f"no metadata yet ({metadata_file(movie).name})")
            return None
        why = f"{metadata_file(movie)}: no metadata after {self.metadata_wait_s:.0f} s"
        return _Ready(movie, None, why, frames)

    # -- registration ----------------------------------------------------------------------

    def _register_batches(
        self, raw_dir: Path, folder: _Folder, items: Iterable[_Ready]
    ) -> tuple[int, int]:
        """Register the movies as they come, ``batch_size`` per transaction (each batch
        committed and published before the next is read)."""
        registered = failed = 0
        batch: list[_Ready] = []
        for item in items:
            batch.append(item)
            if len(batch) >= self.batch_size:
                r, f = self._register(raw_dir, folder, batch)
                registered, failed, batch = registered + r, failed + f, []
        if batch:
            r, f = self._register(raw_dir, folder, batch)
            registered, failed = registered + r, failed + f
        return registered, failed

    def _register(self, raw_dir: Path, folder: _Folder, ready: list[_Ready]) -> tuple[int, int]:
        good: list[_Ready] = []
        bad: list[_Ready] = []
        for item in ready:
            if not item.movie.name.isprintable():
                why = "the file name holds a newline or control characters; rename the file"
                bad.append(_Ready(item.movie, None, f"{printable(str(item.movie))}: {why}"))
            elif item.meta is None:
                bad.append(item)
            else:
                good.append(item)
        messages: list[tuple[str, bytes]] = []
        with self.sessions.begin() as session:
            sid = self._session_id(session)
            hand = hand_optics(session, session_id=sid, raw_dir=str(raw_dir)) if bad else None
            if hand is not None:  # no metadata of their own: the optics entered by hand
                good, bad = _with_hand_optics(hand, good, bad)
            if not folder.groups and not good:
                return self._record_unregistrable(folder, bad)
            by_group: dict[int, tuple[_Group, list[_Ready]]] = {}
            for item in good:
                group = self._group(session, sid, raw_dir, folder, item, good)
                by_group.setdefault(id(group), (group, []))[1].append(item)
                if item.why:  # registered from hand optics: its own metadata may come later
                    folder.late[item.movie] = group.data_collection_id
            for group, items in by_group.values():
                run = group.run
                assert run is not None
                holes = self._holes(session, raw_dir, group, items)
                write_movies(
                    session, records=[_movie_record(run, i, holes.get(i.movie)) for i in items]
                )
                own = {i.movie: self._own_values(run, i) for i in items}
                messages += expect_movies(
                    session, run=run, recipe=self.recipe, movies=[i.movie for i in items], own=own
                )
            if bad:
                run = self._first_run(session, sid, raw_dir, folder)
                holes = self._holes(session, raw_dir, folder.groups[0], bad)
                write_movies(
                    session, records=[_movie_record(run, i, holes.get(i.movie)) for i in bad]
                )
                write_failures(session, records=[_failure(run, i) for i in bad])
                for item in bad:
                    if item.movie.name.isprintable():
                        folder.late[item.movie] = run.data_collection_id
        folder.known |= {i.movie for i in good} | {i.movie for i in bad}
        for item in (*good, *bad):  # known now: what was noted while it waited is not needed
            folder.seen.pop(item.movie, None)
        publish(self.transport, messages)
        if bad:
            log.warning("%d movie(s) in %s have no readable metadata", len(bad), raw_dir)
        return len(good), len(bad)

    def _holes(
        self, session: Session, raw_dir: Path, group: _Group, items: list[_Ready]
    ) -> dict[Path, int | None]:
        if self.grid is None:
            return {}
        movies = [i.movie for i in items]
        return self.grid.foil_hole_ids(session, raw_dir, group.data_collection_group_id, movies)

    def _record_unregistrable(self, folder: _Folder, bad: list[_Ready]) -> tuple[int, int]:
        # No readable metadata yet in this folder: wait for a movie that has some.
        for item in bad:
            if item.movie not in folder.unregistrable:
                folder.unregistrable.add(item.movie)
                log.warning("%s (waiting for a movie with readable metadata)", item.why)
        return 0, 0

    def _first_run(self, session: Session, sid: int, raw_dir: Path, folder: _Folder) -> Run:
        group = folder.groups[0]
        if group.run is None:
            group.run = self._open_run(session, sid, raw_dir, group, None)
        return group.run

    def _group(
        self,
        session: Session,
        sid: int,
        raw_dir: Path,
        folder: _Folder,
        item: _Ready,
        batch: list[_Ready],
    ) -> _Group:
        """The optics group (data collection and run) of a movie, created when new."""
        assert item.meta is not None
        optics = Optics.of(item.meta)
        group = next((g for g in folder.groups if g.optics == optics), None)
        group = group or next((g for g in folder.groups if g.optics.matches(optics)), None)
        if group is None:
            group = self._new_group(session, sid, raw_dir, folder, optics, item)
        if group.run is None:
            same = [
                i for i in batch if i.meta is not None and group.optics.matches(Optics.of(i.meta))
            ]
            group.run = self._open_run(session, sid, raw_dir, group, same or [item])
        return group

    def _new_group(
        self,
        session: Session,
        sid: int,
        raw_dir: Path,
        folder: _Folder,
        optics: Optics,
        item: _Ready,
    ) -> _Group:
        meta = item.meta
        assert meta is not None
        first = not folder.groups
        if not first:
            log.warning(
                "%s: the optics changed (%s, was %s): a new data collection",
                raw_dir, optics.key(), folder.groups[0].optics.key(),
            )  # fmt: skip
        dcg_id, dc_id = register_data_collection(
            session,
            spec=DataCollectionSpec(
                session_id=sid,
                image_directory=str(raw_dir),
                file_template=(
                    f"Frames/*{item.movie.suffix}"
                    if meta.source == "serialem"
                    else "Images-Disc*/GridSquare_*/Data/*_fractions.*"
                ),
                voltage_kv=meta.voltage_kv,
                pixel_size_a=meta.pixel_size_a,
                nominal_magnification=meta.nominal_magnification,
                exposure_time_s=meta.exposure_time_s,
                total_exposed_dose_e_per_a2=meta.dose_e_per_a2,
                image_size_x=meta.readout_width_px,
                image_size_y=meta.readout_height_px,
                binning=meta.binning,
                nominal_defocus_a=meta.nominal_defocus_a,
                slit_gap_ev=meta.energy_filter_slit_ev,
                phase_plate=meta.phase_plate_used,
                start_time=_utc(meta.acquired_at),
                optics_key="" if first else optics.key(),
                comments=None if first else optics.note(),
            ),
        )
        group = _Group(optics, dc_id, dcg_id)
        folder.groups.append(group)
        return group

    def _open_run(
        self,
        session: Session,
        sid: int,
        raw_dir: Path,
        group: _Group,
        items: list[_Ready] | None,
    ) -> Run:
        """The automatic run of a group, its parameters from the group's first movies (a run
        re-opened after a restart keeps those it was registered with)."""
        parameters: dict[str, object] = {}
        user = dict(self.defaults)
        if user.get("eer_grouping") is None:
            user.pop("eer_grouping", None)  # None means "choose", not "override with nothing"
        if items:
            meta = items[0].meta
            assert meta is not None
            gain = gain_reference(raw_dir)
            frames = meta.n_fractions or items[0].frames or 1
            dose = meta.dose_e_per_a2 or 40.0
            parameters = {
                "pixel_size_a": meta.pixel_size_a,
                "voltage_kv": meta.voltage_kv,
                "dose_per_frame_e_per_a2": dose / frames,
                "total_dose_e_per_a2": dose,
                "frames": meta.n_fractions,
                "gain_path": str(gain) if gain else None,
            }
            if items[0].movie.suffix.lower() == ".eer":
                parameters |= _eer_parameters(items, dose, user.get("eer_grouping"))
        run = open_run(
            session,
            data_collection_id=group.data_collection_id,
            recipe=self.recipe,
            request_key="automatic",
            raw_dir=raw_dir,
            project_dir=project_dir(self.visit_dir, raw_dir),
            parameters=build_parameters(
                recipe=self.recipe.parameters, collection=parameters, request=user
            ),
            automatic=True,
            display_name=f"{self.recipe.name} (automatic)",
            reopen=not items,
        )
        if items:
            return run
        # re-opened after a restart: the parameters it was registered with
        return load_run(
            session,
            processing_job_id=run.processing_job_id,
            program_id=run.program_id,
            dc_id=group.data_collection_id,
        )

    def _own_values(self, run: Run, item: _Ready) -> dict[str, Any]:
        """The movie's own processing values from its metadata (the user's settings win)."""
        meta = item.meta
        assert meta is not None
        own: dict[str, Any] = {"pixel_size_a": meta.pixel_size_a, "voltage_kv": meta.voltage_kv}
        if item.movie.suffix.lower() == ".eer":
            group = run.parameters.motion.eer_grouping
            if meta.dose_e_per_a2 and isinstance(group, int) and item.frames:
                own["dose_per_frame_e_per_a2"] = meta.dose_e_per_a2 * group / item.frames
                own["total_dose_e_per_a2"] = meta.dose_e_per_a2
        else:
            frames = meta.n_fractions or item.frames
            if meta.n_fractions:
                own["frames"] = meta.n_fractions
            if meta.dose_e_per_a2 and frames:
                own["dose_per_frame_e_per_a2"] = meta.dose_e_per_a2 / frames
                own["total_dose_e_per_a2"] = meta.dose_e_per_a2
        return {k: v for k, v in own.items() if k not in self.defaults}

    # -- metadata that comes late ----------------------------------------------------------

    def _fill_late_metadata(self, raw_dir: Path, folder: _Folder) -> int:
        """Movies registered without their own metadata get it when its file appears: their
        Movie row is updated; one whose registration failed for the lack of it is started."""
        arrived: list[tuple[Path, int, AcquisitionMetadata]] = []
        for movie, dc in list(folder.late.items()):
            if not metadata_file(movie).exists():
                continue
            try:
                meta = read_metadata(movie)
            except MetadataReadError as exc:
                log.warning("late metadata unreadable: %s", exc)
                del folder.late[movie]
                continue
            arrived.append((movie, dc, meta))
        if not arrived:
            return 0
        messages: list[tuple[str, bytes]] = []
        with self.sessions.begin() as session:
            sid = self._session_id(session)
            for movie, dc, meta in arrived:
                group = next((g for g in folder.groups if g.data_collection_id == dc), None)
                if group is None:
                    continue
                item = _Ready(movie, meta)
                if group.run is None:
                    group.run = self._open_run(session, sid, raw_dir, group, None)
                run = group.run
                update_movie_metadata(session, records=[_movie_record(run, item)])
                ref = MovieRef(data_collection_id=dc, movie_full_path=str(movie))
                if retry_failure(session, movie=ref, program_id=run.program_id, stage="register"):
                    own = {movie: self._own_values(run, item)}
                    messages += expect_movies(
                        session, run=run, recipe=self.recipe, movies=[movie], own=own
                    )
                log.info("%s: its metadata came late; filled in", printable(str(movie)))
        for movie, _, _ in arrived:
            folder.late.pop(movie, None)
        publish(self.transport, messages)
        return len(arrived)

    # -- a second chance for movies read while incomplete ----------------------------------

    def _retry_incomplete(self, folder: _Folder) -> int:
        """Movies whose motion correction failed because the file was not whole are tried once
        more when the file, standing still since the last scan, is whole now."""
        runs = [g.run for g in folder.groups if g.run is not None]
        if not runs:
            return 0
        candidates: list[tuple[Run, Path]] = []
        with self.sessions() as session:
            for run in runs:
                for text in failure_descriptions(
                    session, program_id=run.program_id, stage="motioncorr"
                ):
                    movie = _movie_of(text, folder.known)
                    if movie is None or movie in folder.retried or not INCOMPLETE.search(text):
                        continue
                    candidates.append((run, movie))
        due: list[tuple[Run, Path]] = []
        for run, movie in candidates:
            try:
                stat = movie.stat()
            except OSError:
                continue
            now_stat = (stat.st_size, stat.st_mtime)
            if folder.failed.get(movie) != now_stat:
                folder.failed[movie] = now_stat  # look again when it has stood still a scan
                continue
            try:  # the frames the movie's own metadata promises (EER: not checked)
                expected = read_metadata(movie).n_fractions
            except MetadataReadError:
                expected = None
            if check_movie(movie, expected_frames=expected).complete:
                due.append((run, movie))
        if not due:
            return 0
        messages: list[tuple[str, bytes]] = []
        retried = 0
        with self.sessions.begin() as session:
            for run, movie in due:
                folder.retried.add(movie)
                ref = MovieRef(
                    data_collection_id=run.data_collection_id, movie_full_path=str(movie)
                )
                if not retry_failure(
                    session, movie=ref, program_id=run.program_id, stage="motioncorr"
                ):
                    continue  # retried once before (another process, or before a restart)
                again = ledger.reopen(
                    session, key=ledger.work_key(run.program_id, str(movie)), now=_now()
                )
                if again is None:
                    messages += expect_movies(session, run=run, recipe=self.recipe, movies=[movie])
                else:
                    messages.append(again)
                retried += 1
                log.info("%s: whole now; motion correction tried again", printable(str(movie)))
        publish(self.transport, messages)
        return retried


def follow(
    watchers: Sequence[Watcher],
    *,
    poll_s: float,
    stop: threading.Event,
    scan: Callable[[], None],
) -> None:
    """Run the watchers until ``stop``: ``scan`` (every watcher's full scan, and whatever else
    a poll does) every ``poll_s``, and between polls :meth:`Watcher.recheck` when a movie is
    due or inotify reports a file."""
    next_scan = time.time()
    while not stop.is_set():
        now = time.time()
        if now >= next_scan:
            try:
                scan()
            except Exception:  # a database or file-system hiccup: try again next time
                log.exception("watcher scan failed")
            next_scan = time.time() + poll_s
        else:
            for watcher in watchers:
                try:
                    watcher.recheck(now)
                except Exception:
                    log.exception("watcher re-check failed")
        due = [d for d in (w.next_due() for w in watchers) if d is not None]
        _sleep(watchers, min([next_scan, *due]), stop)


def _sleep(watchers: Sequence[Watcher], until: float, stop: threading.Event) -> None:
    """Until ``until``, ``stop``, or an inotify event (then a moment more, so that a movie and
    its metadata written together are taken together)."""
    fds = [fd for fd in (w.fileno() for w in watchers) if fd is not None]
    while not stop.is_set():
        left = until - time.time()
        if left <= 0:
            return
        if not fds:
            stop.wait(left)
            return
        if select.select(fds, [], [], min(left, 0.25))[0]:
            stop.wait(0.05)
            return


def _now() -> float:
    return dt.datetime.now(dt.UTC).timestamp()


def _movie_of(description: str, known: set[Path]) -> Path | None:
    """The registered movie a failure's description (``<path>: <why>``) is about."""
    at = description.find(": ")
    while at != -1:
        candidate = Path(description[:at])
        if candidate in known:
            return candidate
        at = description.find(": ", at + 1)
    return None


def _utc(when: dt.datetime | None) -> dt.datetime | None:
    """An acquisition time as the database keeps it: UTC, without a zone (a time without a
    zone is taken as written)."""
    if when is None or when.tzinfo is None:
        return when
    return when.astimezone(dt.UTC).replace(tzinfo=None)


def _with_hand_optics(
    hand: HandOptics, good: list[_Ready], bad: list[_Ready]
) -> tuple[list[_Ready], list[_Ready]]:
    """Movies without readable metadata become registrable with the hand-entered optics
    (frames from the movie's header when they were not entered)."""
    still_bad = []
    for item in bad:
        if not item.movie.name.isprintable():
            still_bad.append(item)
            continue
        try:
            frames = hand.frames or item.frames or movie_frame_count(item.movie)
        except MovieReadError as exc:
            still_bad.append(_Ready(item.movie, None, f"{item.why}; and no frame count: {exc}"))
            continue
        meta = AcquisitionMetadata(
            source="serialem" if hand.software == "SerialEM" else "epu",
            pixel_size_a=hand.pixel_size_a,
            voltage_kv=hand.voltage_kv,
            exposure_time_s=0.0,
            n_fractions=frames,
            dose_e_per_a2=hand.dose_per_frame_e_per_a2 * frames,
        )
        good.append(_Ready(item.movie, meta, item.why, item.frames))
    return good, still_bad


def _eer_parameters(
    items: list[_Ready], dose_e_per_a2: float, grouping: object
) -> dict[str, object]:
    """Grouping, fraction count and dose per fraction of an EER run, from the first movie whose
    EER frames can be counted. EPU's NumberOffractions is not the EER frame count (EPU writes
    the fractionation of its own output there), so the frames come from the file; the fraction
    count is left open (``frames`` None): it follows from the grouping."""
    for item in items:
        try:
            n_eer = item.frames or movie_frame_count(item.movie)
        except MovieReadError as exc:
            log.warning("%s: cannot count its EER frames (%s); trying the next", item.movie, exc)
            continue
        group = grouping if isinstance(grouping, int) else choose_eer_grouping(n_eer, dose_e_per_a2)
        log.info(
            "%s: %d EER frames, %.1f e/Å²: eer_grouping %d (%.2f e/Å² per fraction)",
            item.movie, n_eer, dose_e_per_a2, group, dose_e_per_a2 * group / n_eer,
        )  # fmt: skip
        return {
            "eer_grouping": group,
            "frames": None,
            "dose_per_frame_e_per_a2": dose_e_per_a2 * group / n_eer,
        }
    log.warning("no EER movie in this batch could be counted; eer_grouping left unset")
    return {"frames": None}


def _movie_record(run: Run, item: _Ready, foil_hole_id: int | None = None) -> MovieRecord:
    ref = MovieRef(data_collection_id=run.data_collection_id, movie_full_path=str(item.movie))
    meta = item.meta
    if meta is None:
        return MovieRecord(movie=ref, foil_hole_id=foil_hole_id)
    return MovieRecord(
        movie=ref,
        foil_hole_id=foil_hole_id,
        created=_utc(meta.acquired_at),
        position_x=meta.stage_x_um,
        position_y=meta.stage_y_um,
        nominal_defocus_a=meta.nominal_defocus_a,
        angle_deg=meta.stage_alpha_deg,
        fluence_e_per_a2=meta.dose_e_per_a2,
        number_of_frames=meta.n_fractions,
    )


def _failure(run: Run, item: _Ready) -> FailureRecord:
    return FailureRecord(
        movie=MovieRef(data_collection_id=run.data_collection_id, movie_full_path=str(item.movie)),
        auto_proc_program_id=run.program_id,
        stage="register",
        reason="metadata" if item.movie.name.isprintable() else "file-name",
        message=item.why,
    )
