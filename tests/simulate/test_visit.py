"""A simulated visit: layout, gain orientation, faults exactly as listed, progressive writes."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cryolive.engines.motion import GainTransform
from cryolive.io import MetadataReadError, MovieReadError
from cryolive.io.epu import read_epu_xml
from cryolive.io.gain import read_gain
from cryolive.io.mdoc import read_mdoc
from cryolive.io.movies import read_movie
from cryolive.simulate import FaultRates, MovieConfig, VisitConfig, VisitTruth, simulate_visit

TINY = MovieConfig(n_frames=4, particle_density=0.1)


def test_epu_layout_of_several_grids_and_its_metadata(tmp_path: Path) -> None:
    config = VisitConfig(n_grids=3, movies_per_grid=2, movie=TINY, seed=1)
    truth = simulate_visit(config, tmp_path)
    assert [g.raw_folder for g in truth.grids] == ["raw", "raw2", "raw3"]
    assert VisitTruth.read(tmp_path / "truth.json") == truth
    for grid in truth.grids:
        raw = tmp_path / grid.raw_folder
        assert (raw / "EpuSession.dm").is_file()
        squares = list((raw / "Images-Disc1").glob("GridSquare_*"))
        assert squares and list(squares[0].glob("GridSquare_*.xml"))
        assert list(squares[0].glob("GridSquare_*.jpg"))
        assert list((squares[0] / "FoilHoles").glob("FoilHole_*.xml"))
        for movie in grid.movies:
            name = Path(movie.movie).name
            assert name.startswith("FoilHole_") and name.endswith("_fractions.tiff")
            assert "_Data_" in name
            meta = read_epu_xml(tmp_path / movie.metadata)
            assert meta.n_fractions == 4
            assert meta.pixel_size_a == pytest.approx(movie.pixel_size_a)
            assert meta.dose_e_per_a2 == pytest.approx(movie.dose_e_per_a2)
            assert meta.nominal_defocus_a == pytest.approx(movie.nominal_defocus_a)
            assert abs(meta.nominal_defocus_a - movie.defocus_u_a) < 1000
            frames = read_movie(tmp_path / movie.movie, expected_frames=meta.n_fractions)
            assert frames.shape == tuple(movie.shape_px)
            assert movie.particles and all(p.species == "procedural-1" for p in movie.particles)


def test_serialem_layout_writes_frames_and_mdoc(tmp_path: Path) -> None:
    truth = simulate_visit(VisitConfig(layout="serialem", movies_per_grid=2, movie=TINY), tmp_path)
    for movie in truth.grids[0].movies:
        assert movie.movie.startswith("raw/Frames/") and movie.movie.endswith(".tif")
        meta = read_mdoc(tmp_path / movie.metadata)
        assert meta.n_fractions == 4
        assert read_movie(tmp_path / movie.movie).shape[0] == meta.n_fractions


def test_gain_orientation_recovered_from_a_flat_exposure_is_the_one_the_truth_states(
    tmp_path: Path,
) -> None:
    flat = MovieConfig(
        n_frames=8, dose_e_per_a2=400.0, particle_density=0.0, ice_phase_noise_rad=0.0,
        gain_spread=0.1, drift_total_px=0.0, local_motion_px=0.0,
    )  # fmt: skip
    for seed in (0, 2):
        out = tmp_path / str(seed)
        truth = simulate_visit(VisitConfig(movie=flat, movies_per_grid=1, seed=seed), out)
        gain = read_gain(out / truth.grids[0].gain.path)
        total = read_movie(out / truth.grids[0].movies[0].movie).astype(np.float64).sum(axis=0)
        flatness = {
            (t.rotate_deg, t.flip): np.std(total * t.apply(gain)) / np.mean(total * t.apply(gain))
            for t in GainTransform.all()
            if t.apply(gain).shape == total.shape
        }
        best = min(flatness, key=flatness.__getitem__)
        stated = GainTransform(truth.grids[0].gain.rotate_deg, truth.grids[0].gain.flip)  # type: ignore[arg-type]
        assert stated.apply(gain).shape == total.shape
        assert GainTransform(*best).apply(gain).tobytes() == stated.apply(gain).tobytes()  # type: ignore[arg-type]
        ratio = sorted(flatness.values())
        assert ratio[0] < 0.7 * ratio[1]


@pytest.mark.parametrize("fmt", ["tiff", "mrc"])
def test_faults_are_exactly_those_listed(tmp_path: Path, fmt: str) -> None:
    rates = FaultRates(
        truncated=0.12, zero_byte=0.12, corrupt_xml=0.12, wrong_frame_count=0.12,
        nan_pixels=0.12, saturated_pixels=0.12, unreadable=0.12, missing_gain=0.5,
    )  # fmt: skip
    config = VisitConfig(
        n_grids=2, movies_per_grid=12, format=fmt, shape_px=(64, 64), faults=rates,
        movie=MovieConfig(n_frames=4, particle_density=0.0), seed=11,
    )  # fmt: skip
    truth = simulate_visit(config, tmp_path)
    listed = {(f.kind, f.path) for f in truth.faults}
    assert len({k for k, _ in listed}) >= 6, "the seed should plant most kinds"
    found = set()
    for grid in truth.grids:
        gain_path = tmp_path / grid.raw_folder / "gain_reference.mrc"
        if not gain_path.exists():
            found.add(("missing_gain", str(gain_path.relative_to(tmp_path))))
        for movie in grid.movies:
            movie_path, meta_path = tmp_path / movie.movie, tmp_path / movie.metadata
            try:
                meta = read_epu_xml(meta_path)
            except MetadataReadError:
                found.add(("corrupt_xml", movie.metadata))
                meta = None
            if os.stat(movie_path).st_mode & 0o777 == 0:
                found.add(("unreadable", movie.movie))
                continue
            try:
                frames = read_movie(movie_path)
            except MovieReadError as exc:
                kind = "zero_byte" if "zero-byte" in exc.reason else "truncated"
                assert kind != "truncated" or "truncated" in exc.reason or "MRC" in exc.reason
                found.add((kind, movie.movie))
                continue
            if meta is not None and frames.shape[0] != meta.n_fractions:
                found.add(("wrong_frame_count", movie.movie))
            if np.isnan(frames).any():
                found.add(("nan_pixels", movie.movie))
            elif frames.dtype.kind == "u" and (frames >= 255).sum() >= 64:  # 8-bit counter full
                found.add(("saturated_pixels", movie.movie))
    assert found == listed


def test_unreadable_movie_has_no_permissions_and_cannot_be_read(tmp_path: Path) -> None:
    config = VisitConfig(movies_per_grid=1, movie=TINY, faults=FaultRates(unreadable=1.0))
    truth = simulate_visit(config, tmp_path)
    path = tmp_path / truth.grids[0].movies[0].movie
    assert path.stat().st_mode & 0o777 == 0
    if os.geteuid() != 0:  # root reads whatever the permissions; the reader's own test fakes it
        with pytest.raises(MovieReadError, match="permission denied"):
            read_movie(path)


def test_movies_are_written_progressively_and_the_xml_comes_last(tmp_path: Path) -> None:
    config = VisitConfig(
        movies_per_grid=1, movie=MovieConfig(n_frames=8), rate_per_hour=3600.0, write_fraction=0.8
    )
    worker = threading.Thread(target=simulate_visit, args=(config, tmp_path))
    worker.start()
    seen_partial = False
    deadline = time.monotonic() + 10
    while worker.is_alive() and time.monotonic() < deadline:
        movies = list(tmp_path.glob("raw/Images-Disc1/*/Data/*_fractions.tiff"))
        if movies:
            xml = movies[0].with_name(movies[0].name.replace("_fractions.tiff", ".xml"))
            xml_was_there = xml.exists()  # looked at first: the movie can only grow after
            try:
                n = read_movie(movies[0]).shape[0]
            except MovieReadError:
                n = 0
            assert n == 8 or not xml_was_there, "the .xml appeared before the movie was complete"
            seen_partial = seen_partial or n < 8
        time.sleep(0.02)
    worker.join()
    assert seen_partial
    movie = next(tmp_path.glob("raw/Images-Disc1/*/Data/*_fractions.tiff"))
    assert read_movie(movie).shape[0] == 8
    assert movie.with_name(movie.name.replace("_fractions.tiff", ".xml")).is_file()
