"""Simulate a whole visit: grids into raw, raw2 … in the EPU or SerialEM layout, at a rate."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import mrcfile
import numpy as np
from scipy import ndimage

from cryolive.io.maps import write_map
from cryolive.simulate._config import MovieFormat, VisitConfig
from cryolive.simulate._epu_paths import EpuGrid, movie_suffix, raw_folder_name, serialem_paths
from cryolive.simulate._grid import plan_grid
from cryolive.simulate._layout import ImageRecord, epu_image_xml, serialem_mdoc
from cryolive.simulate._movie import DetectorState, make_detector, write_movie
from cryolive.simulate._render import ExposurePlan, ExposureRenderer, plan_exposure
from cryolive.simulate._specimen import (
    Specimen,
    procedural_specimen,
    specimen_from_map,
    specimen_from_model,
)
from cryolive.simulate._truth import (
    FaultTruth,
    GainTruth,
    GridSquareTruth,
    GridTruth,
    MovieTruth,
    NonMovieTruth,
    VisitTruth,
)
from cryolive.simulate._truth_movie import movie_truth
from cryolive.simulate._writers import Pacer, write_gain_reference

Progress = Callable[[int, int], None]


def load_specimens(config: VisitConfig) -> tuple[list[Specimen], np.ndarray]:
    """Build every species of the config, with their relative abundances."""
    out = []
    for spec in config.specimens:
        if spec.model is not None:
            out.append(specimen_from_model(spec.model, name=spec.name))
        elif spec.map is not None:
            out.append(specimen_from_map(spec.map, name=spec.name))
        else:
            seed = 1 if spec.seed is None else spec.seed
            out.append(
                procedural_specimen(
                    seed=seed, n_residues=spec.n_residues, radius_a=spec.radius_a, name=spec.name
                )
            )
    return out, np.array([s.abundance for s in config.specimens])


def simulate_visit(
    config: VisitConfig, out_dir: Path | str, *, progress: Progress | None = None
) -> VisitTruth:
    """Write a simulated visit into ``out_dir`` and its ground truth to ``out_dir/truth.json``.

    Parameters
    ----------
    config
        The visit (grids, movies, detector, physics, faults, rate).
    out_dir
        The visit folder; created if needed. Grid i goes into ``raw``, ``raw2`` ….
    progress
        Called as ``progress(movies_done, movies_total)`` after each movie.

    Returns
    -------
    VisitTruth
        What was planted, as written to ``truth.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fmt = config.movie_format
    if fmt == "eer" and config.movie.noiseless:
        raise ValueError("movie.noiseless: EER records single electrons and cannot be noiseless")
    if fmt == "eer":
        movie = config.movie
        per_frame = movie.dose_e_per_a2 * config.pixel_size**2 / movie.n_frames
        per_frame /= movie.eer_frames_per_fraction
        if per_frame > 0.25:
            raise ValueError(
                f"movie.eer_frames_per_fraction: {per_frame:.2f} e/px per EER frame is more than "
                "a counting detector resolves (at most one event per pixel and frame); use more"
            )
    specimens, abundances = load_specimens(config)
    interval_s = 3600.0 / (config.rate_per_hour or 600.0)
    total = config.n_grids * config.movies_per_grid
    clock0 = time.monotonic()
    grids: list[GridTruth] = []
    faults: list[FaultTruth] = []
    later = _Later(paced=config.rate_per_hour is not None)
    done = 0
    per_square = config.movies_per_foil_hole * config.foil_holes_per_square
    for g in range(config.n_grids):
        rng = np.random.default_rng([config.seed, g])
        layout_rng = np.random.default_rng([config.seed, g, 2**20])
        raw = out / raw_folder_name(g)
        raw.mkdir(exist_ok=True)
        detector = make_detector(config.frame_shape, config.movie, rng)
        gain_truth = _write_gain(raw, config, detector, rng, faults)
        n_squares = -(-config.movies_per_grid // per_square)
        optics_of_square = [
            int(s > 0 and layout_rng.uniform() < config.faults.optics_change)
            for s in range(n_squares)
        ]
        plan = plan_grid(
            grid=g,
            n_squares=n_squares,
            holes_per_square=config.foil_holes_per_square,
            optics_of_square=optics_of_square,
            rng=layout_rng,
        )
        epu = EpuGrid(out, raw, config, g, plan)
        if config.layout == "epu":
            epu.write_session(layout_rng)
            for square in plan.squares:
                if square.optics:
                    faults.append(
                        FaultTruth(
                            kind="optics_change",
                            path=str(
                                Path(raw.name) / "Images-Disc1" / f"GridSquare_{square.label}"
                            ),
                            detail="collected with alternate_optics (pixel size, defocus, dose)",
                        )
                    )
        movies: list[MovieTruth] = []
        non_movies: list[NonMovieTruth] = []
        for m in range(config.movies_per_grid):
            if config.rate_per_hour:
                delay = clock0 + done * interval_s - time.monotonic()
                if delay > 0:
                    later.run_due()
                    time.sleep(max(delay, 0.0))
            later.run_due()
            square = plan.squares[m // per_square]
            hole = square.holes[(m % per_square) // config.movies_per_foil_hole]
            shot = m % config.movies_per_foil_hole
            setting = config.alternate_optics if square.optics else None
            movie_config = config.movie
            pixel_size = config.pixel_size
            magnification = 105_000
            if setting is not None:
                movie_config = movie_config.model_copy(
                    update={
                        "defocus_range_a": setting.defocus_range_a,
                        "dose_e_per_a2": setting.dose_e_per_a2,
                    }
                )
                pixel_size *= setting.pixel_size_scale
                magnification = setting.magnification
            mrng = np.random.default_rng([config.seed, g, m])
            plan_m = plan_exposure(
                movie_config,
                specimens,
                abundances,
                shape_px=config.frame_shape,
                pixel_size_a=pixel_size,
                rng=mrng,
            )
            acquired = config.start_time + timedelta(seconds=done * interval_s)
            # Draws kept in the order they had before the EPU session files were written, so
            # that a seed plants the same movies and faults as it did (tests rely on it).
            drawn_stage = (float(mrng.uniform(-900, 900)), float(mrng.uniform(-900, 900)), 0.0)
            if config.layout == "epu":
                for _ in range((m % per_square == 0) + (shot == 0)):
                    mrng.standard_normal((64, 64))
            frng = np.random.default_rng([config.seed, g, m, 1])  # the files around it
            record = ImageRecord(
                pixel_size_a=pixel_size,
                voltage_kv=movie_config.voltage_kv,
                exposure_time_s=movie_config.exposure_time_s,
                dose_e_per_a2=movie_config.dose_e_per_a2,
                nominal_defocus_a=float(
                    round((plan_m.defocus_u_a + plan_m.defocus_v_a) / 2000) * 1000
                ),
                magnification=magnification,
                n_fractions=movie_config.n_frames,
                shape_px=config.frame_shape,
                stage_um=hole.stage_um if config.layout == "epu" else drawn_stage,
                acquired_at=acquired,
                detector=config.camera.commercial_name,
                phase_plate=movie_config.phase_shift_deg is not None,
                image_shift=(0.1 * shot, -0.1 * shot),
            )
            if config.layout == "epu":
                if m % per_square == 0:
                    epu.start_square(square, record, layout_rng)
                if shot == 0:
                    epu.start_hole(square, hole, record, layout_rng)
                stem = epu.acquisition(square, hole, shot, acquired)
                movie_path = stem.with_name(stem.name + movie_suffix(config))
                meta_path = stem.with_name(stem.name + ".xml")
            else:
                movie_path, meta_path = serialem_paths(raw, config, m)
            fault = _draw_fault(config, mrng, fmt)
            delivery = _draw_delivery(config, frng)
            renderer = ExposureRenderer(plan_m, movie_config, specimens, rng=mrng)
            pacer = Pacer(config.write_fraction * interval_s if config.rate_per_hour else 0.0)
            shape, planted = write_movie(
                movie_path,
                renderer,
                detector,
                movie_config,
                fmt=fmt,
                fault=fault,
                pacer=pacer,
                rng=mrng,
            )
            meta_text = (
                epu_image_xml(record)
                if config.layout == "epu"
                else serialem_mdoc(record, image_file=movie_path.name)
            )
            if fault == "corrupt_xml":
                meta_text = meta_text[: len(meta_text) // 2]
                faults.append(
                    FaultTruth(
                        kind="corrupt_xml",
                        path=str(meta_path.relative_to(out)),
                        detail="metadata cut to half its length",
                    )
                )
            relative = str(movie_path.relative_to(out))
            if "stalled_writer" in delivery:
                rest = _stall(movie_path)
                later.add(config.faults.stall_s, functools.partial(_append, movie_path, rest))
                faults.append(
                    FaultTruth(
                        kind="stalled_writer",
                        path=relative,
                        detail=f"half written; the rest {config.faults.stall_s:g} s later",
                    )
                )
            if "late_metadata" in delivery:
                later.add(
                    config.faults.metadata_delay_s,
                    functools.partial(meta_path.write_text, meta_text),
                )
                faults.append(
                    FaultTruth(
                        kind="late_metadata",
                        path=str(meta_path.relative_to(out)),
                        detail=f"written {config.faults.metadata_delay_s:g} s after the movie",
                    )
                )
            else:
                meta_path.write_text(meta_text)
            if config.layout == "epu":
                epu.thumbnail(stem, frng)
                non_movies += _non_movies(out, config, stem, movie_path, meta_text, frng)
            if planted is not None:
                faults.append(FaultTruth(kind=planted.kind, path=relative, detail=planted.detail))
            truth_m = movie_truth(
                plan_m,
                renderer,
                config,
                specimens,
                record,
                movie_path=movie_path.relative_to(out),
                meta_path=meta_path.relative_to(out),
                shape=shape,
            )
            movies.append(
                truth_m.model_copy(
                    update={
                        "dose_e_per_a2": movie_config.dose_e_per_a2,
                        "grid_square": square.label if config.layout == "epu" else None,
                        "foil_hole": hole.label if config.layout == "epu" else None,
                        "optics_setting": square.optics,
                        "delivery": delivery,
                    }
                )
            )
            done += 1
            if progress is not None:
                progress(done, total)
        if config.rate_per_hour is None:
            later.run_all()  # late files of a grid land before the next grid starts
        grids.append(
            GridTruth(
                raw_folder=raw.name,
                gain=gain_truth,
                movies=movies,
                atlas=None if epu.atlas is None else str(epu.atlas.relative_to(out)),
                grid_squares=[
                    GridSquareTruth(
                        label=s.label,
                        optics_setting=s.optics,
                        atlas_xy_px=s.atlas_xy,
                        stage_um=s.stage_um,
                        foil_holes=[h.label for h in s.holes],
                    )
                    for s in plan.squares
                ]
                if config.layout == "epu"
                else [],
                non_movies=non_movies,
            )
        )
    later.run_all()
    for grid in grids:
        for item in grid.non_movies:
            faults.append(FaultTruth(kind=item.kind, path=item.path, detail="not a movie"))
    truth = VisitTruth(
        visit=config.visit,
        detector=config.detector,
        layout=config.layout,
        config=config.model_dump(mode="json"),
        grids=grids,
        faults=faults,
    )
    truth.write(out / "truth.json")
    write_truth_map(out / "truth" / "map.mrc", specimens[int(np.argmax(abundances))])
    return truth


TRUTH_MAP_VOXEL_A = 2.0


def write_truth_map(path: Path, specimen: Specimen, *, voxel_a: float = TRUTH_MAP_VOXEL_A) -> Path:
    """The map the most abundant specimen's particles are projections of, for the daily check:
    its atoms' phases (rad·Å²) binned onto a grid of ``voxel_a`` and smoothed by a Gaussian of
    one voxel, in a box of 2.4 times its radius. Its orientation and hand are the specimen's
    coordinates'; the check aligns a refined map to it (either hand)."""
    box = 2 * int(np.ceil(1.2 * specimen.radius_a / voxel_a)) + 4
    edges = (np.arange(box + 1) - box / 2 - 0.5) * voxel_a  # the origin: voxel box // 2
    zyx = specimen.coords_a[:, ::-1]  # x, y, z columns → z, y, x axes
    volume, _ = np.histogramdd(zyx, bins=(edges, edges, edges), weights=specimen.phase_rad_a2)
    smooth = ndimage.gaussian_filter(volume, 1.0) / voxel_a**3
    return write_map(path, smooth.astype(np.float32), pixel_size_a=voxel_a)


class _Later:
    """Writes that land later than the movie (late metadata, a stalled writer's rest): due
    after a delay when the visit is written at a rate, else when the grid is done."""

    def __init__(self, *, paced: bool) -> None:
        self.paced = paced
        self._pending: list[tuple[float, Callable[[], object]]] = []

    def add(self, delay_s: float, write: Callable[[], object]) -> None:
        self._pending.append((time.monotonic() + delay_s, write))

    def run_due(self) -> None:
        if not self.paced:
            return
        now = time.monotonic()
        due = [p for p in self._pending if p[0] <= now]
        self._pending = [p for p in self._pending if p[0] > now]
        for _, write in due:
            write()

    def run_all(self) -> None:
        for due, write in sorted(self._pending, key=lambda p: p[0]):
            if self.paced:
                time.sleep(max(due - time.monotonic(), 0.0))
            write()
        self._pending = []


def _stall(path: Path) -> bytes:
    """Cut ``path`` to half its length (as a stalled writer leaves it); the rest is returned."""
    data = path.read_bytes()
    half = len(data) // 2
    path.write_bytes(data[:half])
    return data[half:]


def _append(path: Path, rest: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(rest)


def _draw_delivery(config: VisitConfig, rng: np.random.Generator) -> list[str]:
    f = config.faults
    draws = rng.uniform(size=2)
    out = []
    if draws[0] < f.late_metadata:
        out.append("late_metadata")
    if draws[1] < f.stalled_writer:
        out.append("stalled_writer")
    return out


def _non_movies(
    out: Path,
    config: VisitConfig,
    stem: Path,
    movie: Path,
    meta_text: str,
    rng: np.random.Generator,
) -> list[NonMovieTruth]:
    """EPU's integrated image beside the movie (always for a Falcon), and a link to a movie
    of another visit (``foreign_symlink``), each with the truth that it is no movie."""
    found = []
    draws = rng.uniform(size=2)
    relative = str(movie.relative_to(out))
    if config.camera.is_falcon or draws[0] < config.faults.integrated_image:
        image = stem.with_name(stem.name + ".mrc")
        ny, nx = config.frame_shape
        summed = rng.poisson(8.0, size=(ny, nx)).astype(np.float32)
        with mrcfile.new(image, overwrite=True) as mrc:
            mrc.set_data(summed)
        found.append(
            NonMovieTruth(
                path=str(image.relative_to(out)), kind="integrated_image", of_movie=relative
            )
        )
    if draws[1] < config.faults.foreign_symlink:
        elsewhere = out.parent / f"{out.name}-other-visit" / movie.relative_to(out).parent
        elsewhere.mkdir(parents=True, exist_ok=True)
        target = elsewhere / movie.name
        target.write_bytes(movie.read_bytes())
        name = stem.name.replace("_Data_", "_Data_1", 1)
        link = stem.with_name(name + movie_suffix(config))
        link.symlink_to(target)
        stem.with_name(name + ".xml").write_text(meta_text)
        found.append(
            NonMovieTruth(
                path=str(link.relative_to(out)), kind="foreign_symlink", of_movie=relative
            )
        )
    return found


def _write_gain(
    raw: Path,
    config: VisitConfig,
    detector: DetectorState,
    rng: np.random.Generator,
    faults: list[FaultTruth],
) -> GainTruth:
    path = raw / f"gain_reference{config.camera.gain_suffix}"
    t = detector.transform
    if rng.uniform() < config.faults.missing_gain:
        faults.append(
            FaultTruth(
                kind="missing_gain",
                path=str(Path(raw.name) / path.name),
                detail="gain reference not written",
            )
        )
        return GainTruth(path=None, rotate_deg=t.rotate_deg, flip=t.flip)
    write_gain_reference(path, detector.gain_as_stored(), pixel_size_a=config.pixel_size)
    return GainTruth(path=str(Path(raw.name) / path.name), rotate_deg=t.rotate_deg, flip=t.flip)


def _draw_fault(config: VisitConfig, rng: np.random.Generator, fmt: MovieFormat) -> str | None:
    rates = config.faults.per_movie()
    u = rng.uniform()
    for kind, rate in rates.items():
        if u < rate:
            if kind == "nan_pixels" and fmt != "mrc":
                return "saturated_pixels"  # integer TIFF/EER cannot hold NaN
            return kind
        u -= rate
    return None


__all__ = [
    "ExposurePlan",
    "load_specimens",
    "raw_folder_name",
    "simulate_visit",
    "write_truth_map",
]
