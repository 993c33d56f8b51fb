"""The watcher: finds the movies a microscope writes into a visit folder and starts their
processing.

It polls (network file systems give no reliable events): every raw folder (``raw``, ``raw2`` …)
becomes one data collection with its automatic processing run; a movie counts once it is
complete — its metadata has appeared (EPU's ``.xml`` beside ``Data/*_fractions.*``, written
after the movie, or SerialEM's ``Frames/<movie>.mdoc``) and its size has not changed since the
last scan, or, without metadata, its size and time stamp have stood still for
``settle_s`` seconds. Each movie is registered once: what the database already holds is not
registered again after a restart.

For EER movies the run's ``eer_grouping`` is chosen from the dose (each fraction 0.5-1.0 e/Å²,
see :mod:`cryolive.services.eer_grouping`) unless the user set it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from cryolive.db.records import FailureRecord, MovieRecord, MovieRef
from cryolive.db.repo.collections import DataCollectionSpec, register_data_collection
from cryolive.db.repo.manual import HandOptics, hand_optics
from cryolive.db.repo.pipeline import write_failures
from cryolive.db.repo.results import write_movies
from cryolive.db.repo.visits import ensure_visit
from cryolive.errors import printable
from cryolive.io import AcquisitionMetadata, MetadataReadError, MovieReadError
from cryolive.io.epu import read_epu_xml
from cryolive.io.layout import project_dir
from cryolive.io.mdoc import read_mdoc
from cryolive.io.movies import MOVIE_SUFFIXES, movie_frame_count
from cryolive.messaging.recipe import Recipe
from cryolive.messaging.transport import Transport
from cryolive.params import build_parameters
from cryolive.services.eer_grouping import choose_eer_grouping, eer_frame_count
from cryolive.services.grid_scan import GridScanner
from cryolive.services.runs import Run, expect_movies, open_run, publish, registered_movies

log = logging.getLogger(__name__)
RAW_FOLDER = re.compile(r"^raw\d*$")
GAIN_NAMES = ("gain", "Gain", "GAIN")


def _epu_xml(movie: Path) -> Path:
    stem = movie.stem.removesuffix("_fractions").removesuffix("_EER")
    return movie.with_name(stem + ".xml")


def metadata_file(movie: Path) -> Path:
    """The movie's metadata: SerialEM's ``<movie>.mdoc`` when there is one, else EPU's
    ``.xml`` (which may not exist yet)."""
    mdoc = movie.with_name(movie.name + ".mdoc")
    return mdoc if mdoc.exists() else _epu_xml(movie)


def read_metadata(movie: Path) -> AcquisitionMetadata:
    path = metadata_file(movie)
    return read_mdoc(path) if path.suffix == ".mdoc" else read_epu_xml(path)


def movie_files(raw_dir: Path) -> Iterator[Path]:
    """Movies below a raw folder: EPU ``Data/`` folders, or SerialEM ``Frames/``."""
    for path in sorted(raw_dir.rglob("*")):
        # Not only regular files: a directory, pipe or dangling link named like a movie is a
        # movie that cannot be read, and gets its recorded failure like any other.
        if path.suffix.lower() not in MOVIE_SUFFIXES:
            continue
        if path.parent.name in ("Data", "Frames") and not any(g in path.name for g in GAIN_NAMES):
            yield path


def gain_reference(raw_dir: Path) -> Path | None:
    found = sorted(p for p in raw_dir.iterdir() if p.is_file() and "gain" in p.name.lower())
    return found[0] if found else None


@dataclass
class _Folder:
    run: Run | None = None
    known: set[Path] = field(default_factory=set)
    sizes: dict[Path, tuple[int, float]] = field(default_factory=dict)
    since: dict[Path, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ScanReport:
    registered: int
    failed: int
    waiting: int


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
        Seconds a movie without metadata must stand still before it counts as complete.
    defaults
        Processing parameters that the metadata does not give (cs, amplitude contrast …).
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
        microscope: str = "",
        defaults: dict[str, object] | None = None,
        atlas_roots: tuple[Path, ...] = (),
    ) -> None:
        self.visit_dir, self.visit = visit_dir, visit
        self.sessions, self.transport, self.recipe = sessions, transport, recipe
        self.settle_s, self.microscope = settle_s, microscope
        self.defaults = dict(defaults or {})
        self._folders: dict[Path, _Folder] = {}
        self.grid = GridScanner(sessions, visit_dir, atlas_roots=atlas_roots)  # atlas, squares

    def raw_folders(self) -> list[Path]:
        if not self.visit_dir.is_dir():
            return []
        return sorted(
            p for p in self.visit_dir.iterdir() if p.is_dir() and RAW_FOLDER.match(p.name)
        )

    def scan_once(self, now: float) -> ScanReport:
        """Register and start every movie that has become complete since the last scan."""
        registered = failed = waiting = 0
        for raw_dir in self.raw_folders():
            folder = self._folders.setdefault(raw_dir, _Folder())
            complete = []
            for movie in movie_files(raw_dir):
                if movie in folder.known:
                    continue
                if self._complete(folder, movie, now):
                    complete.append(movie)
                else:
                    waiting += 1
            if complete:
                r, f = self._register(raw_dir, folder, complete)
                registered, failed = registered + r, failed + f
            if folder.run is not None:
                self.grid.scan(raw_dir, self.grid.group_of(folder.run.data_collection_id))
        return ScanReport(registered, failed, waiting)

    def _complete(self, folder: _Folder, movie: Path, now: float) -> bool:
        try:
            stat = movie.stat()
        except OSError:
            try:
                stat = movie.lstat()  # a dangling link: its target will never come
            except OSError:
                return False
        size = (stat.st_size, stat.st_mtime)
        if folder.sizes.get(movie) != size:
            folder.sizes[movie], folder.since[movie] = size, now
            return False  # changed since the last scan (or first seen): look again next time
        if metadata_file(movie).exists():
            return True
        return now - folder.since[movie] >= self.settle_s

    def _register(self, raw_dir: Path, folder: _Folder, movies: list[Path]) -> tuple[int, int]:
        good: list[tuple[Path, AcquisitionMetadata]] = []
        bad: list[tuple[Path, str]] = []
        for movie in movies:
            if not movie.name.isprintable():
                why = "the file name holds a newline or control characters; rename the file"
                bad.append((movie, f"{printable(str(movie))}: {why}"))
                continue
            try:
                good.append((movie, read_metadata(movie)))
            except MetadataReadError as exc:
                bad.append((movie, str(exc)))
        with self.sessions.begin() as session:
            if bad:  # no metadata of their own: the optics entered by hand, if any
                hand = hand_optics(
                    session,
                    session_id=ensure_visit(session, visit=self.visit, microscope=self.microscope),
                    raw_dir=str(raw_dir),
                )
                if hand is not None:
                    good, bad = _with_hand_optics(hand, good, bad)
            if folder.run is None:
                if not good:
                    return self._record_unregistrable(session, raw_dir, bad)
                folder.run = self._open_run(session, raw_dir, good)
                folder.known |= set(
                    registered_movies(session, data_collection_id=folder.run.data_collection_id)
                )
            run = folder.run
            good = [(m, meta) for m, meta in good if m not in folder.known]
            bad = [(m, why) for m, why in bad if m not in folder.known]
            group = self.grid.group_of(run.data_collection_id, session)
            hole = self.grid.foil_hole_ids(session, raw_dir, group, [m for m, *_ in good + bad])
            write_movies(
                session, records=[_movie_record(run, m, meta, hole[m]) for m, meta in good]
            )
            write_movies(session, records=[_movie_record(run, m, None, hole[m]) for m, _ in bad])
            write_failures(session, records=[_failure(run, m, why) for m, why in bad])
            messages = expect_movies(
                session, run=run, recipe=self.recipe, movies=[m for m, _ in good]
            )
        folder.known |= {m for m, _ in good} | {m for m, _ in bad}
        publish(self.transport, messages)
        if bad:
            log.warning("%d movie(s) in %s have unreadable metadata", len(bad), raw_dir)
        return len(good), len(bad)

    def _record_unregistrable(
        self, session: Session, raw_dir: Path, bad: list[tuple[Path, str]]
    ) -> tuple[int, int]:
        # No readable metadata yet in this folder: wait for a movie that has some.
        for movie, why in bad:
            log.warning("%s: %s (waiting for a movie with readable metadata)", movie, why)
        return 0, 0

    def _open_run(
        self, session: Session, raw_dir: Path, good: list[tuple[Path, AcquisitionMetadata]]
    ) -> Run:
        movie, meta = good[0]
        session_id = ensure_visit(session, visit=self.visit, microscope=self.microscope)
        _, dc_id = register_data_collection(
            session,
            spec=DataCollectionSpec(
                session_id=session_id,
                image_directory=str(raw_dir),
                file_template=(
                    f"Frames/*{movie.suffix}"
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
                start_time=meta.acquired_at,
            ),
        )
        gain = gain_reference(raw_dir)
        frames = meta.n_fractions or 1
        dose = meta.dose_e_per_a2 or 40.0
        user = dict(self.defaults)
        if user.get("eer_grouping") is None:
            user.pop("eer_grouping", None)  # None means "choose", not "override with nothing"
        parameters: dict[str, object] = {
            "pixel_size_a": meta.pixel_size_a,
            "voltage_kv": meta.voltage_kv,
            "dose_per_frame_e_per_a2": dose / frames,
            "total_dose_e_per_a2": dose,
            "frames": meta.n_fractions,
            "gain_path": str(gain) if gain else None,
        }
        if movie.suffix.lower() == ".eer":
            parameters |= _eer_parameters(good, dose, user.get("eer_grouping"))
        return open_run(
            session,
            data_collection_id=dc_id,
            recipe=self.recipe,
            request_key="automatic",
            raw_dir=raw_dir,
            project_dir=project_dir(self.visit_dir, raw_dir),
            parameters=build_parameters(
                recipe=self.recipe.parameters, collection=parameters, request=user
            ),
            automatic=True,
            display_name=f"{self.recipe.name} (automatic)",
        )


def _with_hand_optics(
    hand: HandOptics,
    good: list[tuple[Path, AcquisitionMetadata]],
    bad: list[tuple[Path, str]],
) -> tuple[list[tuple[Path, AcquisitionMetadata]], list[tuple[Path, str]]]:
    """Movies without readable metadata become registrable with the hand-entered optics
    (frames from the movie's header when they were not entered)."""
    still_bad = []
    for movie, why in bad:
        try:
            frames = hand.frames or movie_frame_count(movie)
        except MovieReadError as exc:
            still_bad.append((movie, f"{why}; and no frame count: {exc}"))
            continue
        meta = AcquisitionMetadata(
            source="serialem" if hand.software == "SerialEM" else "epu",
            pixel_size_a=hand.pixel_size_a,
            voltage_kv=hand.voltage_kv,
            exposure_time_s=0.0,
            n_fractions=frames,
            dose_e_per_a2=hand.dose_per_frame_e_per_a2 * frames,
        )
        good.append((movie, meta))
    return good, still_bad


def _eer_parameters(
    good: list[tuple[Path, AcquisitionMetadata]], dose_e_per_a2: float, grouping: object
) -> dict[str, object]:
    """Grouping, fraction count and dose per fraction of an EER run, from the first movie whose
    EER frames can be counted. EPU's NumberOffractions is not the EER frame count (EPU writes
    the fractionation of its own output there), so the frames come from the file; the fraction
    count is left open (``frames`` None): it follows from the grouping."""
    for movie, _ in good:
        try:
            n_eer = eer_frame_count(movie)
        except MovieReadError as exc:
            log.warning("%s: cannot count its EER frames (%s); trying the next movie", movie, exc)
            continue
        group = grouping if isinstance(grouping, int) else choose_eer_grouping(n_eer, dose_e_per_a2)
        log.info(
            "%s: %d EER frames, %.1f e/Å²: eer_grouping %d (%.2f e/Å² per fraction)",
            movie, n_eer, dose_e_per_a2, group, dose_e_per_a2 * group / n_eer,
        )  # fmt: skip
        return {
            "eer_grouping": group,
            "frames": None,
            "dose_per_frame_e_per_a2": dose_e_per_a2 * group / n_eer,
        }
    log.warning("no EER movie in this batch could be counted; eer_grouping left unset")
    return {"frames": None}


def _movie_record(
    run: Run, movie: Path, meta: AcquisitionMetadata | None, foil_hole_id: int | None = None
) -> MovieRecord:
    ref = MovieRef(data_collection_id=run.data_collection_id, movie_full_path=str(movie))
    if meta is None:
        return MovieRecord(movie=ref, foil_hole_id=foil_hole_id)
    return MovieRecord(
        movie=ref,
        foil_hole_id=foil_hole_id,
        created=meta.acquired_at,
        position_x=meta.stage_x_um,
        position_y=meta.stage_y_um,
        nominal_defocus_a=meta.nominal_defocus_a,
        angle_deg=meta.stage_alpha_deg,
        fluence_e_per_a2=meta.dose_e_per_a2,
        number_of_frames=meta.n_fractions,
    )


def _failure(run: Run, movie: Path, why: str) -> FailureRecord:
    return FailureRecord(
        movie=MovieRef(data_collection_id=run.data_collection_id, movie_full_path=str(movie)),
        auto_proc_program_id=run.program_id,
        stage="register",
        reason="metadata" if movie.name.isprintable() else "file-name",
        message=why,
    )
