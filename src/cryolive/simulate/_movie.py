"""Simulate one movie file: render, count, apply the detector, write, plant faults."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryolive.engines.motion import GainTransform
from cryolive.simulate._config import MovieConfig, MovieFormat
from cryolive.simulate._counting import poisson_sampler
from cryolive.simulate._eer import EerWriter, write_eer_fractions
from cryolive.simulate._prefetch import prefetch
from cryolive.simulate._render import ExposureRenderer
from cryolive.simulate._writers import Pacer, write_mrc_movie, write_tiff_movie


@dataclass(frozen=True)
class DetectorState:
    """One camera's per-pixel response during a grid's collection."""

    efficiency: np.ndarray  # (y, x) float32, mean 1
    hot: np.ndarray  # (h,) flat indices
    dead: np.ndarray  # (d,) flat indices
    transform: GainTransform

    def gain_as_stored(self) -> np.ndarray:
        """The gain reference as the camera stores it (1 / efficiency, transformed back)."""
        return self.transform.invert((1.0 / self.efficiency).astype(np.float32))


def make_detector(
    shape_px: tuple[int, int], config: MovieConfig, rng: np.random.Generator
) -> DetectorState:
    """Pixel gains (with column structure), hot and dead pixels, a random gain orientation."""
    ny, nx = shape_px
    spread = config.gain_spread
    efficiency = 1.0 + spread * rng.standard_normal(shape_px, dtype=np.float32)
    efficiency *= 1.0 + 0.5 * spread * rng.standard_normal((1, nx), dtype=np.float32)
    np.clip(efficiency, 0.5, 1.5, out=efficiency)
    n = ny * nx
    hot = rng.choice(n, size=int(config.hot_pixel_fraction * n), replace=False)
    dead = rng.choice(n, size=int(config.dead_pixel_fraction * n), replace=False)
    transforms = GainTransform.all()
    return DetectorState(efficiency, hot, dead, transforms[int(rng.integers(len(transforms)))])


@dataclass(frozen=True)
class MovieFault:
    kind: str
    detail: str


def _counted(
    renderer: ExposureRenderer,
    detector: DetectorState,
    rng: np.random.Generator,
) -> Iterator[np.ndarray]:
    """Counted frames: Poisson(expected * efficiency), then hot and dead pixels.

    The rows are counted in two halves on two threads, each with its own generator drawn
    from ``rng``, so the result does not depend on thread timing.
    """
    sampler = poisson_sampler(float(renderer.electrons_per_px) * 3.0 + 4.0)
    weight = detector.efficiency * sampler.scale
    hot_mean = float(renderer.electrons_per_px) * 20.0
    halves = [np.random.default_rng(seed) for seed in rng.integers(2**63, size=2)]
    rows = weight.shape[0] // 2
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="cryolive-count") as pool:
        for frame in renderer.frames():

            def count(half: int, frame: np.ndarray = frame) -> np.ndarray:
                part = slice(0, rows) if half == 0 else slice(rows, None)
                return sampler.from_levels(frame[part] * weight[part], halves[half])

            counts = np.concatenate(list(pool.map(count, (0, 1))))
            flat = counts.reshape(-1)
            hot = rng.poisson(hot_mean, detector.hot.size)
            flat[detector.hot] = np.minimum(hot, np.iinfo(counts.dtype).max)
            flat[detector.dead] = 0
            yield counts


def write_movie(
    path: Path,
    renderer: ExposureRenderer,
    detector: DetectorState,
    config: MovieConfig,
    *,
    fmt: MovieFormat,
    fault: str | None,
    pacer: Pacer,
    rng: np.random.Generator,
) -> tuple[tuple[int, int, int], MovieFault | None]:
    """Write the movie at ``path`` and plant ``fault`` (or none).

    Returns
    -------
    shape : (frames, y, x) as written (EER: detector frames)
    fault : what was planted, or None
    """
    n = config.n_frames
    ny, nx = renderer.plan.shape_px
    planted: MovieFault | None = None
    if fault == "zero_byte":
        path.write_bytes(b"")
        return (0, ny, nx), MovieFault(fault, "movie written as an empty file")
    if config.noiseless:
        frames: Iterator[np.ndarray] = renderer.frames()
    else:
        frames = _counted(renderer, detector, rng)
    written = n
    if fault == "wrong_frame_count":
        written = max(1, n - 1 - int(rng.integers(0, max(1, n // 4))))
        frames = (f for i, f in enumerate(frames) if i < written)
        planted = MovieFault(fault, f"{written} frames written, metadata says {n}")
    if fault in ("nan_pixels", "saturated_pixels"):
        bad_frame = int(rng.integers(0, n))
        y0, x0 = int(rng.integers(0, ny - 8)), int(rng.integers(0, nx - 8))
        frames = _spoil(frames, bad_frame, (y0, x0), nan=fault == "nan_pixels")
        planted = MovieFault(fault, f"frame {bad_frame}, 8x8 block at y={y0} x={x0}")
    # Render and count the next frames in a worker thread while this one encodes and writes;
    # the writer gets its own generator so that results do not depend on thread timing.
    writer_rng = np.random.default_rng(rng.integers(2**63))
    frames = prefetch(frames)
    if fmt == "eer":
        n_eer = n * config.eer_frames_per_fraction
        xml = f'<metadata><item name="numberOfFrames">{n_eer}</item></metadata>'
        writer = EerWriter(path, (ny, nx), metadata_xml=xml)
        try:
            write_eer_fractions(
                writer,
                frames,
                frames_per_fraction=config.eer_frames_per_fraction,
                rng=writer_rng,
                after_fraction=lambda i: pacer.wait((i + 1) / written),
            )
        finally:
            writer.close()
        shape = (writer.n_frames, ny, nx)
    elif fmt == "tiff":
        write_tiff_movie(path, frames, n_frames=written, pacer=pacer)
        shape = (written, ny, nx)
    else:
        first = next(iter(frames))
        dtype = np.dtype(np.float32) if fault == "nan_pixels" else first.dtype
        rest = frames

        def chained() -> Iterator[np.ndarray]:
            yield first.astype(dtype, copy=False)
            for f in rest:
                yield f.astype(dtype, copy=False)

        shape = (written, ny, nx)
        write_mrc_movie(
            path,
            chained(),
            shape=shape,
            dtype=dtype,
            pixel_size_a=renderer.plan.pixel_size_a,
            pacer=pacer,
        )
    if fault == "truncated":
        size = path.stat().st_size
        keep = int(size * rng.uniform(0.3, 0.8))
        os.truncate(path, keep)
        planted = MovieFault(fault, f"cut to {keep} of {size} bytes")
    elif fault == "unreadable":
        path.chmod(0)
        planted = MovieFault(fault, "permissions set to 000")
    return shape, planted


def _spoil(
    frames: Iterator[np.ndarray], index: int, corner: tuple[int, int], *, nan: bool
) -> Iterator[np.ndarray]:
    y0, x0 = corner
    for i, frame in enumerate(frames):
        if i == index:
            frame = frame.astype(np.float32) if nan else frame.copy()
            value = (
                np.nan
                if nan
                else (np.iinfo(frame.dtype).max if frame.dtype.kind == "u" else np.float32(1e6))
            )
            frame[y0 : y0 + 8, x0 : x0 + 8] = value
        yield frame
