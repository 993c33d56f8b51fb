"""Simulate a whole visit: grids into raw, raw2 … in the EPU or SerialEM layout, at a rate."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np

from cryolive.simulate._config import MovieFormat, VisitConfig
from cryolive.simulate._epu_paths import movie_paths, raw_folder_name
from cryolive.simulate._layout import ImageRecord, epu_image_xml, epu_session_dm, serialem_mdoc
from cryolive.simulate._movie import DetectorState, make_detector, write_movie
from cryolive.simulate._render import ExposurePlan, ExposureRenderer, plan_exposure
from cryolive.simulate._specimen import (
    Specimen,
    procedural_specimen,
    specimen_from_map,
    specimen_from_model,
)
from cryolive.simulate._truth import FaultTruth, GainTruth, GridTruth, VisitTruth
from cryolive.simulate._truth_movie import movie_truth
from cryolive.simulate._writers import Pacer, write_gain_reference

Progress = Callable[[int, int], None]
_OUTPUT_FORMAT = {"tiff": "Tiff Lzw Non-Gain normalized", "mrc": "Mrc", "eer": "EER"}


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
    done = 0
    for g in range(config.n_grids):
        rng = np.random.default_rng([config.seed, g])
        raw = out / raw_folder_name(g)
        raw.mkdir(exist_ok=True)
        detector = make_detector(config.frame_shape, config.movie, rng)
        gain_truth = _write_gain(raw, config, detector, rng, faults)
        per_square = config.movies_per_foil_hole * config.foil_holes_per_square
        n_squares = -(-config.movies_per_grid // per_square)
        square_ids = [8_999_000 + 1000 * g + 10 * s for s in range(n_squares)]
        if config.layout == "epu":
            (raw / "EpuSession.dm").write_text(
                epu_session_dm(
                    name=f"{config.visit}_grid{g + 1}_EPU",
                    started=config.start_time,
                    grid_squares=square_ids,
                    output_format=_OUTPUT_FORMAT[fmt],
                )
            )
        movies = []
        for m in range(config.movies_per_grid):
            if config.rate_per_hour:
                delay = clock0 + done * interval_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            mrng = np.random.default_rng([config.seed, g, m])
            plan = plan_exposure(
                config.movie,
                specimens,
                abundances,
                shape_px=config.frame_shape,
                pixel_size_a=config.pixel_size,
                rng=mrng,
            )
            acquired = config.start_time + timedelta(seconds=done * interval_s)
            record = ImageRecord(
                pixel_size_a=config.pixel_size,
                voltage_kv=config.movie.voltage_kv,
                exposure_time_s=config.movie.exposure_time_s,
                dose_e_per_a2=config.movie.dose_e_per_a2,
                nominal_defocus_a=float(round((plan.defocus_u_a + plan.defocus_v_a) / 2000) * 1000),
                magnification=105_000,
                n_fractions=config.movie.n_frames,
                shape_px=config.frame_shape,
                stage_um=(float(mrng.uniform(-900, 900)), float(mrng.uniform(-900, 900)), 0.0),
                acquired_at=acquired,
                detector=config.camera.commercial_name,
                phase_plate=config.movie.phase_shift_deg is not None,
            )
            movie_path, meta_path = movie_paths(raw, config, g, m, record, square_ids, mrng)
            fault = _draw_fault(config, mrng, fmt)
            renderer = ExposureRenderer(plan, config.movie, specimens, rng=mrng)
            pacer = Pacer(config.write_fraction * interval_s if config.rate_per_hour else 0.0)
            shape, planted = write_movie(
                movie_path,
                renderer,
                detector,
                config.movie,
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
                planted_kind, detail = "corrupt_xml", "metadata cut to half its length"
                faults.append(
                    FaultTruth(
                        kind=planted_kind, path=str(meta_path.relative_to(out)), detail=detail
                    )
                )
            meta_path.write_text(meta_text)
            if planted is not None:
                faults.append(
                    FaultTruth(
                        kind=planted.kind,
                        path=str(movie_path.relative_to(out)),
                        detail=planted.detail,
                    )
                )
            movies.append(
                movie_truth(
                    plan,
                    renderer,
                    config,
                    specimens,
                    record,
                    movie_path=movie_path.relative_to(out),
                    meta_path=meta_path.relative_to(out),
                    shape=shape,
                )
            )
            done += 1
            if progress is not None:
                progress(done, total)
        grids.append(GridTruth(raw_folder=raw.name, gain=gain_truth, movies=movies))
    truth = VisitTruth(
        visit=config.visit,
        detector=config.detector,
        layout=config.layout,
        config=config.model_dump(mode="json"),
        grids=grids,
        faults=faults,
    )
    truth.write(out / "truth.json")
    return truth


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


__all__ = ["ExposurePlan", "load_specimens", "raw_folder_name", "simulate_visit"]
